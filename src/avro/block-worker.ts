/**
 * Worker thread for the CPU-heavy part of a merge: checking every block of a
 * file against its CRC, or converting a file's blocks (another codec, or
 * records in another schema) into snappy blocks of the output schema.
 */
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort } from 'node:worker_threads';
import avro from 'avsc';
import { decompressBlock } from './codec.js';
import { convertBlock } from './convert-block.js';
import { BlockFramer, parseWholeHeader } from './container.js';

/**
 * Every decompressed block is a fresh buffer outside the JS heap, and V8 only
 * collects those after about 64 MB have piled up, per thread. Collecting after
 * this much keeps each worker's garbage small (a collection of this small heap
 * takes about a millisecond).
 */
const COLLECT_EVERY_BYTES = 16 * 1024 * 1024;

export type BlockTask =
  | { id: number; kind: 'verify'; blocks: Uint8Array; sync: Uint8Array; codec: string; name: string }
  | { id: number; kind: 'convert'; file: string; name: string; readerSchema?: string };

export type BlockReply =
  | { id: number; kind: 'verified'; records: number }
  | { id: number; kind: 'converted'; records: number; blocks: { count: number; data: Uint8Array }[] }
  | { id: number; kind: 'error'; error: { name: string; message: string; code?: string; file?: string; detail?: string } };

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as (options: { type: 'minor' | 'major' }) => void;

/** The thread's state: parsed schemas, a block framer, and the bytes released since the last collection. */
class BlockWorker {
  private sinceCollect = 0;
  private readonly types = new Map<string, avro.Type>();
  private readonly framer = new BlockFramer();

  handle(task: BlockTask): BlockReply {
    return task.kind === 'verify' ? this.verify(task) : this.convert(task);
  }

  private released(bytes: number): void {
    this.sinceCollect += bytes;
    if (this.sinceCollect >= COLLECT_EVERY_BYTES) {
      this.sinceCollect = 0;
      gc({ type: 'minor' });
    }
  }

  private typeOf(schemaText: string): avro.Type {
    let type = this.types.get(schemaText);
    if (!type) {
      type = avro.Type.forSchema(JSON.parse(schemaText) as avro.Schema);
      this.types.set(schemaText, type);
    }
    return type;
  }

  /** Checks every block of a file's block section (handed over by the main thread after it wrote them). */
  private verify(task: Extract<BlockTask, { kind: 'verify' }>): BlockReply {
    const buf = Buffer.from(task.blocks.buffer, task.blocks.byteOffset, task.blocks.byteLength);
    const header = { schemaText: '', codec: task.codec, sync: Buffer.from(task.sync) };
    let records = 0;
    for (const [i, b] of this.framer.parseBlocks(buf, 0, header, task.name).entries()) {
      this.released(decompressBlock(task.codec, buf.subarray(b.dataStart, b.dataEnd), task.name, i).length);
      records += b.count;
    }
    return { id: task.id, kind: 'verified', records };
  }

  /** Reads a file and converts its blocks into snappy blocks, in the reader schema when one is given. */
  private convert(task: Extract<BlockTask, { kind: 'convert' }>): BlockReply {
    const buf = readFileSync(task.file);
    const { header, length } = parseWholeHeader(buf, task.name);
    const reader = task.readerSchema ? this.typeOf(task.readerSchema) : undefined;
    const decode = reader && { reader, resolver: reader.createResolver(this.typeOf(header.schemaText)) };
    let records = 0;
    const blocks: { count: number; data: Buffer }[] = [];
    for (const [i, b] of this.framer.parseBlocks(buf, length, header, task.name).entries()) {
      const raw = decompressBlock(header.codec, buf.subarray(b.dataStart, b.dataEnd), task.name, i);
      records += b.count;
      blocks.push(...convertBlock(raw, b.count, task.name, decode));
    }
    return { id: task.id, kind: 'converted', records, blocks };
  }
}

function serve(): void {
  const worker = new BlockWorker();
  parentPort!.on('message', (task: BlockTask) => {
    let reply: BlockReply;
    try {
      reply = worker.handle(task);
    } catch (err) {
      const e = err as Error & { code?: string; file?: string; detail?: string };
      reply = { id: task.id, kind: 'error', error: { name: e.name, message: e.message, code: e.code, file: e.file, detail: e.detail } };
    }
    parentPort!.postMessage(reply);
  });
}

serve();
