import { open, type FileHandle } from 'node:fs/promises';
import type { ByteReader } from './byte-reader.js';
import { decompressBlock, OUTPUT_CODEC } from './codec.js';
import { BlockFramer, readBlocks, type ContainerHeader } from './container.js';
import { ContainerWriter } from './container-writer.js';
import { convertBlock } from './convert-block.js';
import type { Opened, Schemas } from './merge-inputs.js';
import type { MergeOptions, MergeResult } from './merge-options.js';

/** Files whose CRC checks may be queued on the worker threads at once (their bytes are held meanwhile). */
const CHECKS_IN_FLIGHT = 16;

/** The merged file being written: inputs are appended to it, copied or converted, and counted. */
export class OutputFile {
  readonly result: MergeResult = { records: 0, blocks: 0, bytesIn: 0, bytesOut: 0, path: 'block-copy' };
  private readonly checks = new Set<Promise<void>>();
  private readonly framer = new BlockFramer();
  private failure: Error | undefined;

  private constructor(
    private readonly fh: FileHandle,
    readonly writer: ContainerWriter,
    private readonly options: MergeOptions,
    private readonly schemas: Schemas,
  ) {}

  static async create(outFile: string, schemaText: string, options: MergeOptions, schemas: Schemas): Promise<OutputFile> {
    const fh = await open(outFile, 'w');
    const writer = new ContainerWriter(fh.fd, options.sync);
    writer.writeHeader(schemaText, OUTPUT_CODEC);
    return new OutputFile(fh, writer, options, schemas);
  }

  /** Appends one input (its header already parsed), converting it when `readerSchema` (decode) or its codec asks for it. */
  async append(opened: Opened, header: ContainerHeader, headerLength: number, readerSchema?: string): Promise<void> {
    const { name, file } = opened.input;
    const recordsBefore = this.result.records;
    // taken now: a whole file's memory is handed to a worker once written
    const wholeBytes = 'whole' in opened ? opened.whole.length : undefined;
    if (readerSchema) this.result.path = 'decode';
    else if (header.codec !== OUTPUT_CODEC && this.result.path === 'block-copy') this.result.path = 'transcode';
    if ('stream' in opened) {
      await this.appendStream(opened.stream, header, name, readerSchema);
    } else if (header.codec === OUTPUT_CODEC && !readerSchema) {
      // A block copy: re-frame the blocks in place with our sync marker and write them as one piece.
      const buf = opened.whole;
      const { records, blocks } = this.framer.reframe(buf, headerLength, header, name, this.options.sync);
      this.count(records, blocks);
      this.writer.writeRaw(buf.subarray(headerLength));
      if (this.options.checkCrc) {
        this.writer.flush(); // written, so the bytes can go to a worker for the CRC checks
        await this.check(buf.subarray(headerLength), header.codec, name);
      }
    } else {
      const reply = await this.options.workers.blocks.run({ kind: 'convert', file, name, readerSchema });
      if (reply.kind !== 'converted') throw new Error('internal: unexpected worker reply');
      for (const b of reply.blocks) {
        this.writer.writeBlock(b.count, Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength));
        this.count(b.count);
      }
    }
    const bytes = wholeBytes ?? ('stream' in opened ? opened.stream.offset : 0);
    this.result.bytesIn += bytes;
    this.options.onInput?.(this.result.records - recordsBefore, bytes);
  }

  /** Appends an input the reader thread has checked and re-framed with our sync marker. */
  appendFramed(blocks: Buffer, framed: { bytes: number; records: number; blocks: number }): void {
    this.writer.writeRaw(blocks);
    this.count(framed.records, framed.blocks);
    this.result.bytesIn += framed.bytes;
    this.options.onInput?.(framed.records, framed.bytes);
  }

  /** Large files: block by block from a stream, checked and converted here. */
  private async appendStream(reader: ByteReader, header: ContainerHeader, name: string, readerSchema?: string): Promise<void> {
    const readerType = readerSchema ? this.schemas.of({ ...header, schemaText: readerSchema }, name).type : undefined;
    const decode = readerType && { reader: readerType, resolver: readerType.createResolver(this.schemas.of(header, name).type) };
    const copyAsIs = header.codec === OUTPUT_CODEC && !decode;
    let index = 0;
    for await (const block of readBlocks(reader, header, name)) {
      if (copyAsIs) {
        if (this.options.checkCrc) decompressBlock(header.codec, block.data, name, index);
        this.writer.writeBlock(block.count, block.data);
      } else {
        for (const b of convertBlock(decompressBlock(header.codec, block.data, name, index), block.count, name, decode)) this.writer.writeBlock(b.count, b.data);
      }
      this.count(block.count);
      index++;
    }
  }

  private count(records: number, blocks = 1): void {
    this.result.records += records;
    this.result.blocks += blocks;
  }

  /** Hands a copied file's blocks to the worker threads for their CRC checks; waits when too many are queued. */
  private async check(blocks: Buffer, codec: string, name: string): Promise<void> {
    const check = this.options.workers.blocks
      .run({ kind: 'verify', blocks, sync: this.options.sync, codec, name }, [blocks.buffer as ArrayBuffer])
      .then(
        () => {},
        (err: Error) => {
          this.failure ??= err;
        },
      );
    this.checks.add(check);
    void check.finally(() => this.checks.delete(check));
    if (this.checks.size >= CHECKS_IN_FLIGHT) await Promise.race(this.checks);
    if (this.failure) throw this.failure;
  }

  async finish(): Promise<MergeResult> {
    await Promise.all(this.checks);
    if (this.failure) throw this.failure;
    this.writer.flush();
    this.result.bytesOut = this.writer.bytesWritten;
    return this.result;
  }

  async close(): Promise<void> {
    await Promise.all(this.checks);
    await this.fh.close();
  }
}
