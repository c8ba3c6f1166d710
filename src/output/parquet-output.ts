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
import { ColumnData, decodeBlock, flatFields, type FlatField, type Primitive } from './avro-columns.js';
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

type Column = { name: string; kind: 'utf8' | 'int64' | 'int32' | 'float64' | 'float32' | 'bool' | 'binary' | 'json'; nullable: boolean };

type Field = { name: string; type: unknown };

/** The Parquet columns of an Avro record schema. */
export function columnsOf(schema: { fields?: Field[] }): Column[] {
  return (schema.fields ?? []).map((f) => {
    const branches = Array.isArray(f.type) ? (f.type as unknown[]) : [f.type];
    const nonNull = branches.filter((b) => b !== 'null');
    const nullable = nonNull.length < branches.length;
    const only = nonNull.length === 1 ? nonNull[0] : undefined;
    const name = typeof only === 'string' ? only : (only as { type?: string; logicalType?: string } | undefined)?.type;
    const kind: Column['kind'] =
      name === 'string' ? 'utf8' : name === 'long' ? 'int64' : name === 'int' ? 'int32' : name === 'double' ? 'float64' : name === 'float' ? 'float32' : name === 'boolean' ? 'bool' : name === 'bytes' ? 'binary' : 'json';
    return { name: f.name, kind, nullable };
  });
}

interface Decoded {
  records: Record<string, unknown>[];
  bytes: number;
}

