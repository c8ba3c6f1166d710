import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type avro from 'avsc';
import { mapLimit } from '../limit.js';
import { AvroFormatError } from './avro-format-error.js';
import { blockPool } from './block-pool.js';
import { giveBack, isRunning, readAhead, takeReader, type ReadSlab } from './read-ahead.js';
import { planGroups, readGroup, Reframer, sizesOf } from './read-group.js';
import { ByteReader } from './byte-reader.js';
import { decompressBlock, OUTPUT_CODEC, SUPPORTED_CODECS } from './codec.js';
import { convertBlock } from './convert-block.js';
import { ContainerWriter, parseWholeHeader, readBlocks, readHeader, reframeBlocks, SYNC_SIZE, type ContainerHeader } from './container.js';

export interface MergeInput {
  /** Local file to read. */
  file: string;
  /** What to call it in messages (the S3 key). */
  name: string;
  /** Its size when known (download checked it): saves a stat, and a file that differs is reported as such. */
  size?: number;
}

/**
 * block-copy: every input shares the output's schema and codec; blocks are
 * copied as stored (and checked against their CRCs if asked). transcode: same schema, some
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
  /** Also decompress every snappy block and check its CRC. Off (default): blocks are copied as stored, their structure checked. */
  checkCrc?: boolean;
  /** Inputs up to this size are read whole, larger ones streamed (default 8 MiB). */
  wholeFileMax?: number;
  /** Size of each of the reused buffers small inputs are read ahead into (default 4 MiB). */
  slabBytes?: number;
  /** false: read every input on this thread, without a reader thread (default: one is used once it has started). */
  readerThread?: boolean;
  /** Called after each input with its records and bytes. */
  onInput?: (records: number, bytesIn: number) => void;
}

const READ_CHUNK = 1024 * 1024;
const SLAB_BYTES = 4 * 1024 * 1024;
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

/** avsc, loaded on first use: a block copy of inputs that share one schema text never needs it. */
let avsc: typeof avro | undefined;
const avroLib = () => (avsc ??= createRequire(import.meta.url)('avsc') as typeof avro);

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
      type = avroLib().Type.forSchema(JSON.parse(header.schemaText) as avro.Schema);
    } catch (err) {
      throw new AvroFormatError(name, `invalid schema in header (${(err as Error).message})`);
    }
    schema = { type, text: header.schemaText, fingerprint: type.fingerprint('sha256').toString('hex') };
    schemaCache.set(header.schemaText, schema);
  }
  return schema;
}

/**
 * The block copy writes the inputs' schema text as it is, so it only checks
 * that it is JSON; the general path parses it fully.
 */
function validSchemaText(header: ContainerHeader, name: string): string {
  try {
    JSON.parse(header.schemaText);
  } catch (err) {
    throw new AvroFormatError(name, `invalid schema in header (${(err as Error).message})`);
  }
  return header.schemaText;
}

function checkCodec(header: ContainerHeader, name: string): void {
  if (!(SUPPORTED_CODECS as readonly string[]).includes(header.codec)) {
    throw new AvroFormatError(name, `codec '${header.codec}' is not supported (supported: ${SUPPORTED_CODECS.join(', ')})`);
  }
}

/** An input opened for copying: a small file in memory, or a large one as a stream. */
type Opened = { input: MergeInput; whole: Buffer } | { input: MergeInput; stream: ByteReader };

/** `bytes` read for `input`, checked against the size download verified. */
function checkedSize(input: MergeInput, bytes: Buffer): Buffer {
  if (input.size !== undefined && bytes.length !== input.size) {
    throw new AvroFormatError(input.name, `its local copy ${input.file} has ${bytes.length > input.size ? 'more' : 'fewer'} bytes than the ${input.size} downloaded; run download again`);
  }
  return bytes;
}

/**
 * Opens an input on this thread: small files are read synchronously (they
 * are in the page cache right after a download), large ones streamed.
 */
function openInput(input: MergeInput, wholeFileMax: number): Opened {
  const fd = openSync(input.file, 'r');
  try {
    const size = input.size ?? fstatSync(fd).size;
    if (size <= wholeFileMax) {
      // its own memory (not the shared pool), so it can be handed to a worker without a copy;
      // one byte more than expected, so a file that grew is noticed too
      const room = Buffer.allocUnsafeSlow(size + 1);
      return { input, whole: checkedSize(input, room.subarray(0, readSync(fd, room, 0, size + 1, 0))) };
    }
  } finally {
    closeSync(fd);
  }
  return { input, stream: new ByteReader(createReadStream(input.file, { highWaterMark: READ_CHUNK })) };
}

/**
 * Reads inputs' headers. A day's files nearly always repeat one header byte
 * for byte but for the sync marker at its end, so a header equal to the last
 * one parsed is taken as it is.
 */
class HeaderReader {
  private last: { bytes: Buffer; header: ContainerHeader } | undefined;

  async of(opened: Opened): Promise<{ header: ContainerHeader; length: number }> {
    if ('stream' in opened) {
      const header = await readHeader(opened.stream, opened.input.name);
      return { header, length: opened.stream.offset };
    }
    const buf = opened.whole;
    const last = this.last;
    const n = last?.bytes.length ?? 0;
    if (last && buf.length >= n + SYNC_SIZE && buf.compare(last.bytes, 0, n, 0, n) === 0) {
      return { header: { ...last.header, sync: buf.subarray(n, n + SYNC_SIZE) }, length: n + SYNC_SIZE };
    }
    const parsed = parseWholeHeader(buf, opened.input.name);
    this.last = { bytes: Buffer.from(buf.subarray(0, parsed.length - SYNC_SIZE)), header: parsed.header };
    return parsed;
  }
}

