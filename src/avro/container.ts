import { AvroFormatError } from './avro-format-error.js';
import { ByteReader, decodeLong } from './byte-reader.js';

export const MAGIC = Buffer.from('Obj\x01', 'latin1');
export const SYNC_SIZE = 16;
/** A block's declared size above this is taken as corruption, not allocated. */
const MAX_BLOCK_BYTES = 256 * 1024 * 1024;

export interface ContainerHeader {
  schemaText: string;
  codec: string;
  sync: Buffer;
}

export interface Block {
  count: number;
  /** The block's data as stored (compressed with the file's codec). */
  data: Buffer;
}

/** Thrown by parseHeader when the buffer ends inside the header: read more and try again. */
class NeedMore extends Error {}

/** Reads a varint long at `pos` of a whole buffer. */
function longAt(buf: Buffer, pos: number): { value: number; length: number } {
  if (pos >= buf.length) throw new NeedMore();
  try {
    return decodeLong(buf, pos);
  } catch {
    if (buf.length - pos < 10) throw new NeedMore();
    throw new Error('invalid varint');
  }
}

/** Parses the header at the start of `buf`; `length` is where the first block starts. */
export function parseHeader(buf: Buffer, file: string): { header: ContainerHeader; length: number } {
  if (buf.length === 0) throw new AvroFormatError(file, 'empty file (0 bytes), not an Avro file');
  if (buf.length < MAGIC.length) throw new NeedMore();
  if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) throw new AvroFormatError(file, 'not an Avro object-container file (bad magic bytes)');
  let pos = MAGIC.length;
  const next = () => {
    const { value, length } = longAt(buf, pos);
    pos += length;
    return value;
  };
  const bytes = () => {
    const n = next();
    if (n < 0) throw new Error('negative length');
    if (pos + n > buf.length) throw new NeedMore();
    pos += n;
    return buf.subarray(pos - n, pos);
  };
  const meta = new Map<string, Buffer>();
  try {
    for (let count = next(); count !== 0; count = next()) {
      if (count < 0) {
        count = -count;
        next(); // block size in bytes, not needed
      }
      for (let i = 0; i < count; i++) {
        const key = bytes().toString('utf8');
        meta.set(key, Buffer.from(bytes()));
      }
    }
  } catch (err) {
    if (err instanceof NeedMore) throw err;
    throw new AvroFormatError(file, `corrupt header (${(err as Error).message})`);
  }
  if (pos + SYNC_SIZE > buf.length) throw new NeedMore();
  const schema = meta.get('avro.schema');
  if (!schema) throw new AvroFormatError(file, 'header has no avro.schema');
  const header = { schemaText: schema.toString('utf8'), codec: meta.get('avro.codec')?.toString('utf8') || 'null', sync: Buffer.from(buf.subarray(pos, pos + SYNC_SIZE)) };
  return { header, length: pos + SYNC_SIZE };
}

/** parseHeader for a whole file: running out of bytes means the file is cut short. */
export function parseWholeHeader(buf: Buffer, file: string): { header: ContainerHeader; length: number } {
  try {
    return parseHeader(buf, file);
  } catch (err) {
    if (err instanceof NeedMore) throw new AvroFormatError(file, 'truncated in the Avro header');
    throw err;
  }
}

/** Reads the header from a stream, looking further ahead while it is longer than what was seen. */
export async function readHeader(reader: ByteReader, file: string): Promise<ContainerHeader> {
  for (let want = 64 * 1024; ; want *= 4) {
    const ahead = await reader.peek(want);
    try {
      const { header, length } = parseHeader(ahead, file);
      reader.skip(length);
      return header;
    } catch (err) {
      if (!(err instanceof NeedMore)) throw err;
      if (ahead.length < want) throw new AvroFormatError(file, 'truncated in the Avro header');
    }
  }
}

/** A 16-byte sync marker as four integers, for checking or writing one per block without a call into C++. */
function syncWords(sync: Buffer): [number, number, number, number] {
  return [sync.readUInt32LE(0), sync.readUInt32LE(4), sync.readUInt32LE(8), sync.readUInt32LE(12)];
}

/**
 * Walks and re-frames the blocks of whole files held in memory, checked like
 * readBlocks does (framing, sizes, every sync marker) but with no promise or
 * allocation per block: the hot path of a merge. An instance keeps its scratch
 * state (a varint's end, the block ends of the file being re-framed), so each
 * user owns one.
 */
export class BlockFramer {
  /** Where the varint read by longFrom ended. */
  private pos = 0;
  /** Where each block of the file being re-framed ends; grown as needed. */
  private blockEnds = new Uint32Array(1024);

