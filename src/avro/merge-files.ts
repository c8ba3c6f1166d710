import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import avro from 'avsc';
import { mapLimit } from '../limit.js';
import { AvroFormatError } from './avro-format-error.js';
import { ByteReader } from './byte-reader.js';
import { compressSnappyBlock, decompressBlock, OUTPUT_CODEC, SUPPORTED_CODECS, verifySnappyBlock } from './codec.js';
import { ContainerWriter, readBlocks, readHeader, type ContainerHeader } from './container.js';

type Resolver = ReturnType<avro.Type['createResolver']>;

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
  onBlock?: (records: number, bytesIn: number) => void;
}

const READ_CHUNK = 1024 * 1024;
/** Files up to this size are read whole (one open, one read); larger ones are streamed. */
const WHOLE_FILE_MAX = 8 * 1024 * 1024;
/**
 * Files read ahead of the one being copied, so disk latency overlaps the copy.
 * Memory: at most PREFETCH x WHOLE_FILE_MAX bytes, usually far less (cold-tier files are small).
 */
const PREFETCH = 8;
/** CRC checks in flight on the thread pool; each holds one block. */
const VERIFY_IN_FLIGHT = 16;
/** Re-encoded records are gathered into blocks of about this size. */
const DECODE_BLOCK_BYTES = 256 * 1024;

/**
 * Merges Avro object-container files into one snappy file with exactly their
 * records. Normally all inputs share one schema and the merge is one pass of
 * block copies. Otherwise the output takes the schema most inputs have, and an
 * input with another schema is accepted only if its records resolve into that
 * schema with no field dropped; if not, the merge fails naming the file.
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

/** Opens an input: small files are read whole in one go, large ones streamed. */
async function openInput(input: MergeInput): Promise<ByteReader> {
  const fh = await open(input.file, 'r');
  try {
    const { size } = await fh.stat();
    if (size <= WHOLE_FILE_MAX) {
      const buf = Buffer.allocUnsafe(size);
      const { bytesRead } = await fh.read(buf, 0, size, 0);
      return new ByteReader([buf.subarray(0, bytesRead)]);
    }
  } finally {
    await fh.close();
  }
  return new ByteReader(createReadStream(input.file, { highWaterMark: READ_CHUNK }));
}

/** Opens the inputs in order, PREFETCH ahead of the one being consumed. */
async function* prefetched(inputs: MergeInput[]): AsyncGenerator<{ input: MergeInput; reader: ByteReader }> {
  const pending: Promise<ByteReader>[] = [];
  const start = (i: number) => {
    const p = openInput(inputs[i]!);
    p.catch(() => {}); // awaited (and thrown) in turn
    pending.push(p);
  };
  for (let i = 0; i < Math.min(PREFETCH, inputs.length); i++) start(i);
  for (let i = 0; i < inputs.length; i++) {
    const reader = await pending.shift()!;
    if (i + PREFETCH < inputs.length) start(i + PREFETCH);
    yield { input: inputs[i]!, reader };
  }
}

/** Bounded set of CRC checks running beside the copy; the first failure is thrown. */
class BlockVerifier {
  private readonly inFlight = new Set<Promise<void>>();
  private failure: Error | undefined;

  async add(data: Buffer, name: string, block: number): Promise<void> {
    const check = verifySnappyBlock(data).catch((err: Error) => {
      this.failure ??= new AvroFormatError(name, `block ${block} is corrupt: ${err.message}`);
    });
    this.inFlight.add(check);
    void check.finally(() => this.inFlight.delete(check));
    if (this.inFlight.size >= VERIFY_IN_FLIGHT) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure;
  }

  async done(): Promise<void> {
    await Promise.all(this.inFlight);
    if (this.failure) throw this.failure;
  }
}

class OutputFile {
  readonly result: MergeResult = { records: 0, blocks: 0, bytesIn: 0, bytesOut: 0, path: 'block-copy' };
  readonly verifier = new BlockVerifier();
  private constructor(
    private readonly fh: Awaited<ReturnType<typeof open>>,
    readonly writer: ContainerWriter,
    readonly onBlock?: (records: number, bytesIn: number) => void,
  ) {}

  static async create(outFile: string, schemaText: string, options: MergeOptions): Promise<OutputFile> {
    const fh = await open(outFile, 'w');
    const writer = new ContainerWriter(fh, options.sync);
    await writer.writeHeader(schemaText, OUTPUT_CODEC);
    return new OutputFile(fh, writer, options.onBlock);
  }

