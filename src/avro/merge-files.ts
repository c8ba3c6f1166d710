import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import avro from 'avsc';

type Resolver = ReturnType<avro.Type['createResolver']>;
import { AvroFormatError } from './avro-format-error.js';
import { ByteReader } from './byte-reader.js';
import { compressSnappyBlock, decompressBlock, OUTPUT_CODEC, SUPPORTED_CODECS } from './codec.js';
import { ContainerWriter, readBlocks, readHeader, type ContainerHeader } from './container.js';

export interface MergeInput {
  /** Local file to read. */
  file: string;
  /** What to call it in messages (the S3 key). */
  name: string;
}

/**
 * block-copy: every input shares the output's schema and codec, blocks are
 * copied as stored (after their CRC is checked). transcode: same schema, some
 * blocks recompressed. decode: some inputs had another (compatible) schema and
 * their records were decoded and re-encoded.
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
/** Re-encoded records are gathered into blocks of about this size. */
const DECODE_BLOCK_BYTES = 256 * 1024;

function openReader(file: string): ByteReader {
  return new ByteReader(createReadStream(file, { highWaterMark: READ_CHUNK }));
}

async function readInputHeader(input: MergeInput): Promise<ContainerHeader> {
  const reader = openReader(input.file);
  try {
    return await readHeader(reader, input.name);
  } finally {
    await reader.close();
  }
}

interface SchemaGroup {
  type: avro.Type;
  schemaText: string;
  inputs: MergeInput[];
}

function parseSchema(header: ContainerHeader, name: string): avro.Type {
  try {
    return avro.Type.forSchema(JSON.parse(header.schemaText) as avro.Schema);
  } catch (err) {
    throw new AvroFormatError(name, `invalid schema in header (${(err as Error).message})`);
  }
}

function fieldNames(type: avro.Type): string[] {
  const schema = type.schema() as { fields?: { name: string }[] };
  return (schema.fields ?? []).map((f) => f.name);
}

/**
 * Merges Avro object-container files into one snappy file with exactly their
 * records. The output schema is the one most inputs have; an input with
 * another schema is accepted only if its records resolve into that schema with
 * no field dropped, otherwise the merge fails naming the file.
 */
export async function mergeFiles(inputs: MergeInput[], outFile: string, options: MergeOptions): Promise<MergeResult> {
  const headers = new Map<MergeInput, ContainerHeader>();
  const groups = new Map<string, SchemaGroup>();
  for (const input of inputs) {
    const header = await readInputHeader(input);
    if (!(SUPPORTED_CODECS as readonly string[]).includes(header.codec)) {
      throw new AvroFormatError(input.name, `codec '${header.codec}' is not supported (supported: ${SUPPORTED_CODECS.join(', ')})`);
    }
    headers.set(input, header);
    const type = parseSchema(header, input.name);
    const fp = type.fingerprint('sha256').toString('hex');
    const group = groups.get(fp) ?? { type, schemaText: header.schemaText, inputs: [] };
    group.inputs.push(input);
    groups.set(fp, group);
  }
  const ranked = [...groups.values()].sort((a, b) => b.inputs.length - a.inputs.length);
  const main = ranked[0];
  if (!main) throw new Error('mergeFiles needs at least one input');
  const resolvers = new Map<SchemaGroup, Resolver>();
  for (const other of ranked.slice(1)) {
    const first = other.inputs[0]!;
    const missing = fieldNames(other.type).filter((f) => !fieldNames(main.type).includes(f));
    let resolver: Resolver | undefined;
    try {
      resolver = missing.length === 0 ? main.type.createResolver(other.type) : undefined;
    } catch {
      resolver = undefined;
    }
    if (!resolver) {
      throw new AvroFormatError(
        first.name,
        `schema differs from the rest of its day (${main.inputs.length} files, e.g. ${main.inputs[0]!.name})` +
          (missing.length ? `: fields ${missing.join(', ')} have no place in it` : ': records cannot be converted'),
      );
    }
    resolvers.set(other, resolver);
  }

  const fh = await open(outFile, 'w');
  const result: MergeResult = { records: 0, blocks: 0, bytesIn: 0, bytesOut: 0, path: 'block-copy' };
  try {
    const writer = new ContainerWriter(fh, options.sync);
    await writer.writeHeader(main.schemaText, OUTPUT_CODEC);
    for (const group of ranked) {
      const resolver = resolvers.get(group);
      for (const input of group.inputs) {
        const header = headers.get(input)!;
        if (resolver) result.path = 'decode';
        else if (header.codec !== OUTPUT_CODEC && result.path === 'block-copy') result.path = 'transcode';
        const reader = openReader(input.file);
        try {
          await readHeader(reader, input.name);
          for await (const block of readBlocks(reader, header, input.name)) {
            let raw: Buffer;
            try {
              raw = decompressBlock(header.codec, block.data);
            } catch (err) {
              throw new AvroFormatError(input.name, `block ${result.blocks} is corrupt: ${(err as Error).message}`);
            }
            if (resolver) {
              await writeDecoded(writer, main.type, group.type, resolver, block.count, raw, input.name);
            } else {
              await writer.writeBlock(block.count, header.codec === OUTPUT_CODEC ? block.data : compressSnappyBlock(raw));
            }
            result.records += block.count;
            result.blocks += 1;
            options.onBlock?.(block.count, block.data.length);
          }
          result.bytesIn += reader.offset;
        } finally {
          await reader.close();
        }
      }
    }
    await writer.flush();
    await fh.sync();
    result.bytesOut = writer.bytesWritten;
  } finally {
    await fh.close();
  }
  return result;
}

async function writeDecoded(
  writer: ContainerWriter,
  readerType: avro.Type,
  writerType: avro.Type,
  resolver: Resolver,
  count: number,
  raw: Buffer,
  name: string,
): Promise<void> {
  let pos = 0;
  let encoded: Buffer[] = [];
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    let decoded: { value: unknown; offset: number };
    try {
      decoded = readerType.decode(raw, pos, resolver);
    } catch (err) {
      throw new AvroFormatError(name, `record ${i} cannot be decoded with its schema ${writerType.name ?? ''} (${(err as Error).message})`);
    }
    if (decoded.offset < 0) throw new AvroFormatError(name, `record ${i} runs past the end of its block`);
    pos = decoded.offset;
    const out = readerType.toBuffer(decoded.value);
    encoded.push(out);
    bytes += out.length;
    if (bytes >= DECODE_BLOCK_BYTES || i === count - 1) {
      const n = encoded.length;
      await writer.writeBlock(n, compressSnappyBlock(Buffer.concat(encoded, bytes)));
      encoded = [];
      bytes = 0;
    }
  }
  if (pos !== raw.length) throw new AvroFormatError(name, `block holds ${raw.length - pos} bytes after its ${count} records`);
}
