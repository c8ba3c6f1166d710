/**
 * What the Parquet writer reads a day from: its columns, and one series'
 * rows at a time in seriesId order, from a day's Avro inputs (a Parquet
 * day's own files are rewritten by DuckDB alone: parquet-output.ts).
 */
import { readFileSync } from 'node:fs';
import type avro from 'avsc';
import { AvroFormatError } from '../avro/avro-format-error.js';
import { decompressBlock, decompressBlockInto, SUPPORTED_CODECS, type Scratch } from '../avro/codec.js';
import { BlockFramer, parseWholeHeader } from '../avro/container.js';
import { flatFields, type Primitive } from '../avro/flat-schema.js';
import { avsc as loadAvsc } from '../shared/load-on-use.js';
import { ColumnData, decodeBlock } from './avro-columns.js';
import type { DayInput } from './output-format.js';

/**
 * A series whose distinct string values would outgrow the heap it is
 * decoded in (the decoder thread's is small): the day is then decoded on the
 * main thread instead (parquet-output.ts).
 */
export class TooLargeForThread extends Error {
  // its name crosses from the thread, not the class
  static readonly NAME = 'TooLargeForThread';
  override name = TooLargeForThread.NAME;
}

/** What a series' distinct string values cost on the heap: their bytes, and about this much each (the copy, its map key and entry). */
const HEAP_BYTES_PER_VALUE = 200;
const distinctCost = (group: Map<string, ColumnData>) => {
  let n = 0;
  for (const c of group.values()) n += c.values.length * HEAP_BYTES_PER_VALUE + c.valueBytes;
  return n;
};

/** A column: its name, how it is stored (ColumnData's type), whether it holds a nested Avro type as JSON text, and whether it is optional. */
export type Column = { name: string; type: Exclude<Primitive, 'null'>; json: boolean; nullable: boolean };

type Field = { name: string; type: unknown };

const PRIMITIVE_TYPES: readonly string[] = ['boolean', 'int', 'long', 'float', 'double', 'bytes', 'string'];

/** The header of an input, or undefined when it has none that can be read (the input is then reported bad when it is decoded). */
function headerOf(input: DayInput) {
  try {
    return parseWholeHeader(readFileSync(input.file), input.name).header;
  } catch {
    return undefined;
  }
}

/** The Parquet columns of an Avro record schema. */
export function columnsOf(schema: { fields?: Field[] }): Column[] {
  return (schema.fields ?? []).map((f) => {
    const branches = Array.isArray(f.type) ? (f.type as unknown[]) : [f.type];
    const nonNull = branches.filter((b) => b !== 'null');
    const nullable = nonNull.length < branches.length;
    const only = nonNull.length === 1 ? nonNull[0] : undefined;
    const name = typeof only === 'string' ? only : (only as { type?: string } | undefined)?.type;
    const primitive = name !== undefined && name !== 'null' && PRIMITIVE_TYPES.includes(name);
    return { name: f.name, type: primitive ? (name as Column['type']) : 'string', json: !primitive, nullable };
  });
}

/** Every record of one Avro input, decoded in its own schema and read as `reader` (the day's column schema). */
function decodeInput(avsc: typeof avro, input: DayInput, reader: avro.Type | undefined): { records: Record<string, unknown>[]; bytes: number } {
  const buf = readFileSync(input.file);
  const { header, length } = parseWholeHeader(buf, input.name);
  if (!(SUPPORTED_CODECS as readonly string[]).includes(header.codec)) throw new AvroFormatError(input.name, `codec '${header.codec}' is not one of ${SUPPORTED_CODECS.join(', ')}`);
  let schema: { fields?: Field[] };
  let writer: avro.Type;
  try {
    schema = JSON.parse(header.schemaText) as { fields?: Field[] };
    writer = avsc.Type.forSchema(schema as avro.Schema, { wrapUnions: false });
  } catch (err) {
    throw new AvroFormatError(input.name, `its schema cannot be read (${(err as Error).message})`);
  }
  const type = reader ?? writer;
  let resolver: ReturnType<avro.Type['createResolver']> | undefined;
  if (reader && reader.schema() !== writer.schema()) {
    try {
      resolver = reader.createResolver(writer);
    } catch (err) {
      throw new AvroFormatError(input.name, `its schema does not fit the day's first schema (${(err as Error).message})`);
    }
  }
  const records: Record<string, unknown>[] = [];
  let index = 0;
  new BlockFramer().forEachBlock(buf, length, header, input.name, (count, start, end) => {
    const raw = decompressBlock(header.codec, buf.subarray(start, end), input.name, index++);
    let pos = 0;
    for (let i = 0; i < count; i++) {
      let d: { value: unknown; offset: number };
      try {
        d = type.decode(raw, pos, resolver);
      } catch (err) {
        throw new AvroFormatError(input.name, `a record of block ${index - 1} cannot be decoded (${(err as Error).message})`);
      }
      if (d.offset < 0) throw new AvroFormatError(input.name, `a record of block ${index - 1} runs past the end of its block`);
      pos = d.offset;
      records.push(d.value as Record<string, unknown>);
    }
  });
  return { records, bytes: buf.length };
}


