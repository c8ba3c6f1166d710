import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import avro from 'avsc';
import { mapLimit } from '../limit.js';
import { AvroFormatError } from './avro-format-error.js';
import { blockPool } from './block-pool.js';
import { ByteReader } from './byte-reader.js';
import { decompressBlock, OUTPUT_CODEC, SUPPORTED_CODECS } from './codec.js';
import { convertBlock } from './convert-block.js';
import { ContainerWriter, parseBlocks, parseWholeHeader, readBlocks, readHeader, type ContainerHeader } from './container.js';

export interface MergeInput {
  /** Local file to read. */
  file: string;
  /** What to call it in messages (the S3 key). */
  name: string;
}

/**
 * block-copy: every input shares the output's schema and codec; blocks are
 * copied as stored, each checked against its CRC. transcode: same schema, some
 * blocks recompressed from another codec. decode: some inputs had another
 * (compatible) schema; their records were decoded and re-encoded.
 */
export type MergePath = 'block-copy' | 'transcode' | 'decode';

export interface MergeResult {
  records: number;
  blocks: number;
  bytesIn: number;
  bytesOut: number;
  path: MergePath;
}

export interface MergeOptions {
  /** The output's 16-byte sync marker; derived from the inputs so the output is reproducible. */
  sync: Buffer;
  /** Check every snappy block against its CRC (default). Off: only the structure is checked. */
  checkCrc?: boolean;
  /** Inputs up to this size are read whole, larger ones streamed (default 8 MiB). */
  wholeFileMax?: number;
  /** Called after each input with its records and bytes. */
  onInput?: (records: number, bytesIn: number) => void;
}

const READ_CHUNK = 1024 * 1024;
/** Files up to this size are read whole (one open, one read); larger ones are streamed. */
const WHOLE_FILE_MAX = 8 * 1024 * 1024;
/** Headers read at once when the schemas differ. */
const PREFETCH = 8;
/** Files whose CRC checks may be queued on the worker threads at once (their bytes are held meanwhile). */
const CHECKS_IN_FLIGHT = 16;

/**
 * Merges Avro object-container files into one snappy file with exactly their
 * records. Normally all inputs share one schema and the merge is one pass:
 * the main thread copies each file's blocks as they are, re-framed with the
 * output's sync marker, while worker threads check every block's CRC (the
 * output is only reported complete once all checks passed). Otherwise the
 * output takes the schema most inputs have, and an input with another schema
 * is accepted only if its records resolve into that schema with no field
 * dropped; if not, the merge fails naming the file.
 */
export async function mergeFiles(inputs: MergeInput[], outFile: string, options: MergeOptions): Promise<MergeResult> {
  if (inputs.length === 0) throw new Error('mergeFiles needs at least one input');
  return (await mergeSameSchema(inputs, outFile, options)) ?? (await mergeMixedSchemas(inputs, outFile, options));
}

interface Schema {
  type: avro.Type;
  text: string;
  fingerprint: string;
}

const schemaCache = new Map<string, Schema>();

function parseSchema(header: ContainerHeader, name: string): Schema {
  let schema = schemaCache.get(header.schemaText);
  if (!schema) {
    let type: avro.Type;
    try {
      type = avro.Type.forSchema(JSON.parse(header.schemaText) as avro.Schema);
    } catch (err) {
      throw new AvroFormatError(name, `invalid schema in header (${(err as Error).message})`);
    }
    schema = { type, text: header.schemaText, fingerprint: type.fingerprint('sha256').toString('hex') };
    schemaCache.set(header.schemaText, schema);
  }
  return schema;
}

function checkCodec(header: ContainerHeader, name: string): void {
  if (!(SUPPORTED_CODECS as readonly string[]).includes(header.codec)) {
    throw new AvroFormatError(name, `codec '${header.codec}' is not supported (supported: ${SUPPORTED_CODECS.join(', ')})`);
  }
}

/** An input opened for copying: a small file in memory, or a large one as a stream. */
type Opened = { input: MergeInput; whole: Buffer } | { input: MergeInput; stream: ByteReader };

/**
 * Small files are read synchronously: they are in the page cache right after
 * a download, and a blocking read costs far less than the four thread-pool
 * round trips of an asynchronous one.
 */
function openInput(input: MergeInput, wholeFileMax: number): Opened {
  const fd = openSync(input.file, 'r');
  try {
    const { size } = fstatSync(fd);
    if (size <= wholeFileMax) {
      // its own memory (not the shared pool), so it can be handed to a worker without a copy
      const whole = Buffer.allocUnsafeSlow(size);
      const read = readSync(fd, whole, 0, size, 0);
      return { input, whole: whole.subarray(0, read) };
    }
  } finally {
    closeSync(fd);
  }
  return { input, stream: new ByteReader(createReadStream(input.file, { highWaterMark: READ_CHUNK })) };
}

function* openedInputs(inputs: MergeInput[], options: MergeOptions): Generator<Opened> {
  for (const input of inputs) yield openInput(input, options.wholeFileMax ?? WHOLE_FILE_MAX);
}

async function headerOf(opened: Opened): Promise<{ header: ContainerHeader; length: number }> {
  if ('whole' in opened) return parseWholeHeader(opened.whole, opened.input.name);
  const header = await readHeader(opened.stream, opened.input.name);
  return { header, length: opened.stream.offset };
}

class OutputFile {
  readonly result: MergeResult = { records: 0, blocks: 0, bytesIn: 0, bytesOut: 0, path: 'block-copy' };
  private readonly checks = new Set<Promise<void>>();
  private failure: Error | undefined;

