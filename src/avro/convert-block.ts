import type avro from 'avsc';
import { AvroFormatError } from './avro-format-error.js';
import { compressSnappyBlock } from './codec.js';

/** Re-encoded records are gathered into blocks of about this size. */
const DECODE_BLOCK_BYTES = 256 * 1024;

export interface Decode {
  /** The output schema's type. */
  reader: avro.Type;
  resolver: ReturnType<avro.Type['createResolver']>;
}

/**
 * One decompressed input block as snappy blocks of the output: recompressed
 * as it is, or, with `decode`, its `count` records decoded in their writer's
 * schema and re-encoded in the output schema.
 */
export function convertBlock(raw: Buffer, count: number, name: string, decode?: Decode): { count: number; data: Buffer }[] {
  if (!decode) return [{ count, data: compressSnappyBlock(raw) }];
  const out: { count: number; data: Buffer }[] = [];
  let pos = 0;
  let encoded: Buffer[] = [];
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    let decoded: { value: unknown; offset: number };
    try {
      decoded = decode.reader.decode(raw, pos, decode.resolver);
    } catch (err) {
      throw new AvroFormatError(name, `record ${i} cannot be decoded with its schema (${(err as Error).message})`);
    }
    if (decoded.offset < 0) throw new AvroFormatError(name, `record ${i} runs past the end of its block`);
    pos = decoded.offset;
    const record = decode.reader.toBuffer(decoded.value);
    encoded.push(record);
    bytes += record.length;
    if (bytes >= DECODE_BLOCK_BYTES || i === count - 1) {
      out.push({ count: encoded.length, data: compressSnappyBlock(Buffer.concat(encoded, bytes)) });
      encoded = [];
      bytes = 0;
    }
  }
  if (pos !== raw.length) throw new AvroFormatError(name, `block holds ${raw.length - pos} bytes after its ${count} records`);
  return out;
}
