/**
 * Parquet output: one file a day, rows ordered by seriesId, then
 * timeInSeconds, then offsetInNanos, in row groups of ROW_GROUP_ROWS, with
 * min/max statistics on every column (so an engine skips the row groups of
 * other series), integer columns delta-encoded (DELTA_BINARY_PACKED) and
 * the others dictionary-encoded where it pays (parquet-rs decides per column
 * chunk). The columns are those of the Avro schema read from the
 * inputs; a nullable union becomes an optional column, and a type Parquet
 * has no plain column for (record, array, map, enum, fixed) is kept as its
 * JSON text, so no field is dropped.
 *
 * Each cold-tier object holds one series' export, so the inputs are taken
 * series by series (in seriesId order) and only one series' records are
 * sorted at a time: no sort of the whole day.
 *
 * Writer: parquet-wasm (parquet-rs compiled to WebAssembly) fed Arrow record
 * batches built with apache-arrow; see the commit that chose it for the
 * measurements against hyparquet-writer and DuckDB's Node API.
 */
import { stat } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { pipeline } from 'node:stream/promises';
import { createRequire } from 'node:module';
import type * as Arrow from 'apache-arrow';
import type * as ParquetWasm from 'parquet-wasm';
import { KEY_FIELDS } from '../avro/dedupe-latest.js';
import type { Dedupe } from '../config/load-config.js';
import { DayError } from '../shared/errors.js';
import type { ColumnData } from './avro-columns.js';
import { isParquet, parquetSource } from './parquet-source.js';
import { avroSource, freshColumns, rowsOf, type Tally } from './series-source.js';
import { BadInputsError, type DayInput, type DayWritten, type FormatInfo, type OutputFormat, type WriteDayOptions } from './output-format.js';

// required, not imported: the bundled CLI runs in a vm script, which has no dynamic import
const requireHere = createRequire(import.meta.url);

/**
 * Rows per row group. Memory while writing: one row group of columns as
 * typed arrays, its Arrow IPC copy and parquet-rs's pages (a few MB each at
 * 32 Ki rows of the raw schema), one series' day of decoded columns, and
 * WebAssembly memory, which grows with the largest batch and never shrinks.
 * Measured: a 10 M-record day peaks at 191 MB (64 Ki rows: 240 MB; 128 Ki:
 * 318 MB), under the 200 MB target; files are some 10 % larger than with
 * 128 Ki rows, and one-series queries skip at a finer grain.
 */
export const ROW_GROUP_ROWS = 32 * 1024;

export type ParquetCompression = 'snappy' | 'zstd';

export const PARQUET: FormatInfo = {
  name: 'parquet',
  extension: '.parquet',
  contentType: 'application/vnd.apache.parquet',
  athenaStorage: () => 'STORED AS PARQUET',
};

/** Larger versions first; a missing or null version is the smallest. */
const byVersionDown = (a: number, b: number) => (b > a ? 1 : b < a ? -1 : 0);

