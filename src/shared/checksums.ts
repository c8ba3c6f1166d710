/**
 * The full-object checksums S3 stores and returns (`x-amz-checksum-*`), as
 * base64 of the big-endian digest, computed over chunks. CRC32 comes from
 * zlib; CRC32C and CRC64NVME are table-driven here (Node has neither), checked
 * against their published check values in the unit tests.
 */
import { createHash, type Hash } from 'node:crypto';
import { zlib } from './load-on-use.js';

export const CHECKSUM_ALGORITHMS = ['CRC64NVME', 'CRC32', 'CRC32C', 'SHA256', 'SHA1'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

export interface Checksum {
  update(chunk: Uint8Array): void;
  /** base64 of the digest, as S3 writes it. */
  digest(): string;
}

function crc32cTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

/** CRC-64/NVME (reflected, polynomial 0x9a6c9329ac4bc9b5), as two 32-bit halves: BigInt per byte is far slower. */
function crc64Tables(): { hi: Uint32Array; lo: Uint32Array } {
  const hi = new Uint32Array(256);
  const lo = new Uint32Array(256);
  const [polyHi, polyLo] = [0x9a6c9329, 0xac4bc9b5];
  for (let n = 0; n < 256; n++) {
    let h = 0;
    let l = n;
    for (let k = 0; k < 8; k++) {
      const odd = l & 1;
      l = ((l >>> 1) | ((h & 1) << 31)) >>> 0;
      h = h >>> 1;
      if (odd) {
        h = (h ^ polyHi) >>> 0;
        l = (l ^ polyLo) >>> 0;
      }
    }
    hi[n] = h;
    lo[n] = l;
  }
  return { hi, lo };
}

const TABLES = { crc32c: crc32cTable(), crc64: crc64Tables() };

function u32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value >>> 0);
  return out;
}

function fromHash(hash: Hash): Checksum {
  return { update: (chunk) => hash.update(chunk), digest: () => hash.digest('base64') };
}

export function createChecksum(algorithm: ChecksumAlgorithm): Checksum {
  switch (algorithm) {
    case 'CRC32': {
      let crc = 0;
      return { update: (chunk) => (crc = zlib().crc32(chunk, crc)), digest: () => u32(crc).toString('base64') };
    }
    case 'CRC32C': {
      const table = TABLES.crc32c;
      let crc = 0xffffffff;
      return {
        update: (chunk) => {
          for (let i = 0; i < chunk.length; i++) crc = table[(crc ^ chunk[i]!) & 0xff]! ^ (crc >>> 8);
        },
        digest: () => u32(~crc).toString('base64'),
      };
    }
    case 'CRC64NVME': {
      const { hi, lo } = TABLES.crc64;
      let h = 0xffffffff;
      let l = 0xffffffff;
      return {
        update: (chunk) => {
          for (let i = 0; i < chunk.length; i++) {
            const t = (l ^ chunk[i]!) & 0xff;
            l = (((l >>> 8) | (h << 24)) ^ lo[t]!) >>> 0;
            h = ((h >>> 8) ^ hi[t]!) >>> 0;
          }
        },
        digest: () => Buffer.concat([u32(~h), u32(~l)]).toString('base64'),
      };
    }
    case 'SHA256':
      return fromHash(createHash('sha256'));
    case 'SHA1':
      return fromHash(createHash('sha1'));
  }
}

export function checksumOf(algorithm: ChecksumAlgorithm, bytes: Uint8Array): string {
  const checksum = createChecksum(algorithm);
  checksum.update(bytes);
  return checksum.digest();
}
