/**
 * How the bytes of a GET can be checked, from its response: a full-object
 * checksum when S3 returns one (asked for with x-amz-checksum-mode), else
 * the ETag when it is an MD5 (single part, and neither SSE-KMS nor SSE-C,
 * whose ETags are not digests of the bytes), else nothing: the caller must
 * check the content another way (merge checks such an object's blocks).
 */
import { createHash, type Hash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { CHECKSUM_ALGORITHMS, createChecksum, type Checksum, type ChecksumAlgorithm } from '../shared/checksums.js';
import type { ContentCheck } from '../store/object-store.js';


/** A stored object or a download that does not match what was expected: worth sending or fetching again. */
export class MismatchError extends Error {
  readonly code = 'ECONNRESET';
  override readonly name = 'MismatchError';
}

/** The parts of a GET or HEAD response that say how its bytes can be checked. */
export interface IntegrityHeaders {
  /** Unquoted. */
  etag: string;
  sse?: string;
  sseCustomerAlgorithm?: string;
  checksums: Partial<Record<ChecksumAlgorithm, string>>;
  checksumType?: string;
  /** The version read, in a versioned bucket ('null' or absent otherwise). */
  versionId?: string;
}

export function fromHttpHeaders(headers: IncomingHttpHeaders): IntegrityHeaders {
  const one = (name: string) => {
    const v = headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const checksums: Partial<Record<ChecksumAlgorithm, string>> = {};
  for (const a of CHECKSUM_ALGORITHMS) {
    const v = one(`x-amz-checksum-${a.toLowerCase()}`);
    if (v) checksums[a] = v;
  }
  return {
    etag: (one('etag') ?? '').replace(/"/g, ''),
    sse: one('x-amz-server-side-encryption'),
    sseCustomerAlgorithm: one('x-amz-server-side-encryption-customer-algorithm'),
    checksums,
    checksumType: one('x-amz-checksum-type'),
    versionId: one('x-amz-version-id'),
  };
}

/** The SDK's GetObject/HeadObject output fields. */
export function fromSdkOutput(r: {
  ETag?: string;
  ServerSideEncryption?: string;
  SSECustomerAlgorithm?: string;
  ChecksumCRC32?: string;
  ChecksumCRC32C?: string;
  ChecksumCRC64NVME?: string;
  ChecksumSHA1?: string;
  ChecksumSHA256?: string;
  ChecksumType?: string;
  VersionId?: string;
}): IntegrityHeaders {
  const all: Partial<Record<ChecksumAlgorithm, string | undefined>> = {
    CRC32: r.ChecksumCRC32,
    CRC32C: r.ChecksumCRC32C,
    CRC64NVME: r.ChecksumCRC64NVME,
    SHA1: r.ChecksumSHA1,
    SHA256: r.ChecksumSHA256,
  };
  const checksums = Object.fromEntries(Object.entries(all).filter(([, v]) => v)) as Partial<Record<ChecksumAlgorithm, string>>;
  return { etag: (r.ETag ?? '').replace(/"/g, ''), sse: r.ServerSideEncryption, sseCustomerAlgorithm: r.SSECustomerAlgorithm, checksums, checksumType: r.ChecksumType, versionId: r.VersionId };
}

/** A checksum of the whole object (not a checksum of part checksums, `<value>-N`). */
export function fullObjectChecksum(h: IntegrityHeaders): { algorithm: ChecksumAlgorithm; value: string } | undefined {
  if (h.checksumType && h.checksumType !== 'FULL_OBJECT') return undefined;
  for (const algorithm of CHECKSUM_ALGORITHMS) {
    const value = h.checksums[algorithm];
    if (value && !value.includes('-')) return { algorithm, value };
  }
  return undefined;
}

/** Whether the ETag is the MD5 of the bytes: single part, and not SSE-KMS (aws:kms, aws:kms:dsse) nor SSE-C. */
export function etagIsMd5(h: IntegrityHeaders): boolean {
  return /^[0-9a-f]{32}$/.test(h.etag) && !h.sse?.startsWith('aws:kms') && !h.sseCustomerAlgorithm;
}

/** Checks bytes fed to it against what a response's headers allow; `check` says which check that is. */
export class ContentChecker {
  readonly check: ContentCheck;
  private readonly digest: Checksum | Hash | undefined;
  private readonly expected: string;

  constructor(headers: IntegrityHeaders) {
    const full = fullObjectChecksum(headers);
    if (full) {
      this.check = full.algorithm;
      this.digest = createChecksum(full.algorithm);
      this.expected = full.value;
    } else if (etagIsMd5(headers)) {
      this.check = 'MD5';
      this.digest = createHash('md5');
      this.expected = headers.etag;
    } else {
      this.check = 'none';
      this.expected = '';
    }
  }

  update(chunk: Uint8Array): void {
    this.digest?.update(chunk);
  }

  /** Throws MismatchError when the bytes do not match; `what` names them. */
  verify(what: string): void {
    if (!this.digest) return;
    const got = this.check === 'MD5' ? (this.digest as Hash).digest('hex') : (this.digest as Checksum).digest();
    if (got !== this.expected) throw new MismatchError(`${what} does not match its ${this.check === 'MD5' ? 'ETag (MD5)' : `${this.check} checksum`}`);
  }
}
