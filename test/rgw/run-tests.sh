#!/usr/bin/env bash
# Runs the S3-touching tests against Ceph RADOS Gateway (a production S3
# implementation, Debian's radosgw) on 127.0.0.1: brings it up with up.sh
# (installs the packages on first use), runs the tests, brings it down.
# Usage: npm run test:rgw   (as root, for apt-get and the daemons)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export RGW_DIR=${RGW_DIR:-${TMPDIR:-/tmp}/swr-rgw}
export RGW_PORT=${RGW_PORT:-7480}
trap '"$here/down.sh" >/dev/null 2>&1 || true' EXIT
"$here/up.sh" >/dev/null
# shellcheck disable=SC1091
. "$RGW_DIR/env"
export S3_BACKEND=rgw
cd "$here/../.."
node --test --test-concurrency=1 $(grep -l "startWorld\|startS3" dist/test/*.test.js)