/** Every record of one Avro input, decoded in its own schema and read as `reader` (the day's column schema). */
async function decodeInput(avsc: typeof avro, input: DayInput, reader: avro.Type | undefined): Promise<{ schema: { fields?: Field[] }; type: avro.Type; decoded: Decoded }> {
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
  return { schema, type, decoded: { records, bytes: buf.length } };
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
      let reader: avro.Type | undefined;
      let columns: Column[] = [];
      let records = 0;
      let bytesIn = 0;
      const bad: { name: string; reason: string }[] = [];

      /** One column of `rows` as Arrow data, written straight into typed arrays (Arrow's builders cost a call per value). */
      const dataOf = (column: Column, rows: Record<string, unknown>[]) => {
        const n = rows.length;
        const valid = new Uint8Array((n + 7) >> 3);
        const get = (i: number) => {
          const v = rows[i]![column.name];
          if (v === null || v === undefined) return undefined;
          valid[i >> 3]! |= 1 << (i & 7);
          return v;
        };
        // nullCount -1: Arrow counts the nulls from the bitmap when asked (it is filled after this is made)
        const common = <T extends Arrow.DataType>(type: T) => ({ type, length: n, nullCount: -1, nullBitmap: valid });
        const numbers = <A extends Float64Array | Float32Array | Int32Array>(values: A) => {
          for (let i = 0; i < n; i++) values[i] = (get(i) as number | undefined) ?? 0;
          return values;
        };
        let data: Arrow.Data;
        switch (column.kind) {
          case 'int64': {
            const values = new BigInt64Array(n);
            for (let i = 0; i < n; i++) {
              const v = get(i) as number | undefined;
              if (v !== undefined) values[i] = BigInt(v);
            }
            data = arrow.makeData({ ...common(new arrow.Int64()), data: values });
            break;
          }
          case 'int32':
            data = arrow.makeData({ ...common(new arrow.Int32()), data: numbers(new Int32Array(n)) });
            break;
          case 'float64':
            data = arrow.makeData({ ...common(new arrow.Float64()), data: numbers(new Float64Array(n)) });
            break;
          case 'float32':
            data = arrow.makeData({ ...common(new arrow.Float32()), data: numbers(new Float32Array(n)) });
            break;
          case 'bool': {
            const bits = new Uint8Array((n + 7) >> 3);
            for (let i = 0; i < n; i++) if (get(i) === true) bits[i >> 3]! |= 1 << (i & 7);
            data = arrow.makeData({ ...common(new arrow.Bool()), data: bits });
            break;
          }
          default: {
            // utf8, binary, json: offsets and bytes; a run of the same string (seriesId) is encoded once
            const offsets = new Int32Array(n + 1);
            const parts: Buffer[] = [];
            let bytes = 0;
            let last: unknown;
            let lastBytes = Buffer.alloc(0);
            for (let i = 0; i < n; i++) {
              const v = get(i);
              if (v !== undefined) {
                if (v !== last) {
                  last = v;
                  lastBytes = column.kind === 'binary' ? Buffer.from(v as Buffer) : Buffer.from(column.kind === 'json' ? JSON.stringify(v) : (v as string));
                }
                parts.push(lastBytes);
                bytes += lastBytes.length;
              }
              offsets[i + 1] = bytes;
            }
            const body = Buffer.concat(parts, bytes);
            data =
              column.kind === 'binary'
                ? arrow.makeData({ ...common(new arrow.Binary()), valueOffsets: offsets, data: body })
                : arrow.makeData({ ...common(new arrow.Utf8()), valueOffsets: offsets, data: body });
          }
        }
        return data;
      };
      const batchOf = (rows: Record<string, unknown>[]) => {
        const children = columns.map((c) => dataOf(c, rows));
        const fields = columns.map((c, i) => new arrow.Field(c.name, children[i]!.type, c.nullable));
        const schema = new arrow.Schema(fields);
        const batch = new arrow.RecordBatch(schema, arrow.makeData({ type: new arrow.Struct(fields), length: rows.length, nullCount: 0, children }));
        const wasm = pw.Table.fromIPCStream(arrow.tableToIPC(new arrow.Table(batch), 'stream'));
        const batches = wasm.recordBatches();
        // freed now, not when a finalizer gets to it: WebAssembly memory grows and never shrinks
        wasm.free();
        return batches;
      };

      async function* batches() {
        let pending: Record<string, unknown>[] = [];
        for (const id of [...bySeries.keys()].sort()) {
          const rows: Record<string, unknown>[] = [];
          for (const input of bySeries.get(id)!) {
            try {
              const got = await decodeInput(avsc, input, reader);
              if (!reader) {
                reader = got.type;
                columns = columnsOf(got.schema);
              }
              for (const r of got.decoded.records) rows.push(r);
              records += got.decoded.records.length;
              bytesIn += got.decoded.bytes;
              day.onInput?.(got.decoded.records.length, got.decoded.bytes);
            } catch (err) {
              if (!(err instanceof AvroFormatError)) throw err;
              bad.push({ name: err.file, reason: err.detail });
            }
          }
          if (bad.length > 0) continue;
          if (columns.some((c) => c.name === 'timeInSeconds')) rows.sort(byTime);
          for (const r of rows) pending.push(r);
          while (pending.length >= ROW_GROUP_ROWS) {
            yield* batchOf(pending.slice(0, ROW_GROUP_ROWS));
            pending = pending.slice(ROW_GROUP_ROWS);
          }
        }
        if (bad.length === 0 && (pending.length > 0 || records === 0) && columns.length > 0) yield* batchOf(pending);
      }

      /** Arrow data of a filled column (copied into the IPC stream at once, so the column may be reset after). */
      const columnData = (column: Column, c: ColumnData) => {
        const n = c.length;
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
            return column.kind === 'binary' ? arrow.makeData({ ...common(new arrow.Binary()), ...props }) : arrow.makeData({ ...common(new arrow.Utf8()), ...props });
          }
        }
      };
      const columnarBatch = (group: Map<string, ColumnData>) => {
        const children = columns.map((c) => columnData(c, group.get(c.name)!));
        const fields = columns.map((c, i) => new arrow.Field(c.name, children[i]!.type, c.nullable));
        const batch = new arrow.RecordBatch(new arrow.Schema(fields), arrow.makeData({ type: new arrow.Struct(fields), length: children[0]!.length, nullCount: 0, children }));
        const wasm = pw.Table.fromIPCStream(arrow.tableToIPC(new arrow.Table(batch), 'stream'));
        const batches = wasm.recordBatches();
        wasm.free();
        return batches;
      };

      /** The flat-schema path: blocks decoded into column arrays, a series sorted by a permutation, no record objects. */
      async function* columnarBatches(dayFields: FlatField[]) {
        const typeOf = (f: FlatField) => f.branches.find((b) => b !== 'null') as Exclude<Primitive, 'null'>;
        const fresh = () => new Map(dayFields.map((f) => [f.name, new ColumnData(typeOf(f))]));
        const group = fresh();
        const series = fresh();
        const time = series.get('timeInSeconds');
        const offset = series.get('offsetInNanos');
        for (const id of [...bySeries.keys()].sort()) {
          for (const c of series.values()) c.reset();
          for (const input of bySeries.get(id)!) {
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
              if (!(err instanceof AvroFormatError)) throw err;
              bad.push({ name: err.file, reason: err.detail });
            }
          }
          if (bad.length > 0) continue;
          const n = series.values().next().value!.length;
          const order = Array.from({ length: n }, (_, i) => i);
          if (time && offset) order.sort((a, b) => time.numberAt(a) - time.numberAt(b) || offset.numberAt(a) - offset.numberAt(b));
          for (const [name, c] of series) group.get(name)!.gather(c, order);
          if (group.values().next().value!.length >= ROW_GROUP_ROWS) {
            yield* columnarBatch(group);
            for (const c of group.values()) c.reset();
          }
        }
        if (bad.length === 0 && (group.values().next().value!.length > 0 || records === 0)) yield* columnarBatch(group);
      }

      // the day's columns are the first input's schema; a flat one takes the columnar path
      const first = inputs[0] && (await readFile(inputs[0].file).then((b) => parseWholeHeader(b, inputs[0]!.name).header).catch(() => undefined));
      const firstSchema = first && (JSON.parse(first.schemaText) as { fields?: Field[] });
      const flat = firstSchema && flatFields(firstSchema);
      if (flat) columns = columnsOf(firstSchema);

      const props = new pw.WriterPropertiesBuilder()
        .setCompression(compression === 'zstd' ? pw.Compression.ZSTD : pw.Compression.SNAPPY)
        .setMaxRowGroupSize(ROW_GROUP_ROWS)
        .setCreatedBy(`sitewise-repartition (parquet-rs via parquet-wasm); inputs ${day.seed.slice(0, 16)}`)
        .build();
      const badInputs = () => new BadInputsError(bad, `${bad.length} input(s) are not valid Avro: ${bad.map((b) => `${b.name}: ${b.reason}`).join('; ')}`);
      try {
        // one batch at a time: a stream's default read-ahead (16 objects) would hold 16 row groups in memory
        const source = Readable.toWeb(Readable.from(flat ? columnarBatches(flat) : batches(), { objectMode: true, highWaterMark: 1 }), { strategy: { highWaterMark: 1 } });
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
