import { snappy, zlib } from '../shared/load-on-use.js';
import { AvroFormatError } from './avro-format-error.js';

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

/** Reused output of decompressBlockInto: grown as blocks need. */
export interface Scratch {
  buffer: Buffer;
}

/**
 * Block `index` decompressed as decompressBlock does, but a snappy block into
 * `scratch` (the result is a view of it, valid until the next call): a
 * decoder that reads thousands of blocks then makes no buffer for each,
 * buffers that would wait for a collection to be freed.
 */
export function decompressBlockInto(codec: string, data: Buffer, name: string, index: number, scratch: Scratch): Buffer {
  if (codec !== 'snappy') return decompressBlock(codec, data, name, index);
  try {
    if (data.length < 4) throw new Error('snappy block shorter than its CRC');
    const length = snappyInto(data.subarray(0, data.length - 4), scratch);
    const raw = scratch.buffer.subarray(0, length);
    if (zlib().crc32(raw) !== data.readUInt32BE(data.length - 4)) throw new Error('snappy block CRC32 does not match its data');
    return raw;
  } catch (err) {
    throw new AvroFormatError(name, `block ${index} is corrupt: ${(err as Error).message}`);
  }
}

/** Decodes raw snappy (the format's literals and back-references) into scratch.buffer; returns the length. */
function snappyInto(src: Uint8Array, scratch: Scratch): number {
  const end = src.length;
  let p = 0;
  let length = 0;
  for (let shift = 0; ; shift += 7) {
    if (p >= end || shift > 28) throw new Error('snappy length is cut short or too long');
    const b = src[p++]!;
    length += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) break;
  }
  if (scratch.buffer.length < length) scratch.buffer = Buffer.allocUnsafe(Math.max(length, 2 * scratch.buffer.length));
  const out = scratch.buffer;
  let o = 0;
  while (p < end) {
    const tag = src[p++]!;
    const kind = tag & 3;
    if (kind === 0) {
      let n = tag >>> 2;
      if (n >= 60) {
        const bytes = n - 59;
        if (p + bytes > end) throw new Error('snappy literal length is cut short');
        n = 0;
        for (let k = 0; k < bytes; k++) n += src[p++]! * 2 ** (8 * k);
      }
      n += 1;
      if (p + n > end || o + n > length) throw new Error('snappy literal runs past its block');
      if (n > 16) out.set(src.subarray(p, p + n), o);
      else for (let k = 0; k < n; k++) out[o + k] = src[p + k]!;
      p += n;
      o += n;
      continue;
    }
    let n: number;
    let offset: number;
    if (kind === 1) {
      if (p + 1 > end) throw new Error('snappy copy is cut short');
      n = ((tag >>> 2) & 7) + 4;
      offset = ((tag >>> 5) << 8) | src[p++]!;
    } else if (kind === 2) {
      if (p + 2 > end) throw new Error('snappy copy is cut short');
      n = (tag >>> 2) + 1;
      offset = src[p]! | (src[p + 1]! << 8);
      p += 2;
    } else {
      if (p + 4 > end) throw new Error('snappy copy is cut short');
      n = (tag >>> 2) + 1;
      offset = (src[p]! | (src[p + 1]! << 8) | (src[p + 2]! << 16) | (src[p + 3]! << 24)) >>> 0;
      p += 4;
    }
    if (offset === 0 || offset > o || o + n > length) throw new Error('snappy copy points outside its block');
    // a copy may overlap what it writes (a run): byte by byte then
    if (offset >= n && n > 16) out.copyWithin(o, o - offset, o - offset + n);
    else for (let k = 0; k < n; k++) out[o + k] = out[o - offset + k]!;
    o += n;
  }
  if (o !== length) throw new Error(`snappy data gives ${o} bytes where it says ${length}`);
  return length;
}

function decompress(codec: string, data: Buffer): Buffer {
  switch (codec) {
    case 'null':
      return data;
    case 'deflate':
      return zlib().inflateRawSync(data);
    case 'snappy': {
      // Avro's snappy blocks end with the CRC32 of the uncompressed bytes.
      if (data.length < 4) throw new Error('snappy block shorter than its CRC');
      const raw = snappy().uncompressSync(data.subarray(0, data.length - 4), { asBuffer: true, copyOutputData: true }) as Buffer;
      const expected = data.readUInt32BE(data.length - 4);
      if (zlib().crc32(raw) !== expected) throw new Error('snappy block CRC32 does not match its data');
      return raw;
    }
    default:
      throw new Error(`codec '${codec}' is not supported (supported: ${SUPPORTED_CODECS.join(', ')})`);
  }
}

export function compressSnappyBlock(raw: Buffer): Buffer {
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib().crc32(raw));
  return Buffer.concat([snappy().compressSync(raw), crc]);
}

/** Compresses a block's records with `codec` (one of SUPPORTED_CODECS). */
export function compressBlock(codec: string, raw: Buffer): Buffer {
  switch (codec) {
    case 'null':
      return raw;
    case 'deflate':
      return zlib().deflateRawSync(raw);
    case 'snappy':
      return compressSnappyBlock(raw);
    default:
      throw new Error(`codec '${codec}' is not supported (supported: ${SUPPORTED_CODECS.join(', ')})`);
  }
}