class OutputFile {
  readonly result: MergeResult = { records: 0, blocks: 0, bytesIn: 0, bytesOut: 0, path: 'block-copy' };
  private readonly checks = new Set<Promise<void>>();
  private failure: Error | undefined;

  private constructor(
    private readonly fh: FileHandle,
    readonly writer: ContainerWriter,
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
      // A block copy: re-frame the blocks in place with our sync marker and write them as one piece.
      const buf = opened.whole;
      const { records, blocks } = reframeBlocks(buf, headerLength, header, name, this.options.sync);
      this.count(records, blocks);
      this.writer.writeRaw(buf.subarray(headerLength));
      if (this.options.checkCrc) {
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

  /** Appends an input the reader thread has checked and re-framed with our sync marker. */
  appendFramed(blocks: Buffer, framed: { bytes: number; records: number; blocks: number }): void {
    this.writer.writeRaw(blocks);
    this.count(framed.records, framed.blocks);
    this.result.bytesIn += framed.bytes;
    this.options.onInput?.(framed.records, framed.bytes);
  }

  /** Large files: block by block from a stream, checked and converted here. */
  private async appendStream(reader: ByteReader, header: ContainerHeader, name: string, readerSchema?: string): Promise<void> {
    const readerType = readerSchema ? parseSchema({ ...header, schemaText: readerSchema }, name).type : undefined;
    const decode = readerType && { reader: readerType, resolver: readerType.createResolver(parseSchema(header, name).type) };
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
  let schemaText: string | undefined;
  const headers = new HeaderReader();
  const wholeFileMax = options.wholeFileMax ?? WHOLE_FILE_MAX;

  /** Appends an input no reader re-framed (`whole`: its bytes, if read); false if its schema is not the others'. */
  const append = async (input: MergeInput, whole: Buffer | undefined): Promise<boolean> => {
    const opened: Opened = whole ? { input, whole: checkedSize(input, whole) } : openInput(input, wholeFileMax);
    try {
      const { header, length } = await headers.of(opened);
      checkCodec(header, input.name);
      // the same text is the same schema; another text, even an equivalent one, takes the general path
      schemaText ??= validSchemaText(header, input.name);
      if (header.schemaText !== schemaText) return false;
      out ??= await OutputFile.create(outFile, schemaText, options);
      await out.append(opened, header, length);
      return true;
    } finally {
      if ('stream' in opened) await opened.stream.close();
    }
  };

  try {
    if (options.checkCrc) {
      // the bytes go on to CRC checks on the block workers: each input is read into memory of its own
      for (const input of inputs) if (!(await append(input, undefined))) return undefined;
      return await out!.finish();
    }
    // Inputs are read and re-framed a slab's worth (a group) at a time, by the reader thread while this
    // one writes. This thread reads the first group itself, and more while the reader thread is still
    // starting (tens of ms: a small day may be done by then). (A larger share here was measured: no
    // faster on 2 cores.)
    const slabBytes = Math.min(wholeFileMax + 1, options.slabBytes ?? SLAB_BYTES);
    const paths = inputs.map((input) => input.file);
    const sizes = sizesOf(inputs);
    const groups = planGroups(sizes, slabBytes);
    const reader = groups.length > 1 && options.readerThread !== false ? takeReader() : undefined;
    const release = () => out?.writer.flush();
    async function* groupsRead(): AsyncGenerator<ReadSlab, undefined, undefined> {
      const slab = new ArrayBuffer(slabBytes);
      const reframer = new Reframer(options.sync);
      let next = 0;
      let handedOver = false;
      try {
        do {
          if (next > 0) release(); // the slab is read into again
          yield { slab, entries: readGroup(paths, sizes, groups[next++]!, slab, reframer) };
        } while (next < groups.length && !(reader && isRunning(reader)));
        if (reader && next < groups.length) {
          handedOver = true;
          yield* readAhead(reader, { files: { paths: paths.join('\0'), sizes }, groups: groups.slice(next), slabBytes, sync: options.sync }, release);
        }
      } finally {
        if (reader && !handedOver) giveBack(reader);
      }
    }
    let appended = 0;
    for await (const read of groupsRead()) {
      for (const e of read.entries) {
        if (e.index !== appended++) throw new Error(`internal: input ${e.index} read out of order`);
        const input = inputs[e.index]!;
        if ('error' in e) throw Object.assign(new Error(e.error.message), { code: e.error.code });
        const bytes = 'tooLarge' in e ? undefined : Buffer.from(read.slab, e.start, e.end - e.start);
        // a framed input's header equals one appended before it (each reader leaves its first as read), so `out` exists
        if (bytes && 'framed' in e && e.framed) out!.appendFramed(bytes, e.framed);
        else if (!(await append(input, bytes))) return undefined;
      }
    }
    if (appended !== inputs.length) throw new Error(`internal: ${inputs.length - appended} inputs were not read`);
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
  const headers = new HeaderReader();
  const schemas = await mapLimit(inputs, PREFETCH, async (input) => {
    const opened = openInput(input, options.wholeFileMax ?? WHOLE_FILE_MAX);
    try {
      const { header } = await headers.of(opened);
      checkCodec(header, input.name);
      return { input, schema: parseSchema(header, input.name) };
    } finally {
      if ('stream' in opened) await opened.stream.close();
    }
  });
  const groups = new Map<string, { schema: Schema; inputs: MergeInput[] }>();
  for (const h of schemas) {
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
      for (const input of group.inputs) {
        const opened = openInput(input, options.wholeFileMax ?? WHOLE_FILE_MAX);
        try {
          const { header, length } = await headers.of(opened);
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