  private constructor(
    private readonly fh: FileHandle,
    private readonly writer: ContainerWriter,
    private readonly options: MergeOptions,
  ) {}

  static async create(outFile: string, schemaText: string, options: MergeOptions): Promise<OutputFile> {
    const fh = await open(outFile, 'w');
    const writer = new ContainerWriter(fh.fd, options.sync);
    writer.writeHeader(schemaText, OUTPUT_CODEC);
    return new OutputFile(fh, writer, options);
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
      // The hot path: re-frame the blocks in place with our sync marker and write them as one piece.
      const buf = opened.whole;
      const blocks = parseBlocks(buf, headerLength, header, name);
      for (const b of blocks) {
        this.options.sync.copy(buf, b.dataEnd);
        this.count(b.count);
      }
      this.writer.writeRaw(buf.subarray(headerLength));
      if (this.options.checkCrc !== false) {
        this.writer.flush(); // written, so the bytes can go to a worker for the CRC checks
        await this.check(buf.subarray(headerLength), header.codec, name);
      }
    } else {
      const reply = await blockPool().run({ kind: 'convert', file, name, readerSchema });
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

  /** Large files: block by block from a stream, checked and converted here. */
  private async appendStream(reader: ByteReader, header: ContainerHeader, name: string, readerSchema?: string): Promise<void> {
    const readerType = readerSchema ? parseSchema({ ...header, schemaText: readerSchema }, name).type : undefined;
    const decode = readerType && { reader: readerType, resolver: readerType.createResolver(parseSchema(header, name).type) };
    const copyAsIs = header.codec === OUTPUT_CODEC && !decode;
    let index = 0;
    for await (const block of readBlocks(reader, header, name)) {
      if (copyAsIs) {
        if (this.options.checkCrc !== false) decompressBlock(header.codec, block.data, name, index);
        this.writer.writeBlock(block.count, block.data);
      } else {
        for (const b of convertBlock(decompressBlock(header.codec, block.data, name, index), block.count, name, decode)) this.writer.writeBlock(b.count, b.data);
      }
      this.count(block.count);
      index++;
    }
  }

  private count(records: number): void {
    this.result.records += records;
    this.result.blocks += 1;
  }

  /** Hands a copied file's blocks to the worker threads for their CRC checks; waits when too many are queued. */
  private async check(blocks: Buffer, codec: string, name: string): Promise<void> {
    const check = blockPool()
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
    await this.fh.sync();
    this.result.bytesOut = this.writer.bytesWritten;
    return this.result;
  }

  async close(): Promise<void> {
    await Promise.all(this.checks);
    await this.fh.close();
  }
}

/** One pass, the normal case; undefined (output abandoned) as soon as an input has another schema. */
async function mergeSameSchema(inputs: MergeInput[], outFile: string, options: MergeOptions): Promise<MergeResult | undefined> {
  let out: OutputFile | undefined;
  let schema: Schema | undefined;
  try {
    for (const opened of openedInputs(inputs, options)) {
      try {
        const { header, length } = await headerOf(opened);
        checkCodec(header, opened.input.name);
        const own = parseSchema(header, opened.input.name);
        schema ??= own;
        if (own.fingerprint !== schema.fingerprint) return undefined;
        out ??= await OutputFile.create(outFile, schema.text, options);
        await out.append(opened, header, length);
      } finally {
        if ('stream' in opened) await opened.stream.close();
      }
    }
    return await out!.finish();
  } finally {
    await out?.close();
  }
}

function fieldNames(type: avro.Type): string[] {
  const schema = type.schema() as { fields?: { name: string }[] };
  return (schema.fields ?? []).map((f) => f.name);
}

async function mergeMixedSchemas(inputs: MergeInput[], outFile: string, options: MergeOptions): Promise<MergeResult> {
  const headers = await mapLimit(inputs, PREFETCH, async (input) => {
    const opened = openInput(input, options.wholeFileMax ?? WHOLE_FILE_MAX);
    try {
      const { header } = await headerOf(opened);
      checkCodec(header, input.name);
      return { input, schema: parseSchema(header, input.name) };
    } finally {
      if ('stream' in opened) await opened.stream.close();
    }
  });
  const groups = new Map<string, { schema: Schema; inputs: MergeInput[] }>();
  for (const h of headers) {
    const group = groups.get(h.schema.fingerprint) ?? { schema: h.schema, inputs: [] };
    group.inputs.push(h.input);
    groups.set(h.schema.fingerprint, group);
  }
  const ranked = [...groups.values()].sort((a, b) => b.inputs.length - a.inputs.length);
  const main = ranked[0]!;
  for (const other of ranked.slice(1)) {
    const missing = fieldNames(other.schema.type).filter((f) => !fieldNames(main.schema.type).includes(f));
    let resolvable = missing.length === 0;
    try {
      if (resolvable) main.schema.type.createResolver(other.schema.type);
    } catch {
      resolvable = false;
    }
    if (!resolvable) {
      throw new AvroFormatError(
        other.inputs[0]!.name,
        `schema differs from the rest of its day (${main.inputs.length} files, e.g. ${main.inputs[0]!.name})` +
          (missing.length ? `: fields ${missing.join(', ')} have no place in it` : ': records cannot be converted'),
      );
    }
  }
  const out = await OutputFile.create(outFile, main.schema.text, options);
  try {
    for (const group of ranked) {
      for (const opened of openedInputs(group.inputs, options)) {
        try {
          const { header, length } = await headerOf(opened);
          await out.append(opened, header, length, group === main ? undefined : main.schema.text);
        } finally {
          if ('stream' in opened) await opened.stream.close();
        }
      }
    }
    return await out.finish();
  } finally {
    await out.close();
  }
}