/** What a day's inputs have been read into, so far: for the day's summary, and the inputs that could not be read. */
export interface Tally {
  records: number;
  bytesIn: number;
  bad: { name: string; reason: string }[];
  onInput?: (records: number, bytesIn: number) => void;
}

/**
 * A day's inputs as columns and one series' rows at a time (unsorted), in
 * seriesId order, with `undefined` after each
 * input but a series' last: a point where the reader may stop for other
 * work. Read synchronously: the Parquet writer asks for rows from inside
 * DuckDB's scan, which cannot wait.
 */
export interface SeriesSource {
  columns: Column[];
  series: Iterable<Map<string, ColumnData> | undefined>;
}

export const freshColumns = (columns: Column[]) => new Map(columns.map((c) => [c.name, new ColumnData(c.type)]));
export const rowsOf = (group: Map<string, ColumnData>): number => group.values().next().value?.length ?? 0;

/** Columns handed back once read, filled again for a later series (no new buffers once they are large enough). */
export interface ColumnsPool {
  pop(): Map<string, ColumnData> | undefined;
}

/**
 * Avro inputs, series by series: a flat schema decoded straight into columns,
 * another by avsc (nested types as JSON text). A series whose distinct values
 * cost more than `heapBudget` bytes throws TooLargeForThread.
 */
export function avroSource(inputs: DayInput[], tally: Tally, pool: ColumnsPool = [], heapBudget = Infinity): SeriesSource {
  const avsc = loadAvsc();
  // series by series, in seriesId order; an input of unknown series sorts by its name
  const bySeries = new Map<string, DayInput[]>();
  for (const input of inputs) {
    const id = input.seriesId ?? input.name;
    bySeries.set(id, [...(bySeries.get(id) ?? []), input]);
  }
  const badInput = (err: unknown) => {
    if (!(err instanceof AvroFormatError)) throw err;
    tally.bad.push({ name: err.file, reason: err.detail });
  };
  // the day's columns are the first input's schema
  const first = inputs[0] && headerOf(inputs[0]);
  const firstSchema = first && (JSON.parse(first.schemaText) as { fields?: Field[] });
  const flat = firstSchema && flatFields(firstSchema);
  const columns = firstSchema ? columnsOf(firstSchema) : [];
  const reader = firstSchema && !flat ? avsc.Type.forSchema(firstSchema as avro.Schema, { wrapUnions: false }) : undefined;
  const counted = (records: number, bytes: number) => {
    tally.records += records;
    tally.bytesIn += bytes;
    tally.onInput?.(records, bytes);
  };

  const withinBudget = (input: DayInput, group: Map<string, ColumnData>) => {
    const cost = distinctCost(group);
    if (cost > heapBudget) throw new TooLargeForThread(`${input.name}: its series' distinct values need about ${Math.round(cost / 2 ** 20)} MB, more than the decoder thread's ${Math.round(heapBudget / 2 ** 20)} MB`);
  };

  // one buffer for every block's decompressed bytes: decodeBlock copies out what it keeps
  const scratch: Scratch = { buffer: Buffer.alloc(0) };
  const addFlat = (input: DayInput, into: Map<string, ColumnData>) => {
    const buf = readFileSync(input.file);
    const { header, length } = parseWholeHeader(buf, input.name);
    const fields = flatFields(JSON.parse(header.schemaText) as { fields?: Field[] });
    if (!fields) throw new AvroFormatError(input.name, "its schema is not the day's flat record schema");
    let index = 0;
    let count = 0;
    new BlockFramer().forEachBlock(buf, length, header, input.name, (n, start, end) => {
      const raw = decompressBlockInto(header.codec, buf.subarray(start, end), input.name, index++, scratch);
      try {
        if (decodeBlock(raw, n, fields, into) !== raw.length) throw new RangeError('bytes after its records');
      } catch (err) {
        throw new AvroFormatError(input.name, `block ${index - 1} cannot be decoded (${(err as Error).message})`);
      }
      count += n;
      withinBudget(input, into);
    });
    counted(count, buf.length);
  };
  const addDecoded = (input: DayInput, into: Map<string, ColumnData>) => {
    const got = decodeInput(avsc, input, reader);
    for (const c of columns) {
      const column = into.get(c.name)!;
      for (const r of got.records) column.appendValue(c.json ? (r[c.name] === null ? null : JSON.stringify(r[c.name])) : r[c.name]);
    }
    withinBudget(input, into);
    counted(got.records.length, got.bytes);
  };

  function* series() {
    for (const id of [...bySeries.keys()].sort()) {
      // the reader may keep (or hand to another thread) the columns it was given: these are new or handed back
      const rows = pool.pop() ?? freshColumns(columns);
      for (const c of rows.values()) c.reset();
      const these = bySeries.get(id)!;
      for (const [i, input] of these.entries()) {
        try {
          (flat ? addFlat : addDecoded)(input, rows);
        } catch (err) {
          badInput(err);
        }
        if (i < these.length - 1) yield undefined;
      }
      yield rows;
    }
  }
  return { columns, series: series() };
}

