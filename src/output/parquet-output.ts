/**
 * Parquet output: one file a day, rows ordered by seriesId, then
 * timeInSeconds, then offsetInNanos, in row groups of ROW_GROUP_ROWS, with
 * min/max statistics on every column (so an engine skips the row groups of
 * other series) and dictionary encoding where it pays (parquet-rs decides per
 * column chunk). The columns are those of the Avro schema read from the
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
import { readFile, stat } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { pipeline } from 'node:stream/promises';
import { createRequire } from 'node:module';
import type * as Arrow from 'apache-arrow';
import type avro from 'avsc';
import type * as ParquetWasm from 'parquet-wasm';
import { AvroFormatError } from '../avro/avro-format-error.js';
import { decompressBlock, SUPPORTED_CODECS } from '../avro/codec.js';
import { BlockFramer, parseWholeHeader } from '../avro/container.js';
import { ColumnData, decodeBlock, flatFields, type Primitive } from './avro-columns.js';
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

/** A column: its name, how it is stored (ColumnData's type), whether it holds a nested Avro type as JSON text, and whether it is optional. */
type Column = { name: string; type: Exclude<Primitive, 'null'>; json: boolean; nullable: boolean };

type Field = { name: string; type: unknown };

const PRIMITIVE_TYPES: readonly string[] = ['boolean', 'int', 'long', 'float', 'double', 'bytes', 'string'];

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
async function decodeInput(avsc: typeof avro, input: DayInput, reader: avro.Type | undefined): Promise<{ records: Record<string, unknown>[]; bytes: number }> {
  const buf = await readFile(input.file);
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

const byTime = (a: Record<string, unknown>, b: Record<string, unknown>) =>
  (a.timeInSeconds as number) - (b.timeInSeconds as number) || (a.offsetInNanos as number) - (b.offsetInNanos as number);

export function parquetOutput(options: { compression?: ParquetCompression } = {}): OutputFormat {
  const compression = options.compression ?? 'snappy';
  return {
    ...PARQUET,
    async writeDay(inputs: DayInput[], outFile: string, day: WriteDayOptions): Promise<DayWritten> {
      // loaded here: the Avro path and the other commands never pay for them
      const arrow = requireHere('apache-arrow') as typeof Arrow;
      const pw = requireHere('parquet-wasm') as typeof ParquetWasm;
      const avsc = requireHere('avsc') as typeof avro;
      // series by series, in seriesId order; an input of unknown series sorts by its name
      const bySeries = new Map<string, DayInput[]>();
      for (const input of inputs) {
        const id = input.seriesId ?? input.name;
        bySeries.set(id, [...(bySeries.get(id) ?? []), input]);
      }
      let records = 0;
      let bytesIn = 0;
      const bad: { name: string; reason: string }[] = [];
      const badInput = (err: unknown) => {
        if (!(err instanceof AvroFormatError)) throw err;
        bad.push({ name: err.file, reason: err.detail });
      };

      // the day's columns are the first input's schema; a flat one is decoded straight into columns
      const first = inputs[0] && (await readFile(inputs[0].file).then((b) => parseWholeHeader(b, inputs[0]!.name).header).catch(() => undefined));
      const firstSchema = first && (JSON.parse(first.schemaText) as { fields?: Field[] });
      const flat = firstSchema && flatFields(firstSchema);
      const columns = firstSchema ? columnsOf(firstSchema) : [];
      const fresh = () => new Map(columns.map((c) => [c.name, new ColumnData(c.type)]));
      const rowsOf = (group: Map<string, ColumnData>) => group.values().next().value?.length ?? 0;

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

      /** A flat schema's series: blocks decoded into column arrays, sorted by a permutation, no record objects. */
      const series = fresh();
      const addFlat = async (seriesInputs: DayInput[], group: Map<string, ColumnData>) => {
        for (const c of series.values()) c.reset();
        for (const input of seriesInputs) {
          try {
            const buf = await readFile(input.file);
            const { header, length } = parseWholeHeader(buf, input.name);
            const fields = flatFields(JSON.parse(header.schemaText) as { fields?: Field[] });
            if (!fields) throw new AvroFormatError(input.name, "its schema is not the day's flat record schema");
            let index = 0;
            let count = 0;
            new BlockFramer().forEachBlock(buf, length, header, input.name, (n, start, end) => {
              const raw = decompressBlock(header.codec, buf.subarray(start, end), input.name, index++);
              try {
                if (decodeBlock(raw, n, fields, series) !== raw.length) throw new RangeError('bytes after its records');
              } catch (err) {
                throw new AvroFormatError(input.name, `block ${index - 1} cannot be decoded (${(err as Error).message})`);
              }
              count += n;
            });
            records += count;
            bytesIn += buf.length;
            day.onInput?.(count, buf.length);
          } catch (err) {
            badInput(err);
          }
        }
        const order = Array.from({ length: rowsOf(series) }, (_, i) => i);
        const [time, offset] = [series.get('timeInSeconds'), series.get('offsetInNanos')];
        if (time && offset) order.sort((a, b) => time.numberAt(a) - time.numberAt(b) || offset.numberAt(a) - offset.numberAt(b));
        for (const [name, c] of series) group.get(name)!.gather(c, order);
      };

      /** Another schema's series: records decoded by avsc, sorted, appended value by value (nested types as JSON text). */
      const reader = firstSchema && !flat ? avsc.Type.forSchema(firstSchema as avro.Schema, { wrapUnions: false }) : undefined;
      const addDecoded = async (seriesInputs: DayInput[], group: Map<string, ColumnData>) => {
        const rows: Record<string, unknown>[] = [];
        for (const input of seriesInputs) {
          try {
            const got = await decodeInput(avsc, input, reader);
            for (const r of got.records) rows.push(r);
            records += got.records.length;
            bytesIn += got.bytes;
            day.onInput?.(got.records.length, got.bytes);
          } catch (err) {
            badInput(err);
          }
        }
        if (columns.some((c) => c.name === 'timeInSeconds')) rows.sort(byTime);
        for (const c of columns) {
          const into = group.get(c.name)!;
          for (const r of rows) into.appendValue(c.json ? (r[c.name] === null ? null : JSON.stringify(r[c.name])) : r[c.name]);
        }
      };

      /** Series by series, in seriesId order, a batch each time a row group's worth has gathered. */
      async function* batches(add: typeof addFlat) {
        const group = fresh();
        for (const id of [...bySeries.keys()].sort()) {
          await add(bySeries.get(id)!, group);
          if (bad.length > 0 || rowsOf(group) < ROW_GROUP_ROWS) continue;
          yield* batchOf(group);
          for (const c of group.values()) c.reset();
        }
        if (bad.length === 0 && columns.length > 0 && (rowsOf(group) > 0 || records === 0)) yield* batchOf(group);
      }

      const props = new pw.WriterPropertiesBuilder()
        .setCompression(compression === 'zstd' ? pw.Compression.ZSTD : pw.Compression.SNAPPY)
        .setMaxRowGroupSize(ROW_GROUP_ROWS)
        .setCreatedBy(`sitewise-repartition (parquet-rs via parquet-wasm); inputs ${day.seed.slice(0, 16)}`)
        .build();
      const badInputs = () => new BadInputsError(bad, `${bad.length} input(s) are not valid Avro: ${bad.map((b) => `${b.name}: ${b.reason}`).join('; ')}`);
      try {
        // one batch at a time: a stream's default read-ahead (16 objects) would hold 16 row groups in memory
        const source = Readable.toWeb(Readable.from(batches(flat ? addFlat : addDecoded), { objectMode: true, highWaterMark: 1 }), { strategy: { highWaterMark: 1 } });
        const stream = await pw.transformParquetStream(source as unknown as ReadableStream, props);
        await pipeline(Readable.fromWeb(stream as unknown as WebReadableStream<Uint8Array>), createWriteStream(outFile));
      } catch (err) {
        if (bad.length > 0) throw badInputs();
        throw err;
      }
      if (bad.length > 0) throw badInputs();
      const { size } = await stat(outFile);
      return { records, bytesIn, bytesOut: size, path: 'parquet' };
    },
    close: () => Promise.resolve(),
  };
}