  /** Appends one input's blocks (its header already read from `reader`). */
  async copy(reader: ByteReader, header: ContainerHeader, name: string, decode?: { reader: avro.Type; resolver: Resolver }): Promise<void> {
    if (decode) this.result.path = 'decode';
    else if (header.codec !== OUTPUT_CODEC && this.result.path === 'block-copy') this.result.path = 'transcode';
    let index = 0;
    for await (const block of readBlocks(reader, header, name)) {
      if (header.codec === OUTPUT_CODEC && !decode) {
        await this.verifier.add(block.data, name, index);
        await this.writer.writeBlock(block.count, block.data);
      } else {
        let raw: Buffer;
        try {
          raw = decompressBlock(header.codec, block.data);
        } catch (err) {
          throw new AvroFormatError(name, `block ${index} is corrupt: ${(err as Error).message}`);
        }
        if (decode) await writeDecoded(this.writer, decode.reader, decode.resolver, block.count, raw, name);
        else await this.writer.writeBlock(block.count, compressSnappyBlock(raw));
      }
      this.result.records += block.count;
      this.result.blocks += 1;
      index++;
      this.onBlock?.(block.count, block.data.length);
    }
    this.result.bytesIn += reader.offset;
  }

  async finish(): Promise<MergeResult> {
    await this.verifier.done();
    await this.writer.flush();
    await this.fh.sync();
    this.result.bytesOut = this.writer.bytesWritten;
    return this.result;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** One pass, the normal case; undefined (output abandoned) as soon as an input has another schema. */
async function mergeSameSchema(inputs: MergeInput[], outFile: string, options: MergeOptions): Promise<MergeResult | undefined> {
  let out: OutputFile | undefined;
  let schema: Schema | undefined;
  try {
    for await (const { input, reader } of prefetched(inputs)) {
      try {
        const header = await readHeader(reader, input.name);
        checkCodec(header, input.name);
        const own = parseSchema(header, input.name);
        schema ??= own;
        if (own.fingerprint !== schema.fingerprint) return undefined;
        out ??= await OutputFile.create(outFile, schema.text, options);
        await out.copy(reader, header, input.name);
      } finally {
        await reader.close();
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
    const reader = await openInput(input);
    try {
      const header = await readHeader(reader, input.name);
      checkCodec(header, input.name);
      return { input, header, schema: parseSchema(header, input.name) };
    } finally {
      await reader.close();
    }
  });
  const groups = new Map<string, { schema: Schema; inputs: typeof headers }>();
  for (const h of headers) {
    const group = groups.get(h.schema.fingerprint) ?? { schema: h.schema, inputs: [] };
    group.inputs.push(h);
    groups.set(h.schema.fingerprint, group);
  }
  const ranked = [...groups.values()].sort((a, b) => b.inputs.length - a.inputs.length);
  const main = ranked[0]!;
  const resolvers = new Map<string, Resolver>();
  for (const other of ranked.slice(1)) {
    const missing = fieldNames(other.schema.type).filter((f) => !fieldNames(main.schema.type).includes(f));
    let resolver: Resolver | undefined;
    try {
      resolver = missing.length === 0 ? main.schema.type.createResolver(other.schema.type) : undefined;
    } catch {
      resolver = undefined;
    }
    if (!resolver) {
      throw new AvroFormatError(
        other.inputs[0]!.input.name,
        `schema differs from the rest of its day (${main.inputs.length} files, e.g. ${main.inputs[0]!.input.name})` +
          (missing.length ? `: fields ${missing.join(', ')} have no place in it` : ': records cannot be converted'),
      );
    }
    resolvers.set(other.schema.fingerprint, resolver);
  }
  const out = await OutputFile.create(outFile, main.schema.text, options);
  try {
    for (const group of ranked) {
      const resolver = resolvers.get(group.schema.fingerprint);
      for await (const { input, reader } of prefetched(group.inputs.map((h) => h.input))) {
        try {
          const header = await readHeader(reader, input.name);
          await out.copy(reader, header, input.name, resolver && { reader: main.schema.type, resolver });
        } finally {
          await reader.close();
        }
      }
    }
    return await out.finish();
  } finally {
    await out.close();
  }
}

async function writeDecoded(writer: ContainerWriter, readerType: avro.Type, resolver: Resolver, count: number, raw: Buffer, name: string): Promise<void> {
  let pos = 0;
  let encoded: Buffer[] = [];
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    let decoded: { value: unknown; offset: number };
    try {
      decoded = readerType.decode(raw, pos, resolver);
    } catch (err) {
      throw new AvroFormatError(name, `record ${i} cannot be decoded with its schema (${(err as Error).message})`);
    }
    if (decoded.offset < 0) throw new AvroFormatError(name, `record ${i} runs past the end of its block`);
    pos = decoded.offset;
    const out = readerType.toBuffer(decoded.value);
    encoded.push(out);
    bytes += out.length;
    if (bytes >= DECODE_BLOCK_BYTES || i === count - 1) {
      await writer.writeBlock(encoded.length, compressSnappyBlock(Buffer.concat(encoded, bytes)));
      encoded = [];
      bytes = 0;
    }
  }
  if (pos !== raw.length) throw new AvroFormatError(name, `block holds ${raw.length - pos} bytes after its ${count} records`);
}
