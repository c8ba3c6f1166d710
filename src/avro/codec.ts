import { createRequire } from 'node:module';
import zlib from 'node:zlib';
import type snappyLib from 'snappy';
import { AvroFormatError } from './avro-format-error.js';

const requireHere = createRequire(import.meta.url);
/** The native binding, loaded on first use (require keeps it): a block copy never compresses or decompresses. */
const snappy = () => requireHere('snappy') as typeof snappyLib;

export const OUTPUT_CODEC = 'snappy';
export const SUPPORTED_CODECS = ['null', 'deflate', 'snappy'] as const;

/** Decompresses block `index` of file `name`; an AvroFormatError names both and what is wrong. */
export function decompressBlock(codec: string, data: Buffer, name: string, index: number): Buffer {
  try {
    return decompress(codec, data);
  } catch (err) {
    throw new AvroFormatError(name, `block ${index} is corrupt: ${(err as Error).message}`);
  }
}

function decompress(codec: string, data: Buffer): Buffer {
  switch (codec) {
    case 'null':
      return data;
    case 'deflate':
      return zlib.inflateRawSync(data);
    case 'snappy': {
      // Avro's snappy blocks end with the CRC32 of the uncompressed bytes.
      if (data.length < 4) throw new Error('snappy block shorter than its CRC');
      const raw = snappy().uncompressSync(data.subarray(0, data.length - 4), { asBuffer: true, copyOutputData: true }) as Buffer;
      const expected = data.readUInt32BE(data.length - 4);
      if (zlib.crc32(raw) !== expected) throw new Error('snappy block CRC32 does not match its data');
      return raw;
    }
    default:
      throw new Error(`codec '${codec}' is not supported (supported: ${SUPPORTED_CODECS.join(', ')})`);
  }
}

export function compressSnappyBlock(raw: Buffer): Buffer {
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(raw));
  return Buffer.concat([snappy().compressSync(raw), crc]);
}

/** Compresses a block's records with `codec` (one of SUPPORTED_CODECS). */
export function compressBlock(codec: string, raw: Buffer): Buffer {
  switch (codec) {
    case 'null':
      return raw;
    case 'deflate':
      return zlib.deflateRawSync(raw);
    case 'snappy':
      return compressSnappyBlock(raw);
    default:
      throw new Error(`codec '${codec}' is not supported (supported: ${SUPPORTED_CODECS.join(', ')})`);
  }
}
