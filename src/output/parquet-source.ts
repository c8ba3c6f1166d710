/**
 * A day's Parquet files (compact's inputs) read back series by series: each
 * file is already ordered by seriesId, so the files are merged like sorted
 * lists, one row group of each file in memory at a time, and a series' rows
 * from every file are handed on together (the writer sorts them by time and,
 * with dedupe, keeps each key's latest).
 */
import { openAsBlob } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type * as Arrow from 'apache-arrow';
import type * as ParquetWasm from 'parquet-wasm';
import { DayError } from '../shared/errors.js';
import type { Primitive } from '../avro/flat-schema.js';
import { ColumnData } from './avro-columns.js';
import type { DayInput } from './output-format.js';
import { freshColumns, type Column, type SeriesSource, type Tally } from './series-source.js';

const requireHere = createRequire(import.meta.url);
const MAGIC = Buffer.from('PAR1');

/** Whether `file` starts as a Parquet file does. */
export async function isParquet(file: string | undefined): Promise<boolean> {
  if (file === undefined) return false;
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return false;
  try {
    const head = Buffer.alloc(4);
    await handle.read(head, 0, 4, 0);
    return head.equals(MAGIC);
  } finally {
    await handle.close();
  }
}

type ColumnType = Exclude<Primitive, 'null'>;

/** The column type an Arrow field is stored as here, or undefined for one this tool never writes. */
export function columnType(arrow: typeof Arrow, type: Arrow.DataType): ColumnType | undefined {
  const t = arrow.DataType;
  if (t.isUtf8(type)) return 'string';
  if (t.isBinary(type)) return 'bytes';
  if (t.isBool(type)) return 'boolean';
  if (t.isFloat(type)) return type.precision === arrow.Precision.DOUBLE ? 'double' : 'float';
  if (t.isInt(type)) return type.bitWidth === 64 ? 'long' : 'int';
  if (t.isDictionary(type)) return columnType(arrow, type.dictionary as Arrow.DataType);
  return undefined;
}

/** A column of a row group, as ColumnData (views of Arrow's buffers where the layouts match, copies where not). */
function columnOf(arrow: typeof Arrow, type: ColumnType, data: Arrow.Data): ColumnData {
  const n = data.length;
  const c = new ColumnData(type, 0);
  const dictionary = arrow.DataType.isDictionary(data.type);
  if (dictionary || data.offset !== 0) {
    // a layout this tool does not write: value by value
    const vector = arrow.makeVector(data);
    for (let i = 0; i < n; i++) {
      const v = vector.get(i) as unknown;
      c.appendValue(typeof v === 'bigint' ? Number(v) : v instanceof Uint8Array && type === 'bytes' ? Buffer.from(v) : v);
    }
    return c;
  }
  const values = data.values as ArrayLike<number> & { buffer: ArrayBuffer; byteOffset: number };
  switch (type) {
    case 'long':
      c.words = new Int32Array(values.buffer, values.byteOffset, 2 * n);
      break;
    case 'double':
      c.numbers = data.values as Float64Array;
      break;
    case 'int':
    case 'float':
      c.numbers = Float64Array.from(values);
      break;
    case 'boolean': {
      c.numbers = new Float64Array(n);
      const bits = data.values as Uint8Array;
      for (let i = 0; i < n; i++) c.numbers[i] = (bits[i >> 3]! >> (i & 7)) & 1;
      break;
    }
    default:
      c.offsets = data.valueOffsets as Int32Array;
      c.bytes = data.values as Uint8Array;
      c.byteLength = c.offsets[n]!;
  }
  c.valid = data.nullCount > 0 && data.nullBitmap && data.nullBitmap.length > 0 ? data.nullBitmap : new Uint8Array((n + 7) >> 3).fill(0xff);
  c.length = n;
  return c;
}

/** One input file: its row groups read one at a time, and where in the current one the next row is. */
interface Cursor {
  input: DayInput;
  file: ParquetWasm.ParquetFile;
  groups: number;
  next: number;
  rows: Map<string, ColumnData>;
  ids: ColumnData;
  at: number;
}

