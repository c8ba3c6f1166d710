import type { FileHandle } from 'node:fs/promises';
import { AvroFormatError } from './avro-format-error.js';
import { ByteReader, encodeLong } from './byte-reader.js';

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

export async function readHeader(reader: ByteReader, file: string): Promise<ContainerHeader> {
  const fail = (detail: string): never => {
    throw new AvroFormatError(file, detail);
  };
  const magic = await reader.read(4);
  if (!magic) return fail(reader.offset === 0 && (await reader.atEnd()) ? 'empty file (0 bytes), not an Avro file' : 'truncated before the Avro header');
  if (!magic.equals(MAGIC)) return fail('not an Avro object-container file (bad magic bytes)');
  const meta = new Map<string, Buffer>();
  try {
    for (;;) {
      let count = (await reader.readLong()) ?? fail('truncated in the header');
      if (count === 0) break;
      if (count < 0) {
        count = -count;
        await reader.readLong();
      }
      for (let i = 0; i < count; i++) {
        const keyLength = (await reader.readLong()) ?? fail('truncated in the header');
        const key = (await reader.read(keyLength)) ?? fail('truncated in the header');
        const valueLength = (await reader.readLong()) ?? fail('truncated in the header');
        const value = (await reader.read(valueLength)) ?? fail('truncated in the header');
        meta.set(key.toString('utf8'), Buffer.from(value));
      }
    }
  } catch (err) {
    if (err instanceof AvroFormatError) throw err;
    fail(`corrupt header (${(err as Error).message})`);
  }
  const sync = (await reader.read(SYNC_SIZE)) ?? fail('truncated before the sync marker');
  const schema = meta.get('avro.schema') ?? fail('header has no avro.schema');
  return { schemaText: schema.toString('utf8'), codec: meta.get('avro.codec')?.toString('utf8') || 'null', sync: Buffer.from(sync) };
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

/**
 * Writes an object-container file through a buffer, flushed in large writes.
 * Each `writeBlock` awaits the disk when the buffer is full, so memory stays at
 * about FLUSH_BYTES plus one block.
 */
export class ContainerWriter {
  private static readonly FLUSH_BYTES = 1024 * 1024;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  bytesWritten = 0;

  constructor(private readonly fh: FileHandle, private readonly sync: Buffer) {}

  async writeHeader(schemaText: string, codec: string): Promise<void> {
    const entry = (k: string, v: Buffer) => [encodeLong(Buffer.byteLength(k)), Buffer.from(k), encodeLong(v.length), v];
    await this.push([
      MAGIC,
      encodeLong(2),
      ...entry('avro.schema', Buffer.from(schemaText)),
      ...entry('avro.codec', Buffer.from(codec)),
      encodeLong(0),
      this.sync,
    ]);
  }

  async writeBlock(count: number, data: Buffer): Promise<void> {
    await this.push([encodeLong(count), encodeLong(data.length), data, this.sync]);
  }

  async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const chunk = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    await this.fh.write(chunk);
    this.bytesWritten += chunk.length;
  }

  private async push(parts: Buffer[]): Promise<void> {
    for (const p of parts) {
      this.pending.push(p);
      this.pendingBytes += p.length;
    }
    if (this.pendingBytes >= ContainerWriter.FLUSH_BYTES) await this.flush();
  }
}
