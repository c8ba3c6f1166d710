// `npm run bundle` (after tsc has type-checked): dist/bin, what npm installs and runs.
import { chmodSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  outdir: 'dist/bin',
  external: ['snappy', 'avsc', '@aws-sdk/*', '@smithy/*', '@duckdb/*'],
  logLevel: 'warning',
};
// CommonJS has no import.meta: the bundles get the file's URL from __filename.
// commander loads node:child_process (and with it net and dgram, some ms) at start, only to run
// executable subcommands, which this CLI has none of: it gets a stand-in that loads it on first use.
const lazyChildProcess = {
  name: 'lazy-child-process',
  setup(build) {
    build.onResolve({ filter: /^(node:)?child_process$/ }, (args) => (args.importer.includes('/node_modules/commander/') ? { path: 'child_process', namespace: 'lazy' } : undefined));
    build.onLoad({ filter: /.*/, namespace: 'lazy' }, () => ({ contents: "module.exports = { spawn: (...args) => require('node:child_process').spawn(...args) };", loader: 'js' }));
  },
};
const commonJs = {
  ...common,
  plugins: [lazyChildProcess],
  format: 'cjs',
  outExtension: { '.js': '.cjs' },
  define: { 'import.meta.url': 'swrImportMetaUrl' },
};
const metaUrl = "'use strict'; const swrImportMetaUrl = require('node:url').pathToFileURL(__filename).href;";

rmSync('dist/bin', { recursive: true, force: true });

// The CLI in one CommonJS file: it loads faster than a graph of ES modules.
await build({ ...commonJs, entryPoints: { cli: 'src/cli/index.ts' }, banner: { js: metaUrl } });

// The bin (launch.ts). Its first line is `#!/bin/sh`, and the sh runs its second line, which starts
// Node with its flags; Node skips the first line and takes the second for a string. (`#!/usr/bin/env
// -S node <flags>` does not work with busybox, as in Alpine images, nor with coreutils before 8.30.)
// --expose-gc: the memory governor (cli/peak-memory.ts) asks for collections above its soft limit.
const shLine = '":" //; exec node --max-semi-space-size=8 --expose-gc "$0" "$@"';
await build({ ...commonJs, entryPoints: { 'sitewise-repartition': 'src/cli/launch.ts' }, banner: { js: `${shLine}\n${metaUrl}` } });
chmodSync('dist/bin/sitewise-repartition.cjs', 0o755);

// The worker threads, as ES modules sharing one chunk.
await build({
  ...common,
  entryPoints: { 'block-worker': 'src/avro/block-worker.ts', 'read-ahead-worker': 'src/avro/read-ahead-worker.ts', 'decode-worker': 'src/output/decode-worker.ts' },
  external: ['snappy', 'avsc', '@duckdb/*'],
  splitting: true,
  format: 'esm',
  chunkNames: '[name]-[hash]',
  banner: { js: "import { createRequire as swrCreateRequire } from 'node:module'; const require = swrCreateRequire(import.meta.url);" },
});
