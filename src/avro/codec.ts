import zlib from 'node:zlib';
import snappy from 'snappy';

export const OUTPUT_CODEC = 'snappy';
export const SUPPORTED_CODECS = ['null', 'deflate', 'snappy'] as const;

/** Decompresses one block; throws a plain Error whose message says what is wrong. */
export function decompressBlock(codec: string, data: Buffer): Buffer {
  switch (codec) {
    case 'null':
      return data;
    case 'deflate':
      return zlib.inflateRawSync(data);
    case 'snappy': {
      // Avro's snappy blocks end with the CRC32 of the uncompressed bytes.
      if (data.length < 4) throw new Error('snappy block shorter than its CRC');
      const raw = snappy.uncompressSync(data.subarray(0, data.length - 4), { asBuffer: true, copyOutputData: true }) as Buffer;
      const expected = data.readUInt32BE(data.length - 4);
      if (zlib.crc32(raw) !== expected) throw new Error('snappy block CRC32 does not match its data');
      return raw;
    }
    default:
      throw new Error(`codec '${codec}' is not supported (supported: ${SUPPORTED_CODECS.join(', ')})`);
  }
}

/**
 * Checks a stored snappy block against its CRC without keeping the result.
 * Decompression runs on libuv's thread pool, so several checks overlap with
 * the copy on the main thread.
 */
export async function verifySnappyBlock(data: Buffer): Promise<void> {
  if (data.length < 4) throw new Error('snappy block shorter than its CRC');
  const raw = (await snappy.uncompress(data.subarray(0, data.length - 4), { asBuffer: true, copyOutputData: true })) as Buffer;
  if (zlib.crc32(raw) !== data.readUInt32BE(data.length - 4)) throw new Error('snappy block CRC32 does not match its data');
}

export function compressSnappyBlock(raw: Buffer): Buffer {
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(raw));
  return Buffer.concat([snappy.compressSync(raw), crc]);
}