const textDecoder = new TextDecoder();
const idAt = (ids: ColumnData, i: number) => textDecoder.decode(ids.bytes.subarray(ids.offsets[i], ids.offsets[i + 1]));

export async function parquetSource(inputs: DayInput[], tally: Tally): Promise<SeriesSource> {
  const arrow = requireHere('apache-arrow') as typeof Arrow;
  const pw = requireHere('parquet-wasm') as typeof ParquetWasm;
  let columns: Column[] | undefined;
  const cursors: Cursor[] = [];
  for (const input of inputs) {
    const file = await pw.ParquetFile.fromFile(await openAsBlob(input.file));
    const fields = (arrow.tableFromIPC((await file.read({ limit: 0 })).intoIPCStream()).schema.fields);
    const these = fields.map((f) => {
      const type = columnType(arrow, f.type as Arrow.DataType);
      if (!type) throw new DayError(`${input.name}: column ${f.name} has Arrow type ${String(f.type)}, which this tool does not write; not compacted`);
      return { name: f.name, type, json: false, nullable: f.nullable };
    });
    columns ??= these;
    const want = columns.map((c) => `${c.name}:${c.type}`).join(', ');
    if (these.map((c) => `${c.name}:${c.type}`).join(', ') !== want) throw new DayError(`${input.name}: its columns differ from the day's other files' (${want}); not compacted`);
    if (!columns.some((c) => c.name === 'seriesId' && c.type === 'string')) throw new DayError(`${input.name}: no seriesId string column; not compacted`);
    cursors.push({ input, file, groups: file.metadata().numRowGroups(), next: 0, rows: new Map(), ids: new ColumnData('string', 0), at: 0 });
  }
  const dayColumns = columns ?? [];

  /** The next row group of `c` with rows, if any: false when the file is done. */
  const advance = async (c: Cursor): Promise<boolean> => {
    while (c.at >= c.ids.length) {
      if (c.next >= c.groups) return false;
      const table = arrow.tableFromIPC((await c.file.read({ rowGroups: [c.next++], batchSize: 1 << 20 })).intoIPCStream());
      c.rows = new Map();
      for (const [i, col] of dayColumns.entries()) {
        const chunks = table.getChildAt(i)!.data as Arrow.Data[];
        // one batch per row group at this batch size; more are joined
        const column = chunks.length === 1 ? columnOf(arrow, col.type, chunks[0]!) : joined(arrow, col.type, chunks);
        c.rows.set(col.name, column);
      }
      c.ids = c.rows.get('seriesId')!;
      c.at = 0;
      tally.records += table.numRows;
    }
    return true;
  };

  async function* series() {
    const out = freshColumns(dayColumns);
    let live = [];
    for (const c of cursors) if (await advance(c)) live.push(c);
    for (const c of cursors) tally.bytesIn += (await stat(c.input.file)).size;
    while (live.length > 0) {
      const id = live.map((c) => idAt(c.ids, c.at)).sort()[0]!;
      for (const col of out.values()) col.reset();
      for (const c of live) {
        // this series' run of rows, which may go on into the next row groups
        while (c.at < c.ids.length && idAt(c.ids, c.at) === id) {
          let end = c.at;
          while (end < c.ids.length && idAt(c.ids, end) === id) end++;
          const order = Array.from({ length: end - c.at }, (_, k) => c.at + k);
          for (const [name, col] of out) col.gather(c.rows.get(name)!, order);
          c.at = end;
          if (!(await advance(c))) break;
        }
      }
      live = live.filter((c) => c.at < c.ids.length);
      yield out;
    }
    for (const c of cursors) c.file.free();
  }
  return { columns: dayColumns, series: series() };
}

function joined(arrow: typeof Arrow, type: ColumnType, chunks: readonly Arrow.Data[]): ColumnData {
  const all = new ColumnData(type);
  for (const chunk of chunks) {
    const part = columnOf(arrow, type, chunk);
    all.gather(part, Array.from({ length: part.length }, (_, i) => i));
  }
  return all;
}
