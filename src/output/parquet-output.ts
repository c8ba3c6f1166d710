/**
 * Parquet output: one file a day, rows ordered by seriesId, then
 * timeInSeconds, then offsetInNanos, in row groups of ROW_GROUP_ROWS, with
 * min/max statistics on every column (so an engine skips the row groups of
 * other series). Pages are Parquet v2: integer columns delta-encoded
 * (DELTA_BINARY_PACKED), strings dictionary-encoded where it pays. The
 * columns are those of the Avro schema read from the inputs; a type Parquet
 * has no plain column for (record, array, map, enum, fixed) is kept as its
 * JSON text, so no field is dropped. Every column is optional (DuckDB's
 * writer marks them all so).
 *
 * Each cold-tier object holds one series' export, so the inputs are taken
 * series by series (in seriesId order) and only one series' records are
 * sorted at a time: no sort of the whole day.
 *
 * Writer: DuckDB's (native, through its C API): it scans the decoded
 * columns through a table function, chunk by chunk, as `COPY ... TO`
 * writes them; see the commit that chose it for the measurements. A day of
 * Parquet files (compact) is rewritten by DuckDB alone: read, ordered (and
 * deduplicated) in SQL, a batch of whole series at a time.
 */
import { mkdir, mkdtemp, open, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type * as Bindings from '@duckdb/node-bindings';
import type * as DuckDB from '@duckdb/node-api';
import { KEY_FIELDS } from '../avro/dedupe-latest.js';
import type { Dedupe } from '../config/load-config.js';
import { DayError } from '../shared/errors.js';
import { duckdb } from '../shared/load-on-use.js';
import { ColumnData } from './avro-columns.js';
import { CHUNK_ROWS, ChunkWriter, duckType } from './duckdb-chunk.js';
import { rowsOf, TooLargeForThread, type Column } from './series-source.js';
import { seriesSupply } from './series-supply.js';
import { BadInputsError, type DayInput, type DayWritten, type FormatInfo, type OutputFormat, type WriteDayOptions } from './output-format.js';

/**
 * Rows per row group. Memory while writing: DuckDB holds the row group
 * being written (its pages, a few MB at 32 Ki rows of the raw schema) within
 * DUCKDB_MEMORY, and this side one series' day of decoded columns and its
 * sorted copy (and READY_AHEAD more from the decoder thread). Smaller groups
 * let one-series queries skip at a finer grain. Measured peak RSS: 193 MB for
 * a 20 M-record day in `merge` and 189 MB in `run`, 185 MB for `run` over
 * three 6.8 M-record days (one day written at a time: PARQUET.daysAtOnce).
 */
export const ROW_GROUP_ROWS = 32 * 1024;

export type ParquetCompression = 'snappy' | 'zstd';

export const PARQUET: FormatInfo = {
  name: 'parquet',
  extension: '.parquet',
  contentType: 'application/vnd.apache.parquet',
  // one: a day already uses both cores (decoder thread and DuckDB) and up to ~190 MB; two at once reached 232 MB
  daysAtOnce: 1,
  athenaStorage: () => 'STORED AS PARQUET',
};

/** Larger versions first; a missing or null version is the smallest. */
const byVersionDown = (a: number | bigint, b: number | bigint) => (b > a ? 1 : b < a ? -1 : 0);

/** DuckDB's memory limit: beyond it a compact's sort spills to disk. The scan of a merge holds one row group and one series' day. */
const DUCKDB_MEMORY = '64MB';

/** Rows a compact of Parquet files orders (and deduplicates) at once: whole series up to this many, or one series. */
const COMPACT_BATCH_ROWS = 1_000_000;

/** Inputs that could not be read, named in one error. */
const badInputsError = (bad: { name: string; reason: string }[]) => new BadInputsError(bad, `${bad.length} input(s) cannot be read: ${bad.map((b) => `${b.name}: ${b.reason}`).join('; ')}`);

/** output.dedupe: latest compares keys: a day whose columns lack one of them cannot be deduplicated. */
function checkKeyFields(names: string[], first: string): void {
  const missing = KEY_FIELDS.filter((k) => !names.includes(k));
  if (missing.length > 0) throw new DayError(`output.dedupe: latest needs the fields ${KEY_FIELDS.join(', ')}; ${first} has no ${missing.join(', ')}`);
}

const sqlText = (s: string) => `'${s.replaceAll("'", "''")}'`;
const sqlName = (s: string) => `"${s.replaceAll('"', '""')}"`;

export function parquetOutput(options: { compression?: ParquetCompression; dedupe?: Dedupe; helperThread?: boolean; compactBatchRows?: number } = {}): OutputFormat {
  const compression = options.compression ?? 'snappy';
  const dedupe = options.dedupe === 'latest';
  /** The COPY options: the same inputs give the same bytes (one thread, the inputs' seed in the footer). */
  const copyOptions = (seed: string) =>
    `FORMAT parquet, COMPRESSION ${compression}, ROW_GROUP_SIZE ${ROW_GROUP_ROWS}, PARQUET_VERSION V2, KV_METADATA {inputs: ${sqlText(seed.slice(0, 16))}, written_by: 'sitewise-repartition'}`;
  return {
    ...PARQUET,
    async writeDay(inputs: DayInput[], outFile: string, day: WriteDayOptions): Promise<DayWritten> {
      const withDuck = async (write: (duck: Duck) => Promise<DayWritten>) => {
        const duck = await openDuckDb(outFile);
        try {
          return await write(duck);
        } finally {
          duck.close();
          await rm(`${outFile}.duckdb-tmp`, { recursive: true, force: true });
        }
      };
      // compact gives this format its own files back: a rewrite of Parquet days
      if (await isParquet(inputs[0]?.file)) return withDuck((duck) => rewriteParquet(duck, inputs, outFile, copyOptions(day.seed), dedupe, options.compactBatchRows ?? COMPACT_BATCH_ROWS));
      let reported = 0;
      const first = { ...day, onInput: (records: number, bytes: number) => ((reported += bytes), day.onInput?.(records, bytes)) };
      try {
        return await withDuck((duck) => writeAvroInputs(duck, inputs, outFile, first, copyOptions(day.seed), dedupe, options.helperThread ?? true));
      } catch (err) {
        if (!(err instanceof Error && err.name === TooLargeForThread.NAME)) throw err;
        // a series too large for the decoder thread's heap: the day again, decoded on the main thread (progress picks up where it was)
        let seen = 0;
        const again = { ...day, onInput: (records: number, bytes: number) => ((seen += bytes) > reported ? day.onInput?.(records, Math.min(bytes, seen - reported)) : undefined) };
        return await withDuck((duck) => writeAvroInputs(duck, inputs, outFile, again, copyOptions(day.seed), dedupe, false));
      }
    },
    close: () => Promise.resolve(),
  };
}

interface Duck {
  d: typeof Bindings;
  raw: Bindings.Connection;
  sql: DuckDB.DuckDBConnection;
  close(): void;
}

/** An in-memory DuckDB of one thread (the bytes written do not depend on scheduling), its spill folder beside the output. */
async function openDuckDb(outFile: string): Promise<Duck> {
  const { bindings: d, api } = duckdb();
  const config = d.create_config();
  d.set_config(config, 'threads', '1');
  d.set_config(config, 'memory_limit', DUCKDB_MEMORY);
  d.set_config(config, 'temp_directory', `${outFile}.duckdb-tmp`);
  d.set_config(config, 'preserve_insertion_order', 'true');
  const db = await d.open(':memory:', config);
  const raw = await d.connect(db);
  return {
    d,
    raw,
    sql: new api.DuckDBConnection(raw),
    close() {
      d.disconnect_sync(raw);
      d.close_sync(db);
    },
  };
}

/** A merge: Avro inputs decoded into columns series by series, each series sorted, scanned by DuckDB's COPY chunk by chunk. */
async function writeAvroInputs(duck: Duck, inputs: DayInput[], outFile: string, day: WriteDayOptions, copyOptions: string, dedupe: boolean, decoderThread: boolean): Promise<DayWritten> {
  const supply = seriesSupply(inputs, day.onInput, decoderThread);
  const { d } = duck;
  const { columns, tally } = supply;
  const { bad } = tally;
  const badInputs = () => badInputsError(bad);
  let dropped = 0;
  let failure: unknown;
  try {
    if (dedupe && columns.length > 0) checkKeyFields(columns.map((c) => c.name), inputs[0]!.name);
    if (columns.length === 0) {
      while (supply.take());
      throw bad.length > 0 ? badInputs() : new DayError(`no columns: ${inputs[0]?.name ?? 'no input'} has a record schema without fields`);
    }
    const writer = new ChunkWriter(d);
    // one series at a time is scanned: its sorted copy is made in the same columns each time
    const sorted = new Map(columns.map((c) => [c.name, new ColumnData(c.type)]));
    let current: Map<string, ColumnData> | undefined;
    let at = 0;
    let written = 0;
    const scan = d.create_table_function();
    d.table_function_set_name(scan, 'day_rows');
    d.table_function_set_bind(scan, (info) => {
      for (const c of columns) d.bind_add_result_column(info, c.name, duckType(d, c));
    });
    d.table_function_set_init(scan, (info) => d.init_set_max_threads(info, 1));
    d.table_function_set_function(scan, (info, chunk) => {
      try {
        while (current === undefined || at >= rowsOf(current)) {
          const rows = supply.take();
          if (rows === undefined) return d.data_chunk_set_size(chunk, 0);
          current = sortedRows(rows, dedupe, sorted);
          dropped += rowsOf(rows) - rowsOf(current);
          supply.giveBack(rows);
          at = 0;
        }
        // a chunk never spans two row groups, so each holds exactly ROW_GROUP_ROWS (DuckDB closes one once it has as many)
        const n = Math.min(CHUNK_ROWS, rowsOf(current) - at, ROW_GROUP_ROWS - (written % ROW_GROUP_ROWS));
        for (const [i, c] of columns.entries()) writer.write(d.data_chunk_get_vector(chunk, i), current.get(c.name)!, at, n);
        d.data_chunk_set_size(chunk, n);
        at += n;
        written += n;
      } catch (err) {
        failure = err;
        d.function_set_error(info, (err as Error).message);
      }
    });
    d.register_table_function(duck.raw, scan);
    await duck.sql.run(`COPY (SELECT * FROM day_rows()) TO ${sqlText(outFile)} (${copyOptions})`);
  } catch (err) {
    await new Promise(setImmediate); // a dead thread's error event, if that is what stopped it
    if (supply.died) throw new DayError(`the Parquet decoder thread stopped: ${supply.died.message}`);
    throw failure ?? (bad.length > 0 ? badInputs() : err);
  } finally {
    await supply.stop();
  }
  // the inputs after a bad one are still read, for the message; the file is then not used
  if (bad.length > 0) throw badInputs();
  const { size } = await stat(outFile);
  return { records: tally.records - dropped, bytesIn: tally.bytesIn, bytesOut: size, path: dedupe ? 'parquet+dedupe' : 'parquet', ...(dedupe ? { dropped } : {}) };
}

/**
 * One series' rows into `into` (emptied first), sorted by time by a
 * permutation (no record objects), each key's latest only with dedupe.
 */
function sortedRows(rows: Map<string, ColumnData>, dedupe: boolean, into: Map<string, ColumnData>): Map<string, ColumnData> {
  let order = Array.from({ length: rowsOf(rows) }, (_, i) => i);
  const [time, offset, version] = [rows.get('timeInSeconds'), rows.get('offsetInNanos'), rows.get('recordVersion')];
  // exact: versions may be larger than 2^53 (a time in nanoseconds, say)
  const versionAt = (i: number) => (version?.has(i) ? version.longAt(i) : -Infinity);
  if (time && offset) {
    // stable: between equal versions the first read stays first
    order.sort((a, b) => time.numberAt(a) - time.numberAt(b) || offset.numberAt(a) - offset.numberAt(b) || (dedupe ? byVersionDown(versionAt(a), versionAt(b)) : 0));
    if (dedupe) order = order.filter((r, k) => k === 0 || time.numberAt(r) !== time.numberAt(order[k - 1]!) || offset.numberAt(r) !== offset.numberAt(order[k - 1]!));
  }
  for (const [name, c] of rows) {
    const column = into.get(name)!;
    column.reset();
    column.gather(c, order);
  }
  return into;
}

const MAGIC = Buffer.from('PAR1');

/** Whether `file` starts as a Parquet file does. */
async function isParquet(file: string | undefined): Promise<boolean> {
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

/** The column types this tool writes, by DuckDB's names; a file with another is not one of ours. */
export const PARQUET_TYPES: Record<string, Column['type']> = { VARCHAR: 'string', BLOB: 'bytes', BOOLEAN: 'boolean', FLOAT: 'float', DOUBLE: 'double', BIGINT: 'long', INTEGER: 'int' };

/** The columns of a Parquet file as DuckDB reads them. */
export async function parquetColumns(sql: DuckDB.DuckDBConnection, file: string): Promise<{ name: string; type: string }[]> {
  const rows = (await sql.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${sqlText(file)})`)).getRowObjects();
  return rows.map((r) => ({ name: String(r.column_name), type: String(r.column_type) }));
}

/**
 * A compact of Parquet days: the day's files read, ordered by the key (and
 * with dedupe each key's latest version kept), in SQL. Ties keep the files'
 * order and their rows' order, so the same files give the same bytes.
 */
async function rewriteParquet(duck: Duck, inputs: DayInput[], outFile: string, copyOptions: string, dedupe: boolean, batchRows: number): Promise<DayWritten> {
  let columns: { name: string; type: string }[] | undefined;
  const bad: { name: string; reason: string }[] = [];
  for (const input of inputs) {
    const these = await parquetColumns(duck.sql, input.file).catch((err: Error) => {
      bad.push({ name: input.name, reason: err.message.split('\n')[0]! });
      return undefined;
    });
    if (!these) continue;
    const odd = these.find((c) => !PARQUET_TYPES[c.type]);
    if (odd) throw new DayError(`${input.name}: column ${odd.name} has type ${odd.type}, which this tool does not write; not compacted`);
    columns ??= these;
    const want = columns.map((c) => `${c.name}:${c.type}`).join(', ');
    if (these.map((c) => `${c.name}:${c.type}`).join(', ') !== want) throw new DayError(`${input.name}: its columns differ from the day's other files' (${want}); not compacted`);
  }
  if (bad.length > 0) throw badInputsError(bad);
  if (!columns?.some((c) => c.name === 'seriesId' && c.type === 'VARCHAR')) throw new DayError(`${inputs[0]?.name ?? 'the day'}: no seriesId string column; not compacted`);
  const has = (name: string) => columns.some((c) => c.name === name);
  if (dedupe) checkKeyFields(columns.map((c) => c.name), inputs[0]!.name);
  const files = `[${inputs.map((i) => sqlText(i.file)).join(', ')}]`;
  const key = KEY_FIELDS.filter(has).map(sqlName).join(', ');
  const tie = `list_position(${files}, filename), file_row_number`;
  const latestFirst = has('recordVersion') ? `${sqlName('recordVersion')} DESC NULLS LAST, ` : '';
  const source = `read_parquet(${files}, filename = true, file_row_number = true)`;
  // each key's first row in (version down, files' order): the one whose time and offset differ from the row before it
  // in its series; a window per series, not per key (a day's keys are millions of partitions, beyond the memory limit)
  const [series, time, offset] = KEY_FIELDS.map(sqlName);
  const before = `OVER (PARTITION BY ${series} ORDER BY ${time}, ${offset}, ${latestFirst}${tie})`;
  const keep = dedupe ? ` QUALIFY lag(${time}) ${before} IS DISTINCT FROM ${time} OR lag(${offset}) ${before} IS DISTINCT FROM ${offset}` : '';
  const order = dedupe ? `${key}, ${latestFirst}${tie}` : `${key}, ${tie}`;
  const select = (where: string) => `SELECT ${columns.map((c) => sqlName(c.name)).join(', ')} FROM ${source}${where}${keep} ORDER BY ${order}`;
  // whole series a batch at a time, each into a part file, then the parts into one file in their order: what DuckDB
  // sorts and windows at once stays within its memory limit at any day size (a window over a whole day does not)
  const counts = (await duck.sql.runAndReadAll(`SELECT ${series} AS id, count(*) AS n FROM ${source} GROUP BY ${series} ORDER BY ${series} NULLS LAST`)).getRowObjects();
  const batches: string[] = [];
  let [rows, first, last] = [Infinity, '', ''];
  const close = () => rows !== Infinity && batches.push(` WHERE ${series} BETWEEN ${sqlText(first)} AND ${sqlText(last)}`);
  for (const c of counts) {
    if (c.id === null) continue;
    if (rows + Number(c.n) > batchRows) {
      close();
      [rows, first] = [0, String(c.id)];
    }
    [rows, last] = [rows + Number(c.n), String(c.id)];
  }
  close();
  if (counts.some((c) => c.id === null)) batches.push(` WHERE ${series} IS NULL`);
  await mkdir(`${outFile}.duckdb-tmp`, { recursive: true });
  const parts = batches.map((_, i) => path.join(`${outFile}.duckdb-tmp`, `part-${i}.parquet`));
  const whole = parts.length > 0 ? `SELECT * FROM read_parquet([${parts.map(sqlText).join(', ')}])` : select('');
  // one request for every statement: they run on one thread, whose allocations the next statement reuses
  const statements = [...batches.map((where, i) => `COPY (${select(where)}) TO ${sqlText(parts[i]!)} (${copyOptions})`), `COPY (${whole}) TO ${sqlText(outFile)} (${copyOptions})`];
  const result = (await duck.sql.runAndReadAll(statements.join(';\n'))).getRowObjects()[0]!;
  const records = Number(Object.values(result)[0]);
  const total = counts.reduce((n, c) => n + Number(c.n), 0);
  let bytesIn = 0;
  for (const input of inputs) bytesIn += (await stat(input.file)).size;
  const { size } = await stat(outFile);
  return { records, bytesIn, bytesOut: size, path: dedupe ? 'parquet+dedupe' : 'parquet', ...(dedupe ? { dropped: total - records } : {}) };
}

/** The columns of a Parquet file's footer (framed as a file: PAR1, footer, its length, PAR1), with this tool's type for each it writes. */
export async function footerColumns(framed: Buffer): Promise<{ name: string; type: Column['type'] | undefined }[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'swr-footer-'));
  const file = path.join(dir, 'footer.parquet');
  const duck = await openDuckDb(file);
  try {
    await writeFile(file, framed);
    return (await parquetColumns(duck.sql, file)).map((c) => ({ name: c.name, type: PARQUET_TYPES[c.type] }));
  } finally {
    duck.close();
    await rm(dir, { recursive: true, force: true });
  }
}