  /** A zig-zag varint long at `pos` without allocating (its end goes to this.pos); NaN if cut or over 10 bytes. */
  private longFrom(buf: Buffer, pos: number): number {
    let n = 0;
    let scale = 1;
    for (let i = pos; i < buf.length && i - pos < 10; i++) {
      const b = buf[i]!;
      n += (b & 0x7f) * scale;
      if (b < 0x80) {
        this.pos = i + 1;
        return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
      }
      scale *= 128;
    }
    return NaN;
  }

  /** Visits each block of `buf` from `start`: its record count and where its data lies. */
  forEachBlock(buf: Buffer, start: number, header: ContainerHeader, file: string, visit: (count: number, dataStart: number, dataEnd: number) => void): void {
    // the sync marker as four integers: comparing them costs less than a call into Buffer.compare per block
    const [s0, s1, s2, s3] = syncWords(header.sync);
    // DataView reads compile to plain loads; Buffer's readUInt32LE stayed a call per read here
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    let pos = start;
    while (pos < buf.length) {
      const at = pos;
      const count = this.longFrom(buf, pos);
      const size = Number.isNaN(count) ? NaN : this.longFrom(buf, this.pos);
      if (!(count >= 0 && size >= 0 && size <= MAX_BLOCK_BYTES)) throw new AvroFormatError(file, `truncated or corrupt block header at byte ${at}`);
      pos = this.pos;
      if (pos + size + SYNC_SIZE > buf.length) throw new AvroFormatError(file, `truncated: block at byte ${at} ends before its ${size} bytes and sync marker`);
      const end = pos + size;
      if (view.getUint32(end, true) !== s0 || view.getUint32(end + 4, true) !== s1 || view.getUint32(end + 8, true) !== s2 || view.getUint32(end + 12, true) !== s3) {
        throw new AvroFormatError(file, `corrupt: block at byte ${at} is not followed by the file's sync marker`);
      }
      visit(count, pos, pos + size);
      pos += size + SYNC_SIZE;
    }
  }

  /**
   * Re-frames a whole file for a block copy: checks every block (as
   * forEachBlock does) and only then writes `sync` over each block's sync
   * marker, so a file that fails a check is left as it was read.
   */
  reframe(buf: Buffer, start: number, header: ContainerHeader, file: string, sync: Buffer): { records: number; blocks: number } {
    let records = 0;
    let blocks = 0;
    this.forEachBlock(buf, start, header, file, (count, _start, end) => {
      if (blocks === this.blockEnds.length) {
        const grown = new Uint32Array(blocks * 2);
        grown.set(this.blockEnds);
        this.blockEnds = grown;
      }
      this.blockEnds[blocks++] = end;
      records += count;
    });
    const [s0, s1, s2, s3] = syncWords(sync);
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    for (let i = 0; i < blocks; i++) {
      const at = this.blockEnds[i]!;
      view.setUint32(at, s0, true);
      view.setUint32(at + 4, s1, true);
      view.setUint32(at + 8, s2, true);
      view.setUint32(at + 12, s3, true);
    }
    return { records, blocks };
  }

  /** forEachBlock, collected. */
  parseBlocks(buf: Buffer, start: number, header: ContainerHeader, file: string): BlockRef[] {
    const blocks: BlockRef[] = [];
    this.forEachBlock(buf, start, header, file, (count, dataStart, dataEnd) => blocks.push({ count, dataStart, dataEnd }));
    return blocks;
  }
}

export interface BlockRef {
  count: number;
  dataStart: number;
  dataEnd: number;
}

/** The blocks after the header; checks every sync marker, so a cut or corrupted file is reported, not half-read. */
export async function* readBlocks(reader: ByteReader, header: ContainerHeader, file: string): AsyncGenerator<Block> {
  for (;;) {
    const at = reader.offset;
    let count: number | undefined;
    let size: number | undefined;
    try {
      count = await reader.readLong();
      if (count === undefined) return;
      size = await reader.readLong();
    } catch {
      throw new AvroFormatError(file, `truncated or corrupt block header at byte ${at}`);
    }
    if (size === undefined || count < 0 || size < 0 || size > MAX_BLOCK_BYTES) {
      throw new AvroFormatError(file, `truncated or corrupt block header at byte ${at}`);
    }
    const data = await reader.read(size);
    const sync = data && (await reader.read(SYNC_SIZE));
    if (!data || !sync) throw new AvroFormatError(file, `truncated: block at byte ${at} ends before its ${size} bytes and sync marker`);
    if (!sync.equals(header.sync)) throw new AvroFormatError(file, `corrupt: block at byte ${at} is not followed by the file's sync marker`);
    yield { count, data };
  }
}