export function parquetOutput(options: { compression?: ParquetCompression; dedupe?: Dedupe } = {}): OutputFormat {
  const compression = options.compression ?? 'snappy';
  const dedupe = options.dedupe === 'latest';
  return {
    ...PARQUET,
    async writeDay(inputs: DayInput[], outFile: string, day: WriteDayOptions): Promise<DayWritten> {
      // loaded here: the Avro path and the other commands never pay for them
      const arrow = requireHere('apache-arrow') as typeof Arrow;
      const pw = requireHere('parquet-wasm') as typeof ParquetWasm;
      const tally: Tally = { records: 0, bytesIn: 0, bad: [], onInput: day.onInput };
      // compact gives this format its own files back: a rewrite of Parquet days
      const { columns, series } = (await isParquet(inputs[0]?.file)) ? await parquetSource(inputs, tally) : await avroSource(inputs, tally);
      const missing = KEY_FIELDS.filter((k) => !columns.some((c) => c.name === k));
      if (dedupe && columns.length > 0 && missing.length > 0) throw new DayError(`output.dedupe: latest needs the fields ${KEY_FIELDS.join(', ')}; ${inputs[0]!.name} has no ${missing.join(', ')}`);
      let dropped = 0;

      /** Arrow data of a filled column (copied into the IPC stream at once, so the column may be reset after). */
      const columnData = (c: ColumnData) => {
        const n = c.length;
        // nullCount -1: Arrow counts the nulls from the bitmap when asked
        const common = <T extends Arrow.DataType>(type: T) => ({ type, length: n, nullCount: -1, nullBitmap: c.valid.subarray(0, (n + 7) >> 3) });
        switch (c.type) {
          case 'long':
            return arrow.makeData({ ...common(new arrow.Int64()), data: new BigInt64Array(c.words.buffer, 0, n) });
          case 'int':
            return arrow.makeData({ ...common(new arrow.Int32()), data: Int32Array.from(c.numbers.subarray(0, n)) });
          case 'double':
            return arrow.makeData({ ...common(new arrow.Float64()), data: c.numbers.subarray(0, n) });
          case 'float':
            return arrow.makeData({ ...common(new arrow.Float32()), data: Float32Array.from(c.numbers.subarray(0, n)) });
          case 'boolean': {
            const bits = new Uint8Array((n + 7) >> 3);
            for (let i = 0; i < n; i++) if (c.numbers[i]) bits[i >> 3]! |= 1 << (i & 7);
            return arrow.makeData({ ...common(new arrow.Bool()), data: bits });
          }
          default: {
            const props = { valueOffsets: c.offsets.subarray(0, n + 1), data: c.bytes.subarray(0, c.byteLength) };
            return c.type === 'bytes' ? arrow.makeData({ ...common(new arrow.Binary()), ...props }) : arrow.makeData({ ...common(new arrow.Utf8()), ...props });
          }
        }
      };
      const batchOf = (group: Map<string, ColumnData>) => {
        const children = columns.map((c) => columnData(group.get(c.name)!));
        const fields = columns.map((c, i) => new arrow.Field(c.name, children[i]!.type, c.nullable));
        const batch = new arrow.RecordBatch(new arrow.Schema(fields), arrow.makeData({ type: new arrow.Struct(fields), length: rowsOf(group), nullCount: 0, children }));
        const wasm = pw.Table.fromIPCStream(arrow.tableToIPC(new arrow.Table(batch), 'stream'));
        const batches = wasm.recordBatches();
        // freed now, not when a finalizer gets to it: WebAssembly memory grows and never shrinks
        wasm.free();
        return batches;
      };

      /** One series' rows into the row group: sorted by time by a permutation (no record objects), each key's latest only with dedupe. */
      const sortInto = (rows: Map<string, ColumnData>, group: Map<string, ColumnData>) => {
        let order = Array.from({ length: rowsOf(rows) }, (_, i) => i);
        const [time, offset, version] = [rows.get('timeInSeconds'), rows.get('offsetInNanos'), rows.get('recordVersion')];
        const versionAt = (i: number) => (version?.has(i) ? version.numberAt(i) : -Infinity);
        if (time && offset) {
          // stable: between equal versions the first read stays first
          order.sort((a, b) => time.numberAt(a) - time.numberAt(b) || offset.numberAt(a) - offset.numberAt(b) || (dedupe ? byVersionDown(versionAt(a), versionAt(b)) : 0));
          if (dedupe) {
            const all = order.length;
            order = order.filter((r, k) => k === 0 || time.numberAt(r) !== time.numberAt(order[k - 1]!) || offset.numberAt(r) !== offset.numberAt(order[k - 1]!));
            dropped += all - order.length;
          }
        }
        for (const [name, c] of rows) group.get(name)!.gather(c, order);
      };

      /** Series by series, a batch each time a row group's worth has gathered. */
      async function* batches() {
        const group = freshColumns(columns);
        for await (const rows of series) {
          sortInto(rows, group);
          if (tally.bad.length > 0 || rowsOf(group) < ROW_GROUP_ROWS) continue;
          yield* batchOf(group);
          for (const c of group.values()) c.reset();
        }
        if (tally.bad.length === 0 && columns.length > 0 && (rowsOf(group) > 0 || tally.records === 0)) yield* batchOf(group);
      }

      let builder: ParquetWasm.WriterPropertiesBuilder = new pw.WriterPropertiesBuilder()
        .setCompression(compression === 'zstd' ? pw.Compression.ZSTD : pw.Compression.SNAPPY)
        .setMaxRowGroupSize(ROW_GROUP_ROWS)
        .setCreatedBy(`sitewise-repartition (parquet-rs via parquet-wasm); inputs ${day.seed.slice(0, 16)}`);
      // integers (times, offsets, versions, counts) delta-encoded, no dictionary: sorted times become a few bits a row,
      // and random offsets and versions their significant bits; measured on a generated day: 44 % of the Avro bytes, against 77 %
      for (const c of columns) if (c.type === 'long' || c.type === 'int') builder = builder.setColumnEncoding(c.name, pw.Encoding.DELTA_BINARY_PACKED).setColumnDictionaryEnabled(c.name, false);
      const props = builder.build();
      const { bad } = tally;
      const badInputs = () => new BadInputsError(bad, `${bad.length} input(s) cannot be read: ${bad.map((b) => `${b.name}: ${b.reason}`).join('; ')}`);
      try {
        // one batch at a time: a stream's default read-ahead (16 objects) would hold 16 row groups in memory
        const source = Readable.toWeb(Readable.from(batches(), { objectMode: true, highWaterMark: 1 }), { strategy: { highWaterMark: 1 } });
        const stream = await pw.transformParquetStream(source as unknown as ReadableStream, props);
        await pipeline(Readable.fromWeb(stream as unknown as WebReadableStream<Uint8Array>), createWriteStream(outFile));
      } catch (err) {
        if (bad.length > 0) throw badInputs();
        throw err;
      }
      if (bad.length > 0) throw badInputs();
      const { size } = await stat(outFile);
      return { records: tally.records - dropped, bytesIn: tally.bytesIn, bytesOut: size, path: dedupe ? 'parquet+dedupe' : 'parquet', ...(dedupe ? { dropped } : {}) };
    },
    close: () => Promise.resolve(),
  };
}
