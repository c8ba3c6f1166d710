/**
 * Realistic AWS IoT SiteWise cold-tier data for tests, the demo and the
 * benchmark: snappy Avro object-container files with the documented RawDatum
 * schema, written by avsc (not by the code under test), under the documented
 * key layout, four six-hourly exports a day per series, associated ids
 * `{assetId}_{propertyId}` and disassociated single ids, mixed value types and
 * qualities.
 */
import { createHash } from 'node:crypto';
import zlib from 'node:zlib';
import avro from 'avsc';
import snappy from 'snappy';
import { RAW_DATUM_SCHEMA } from '../../src/avro/raw-schema.js';
import { dayPrefix, type Day } from '../../src/partition/day.js';

/** The documented RawDatum schema (the same constant the tool's Athena DDL uses). */
export const RAW_SCHEMA = RAW_DATUM_SCHEMA;

export const rawType = avro.Type.forSchema(RAW_SCHEMA as unknown as avro.Schema);

/** Avro's long as a BigInt (avsc's own is a number, exact only within 2^53): for versions that pass it. */
const bigLong = avro.types.LongType.__with({
  fromBuffer: (b: Buffer) => b.readBigInt64LE(),
  toBuffer: (n: bigint) => {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(n);
    return b;
  },
  fromJSON: BigInt,
  toJSON: Number,
  isValid: (n: unknown) => typeof n === 'bigint',
  compare: (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0),
});
/** The raw schema with every long a BigInt. */
export const exactRawType = avro.Type.forSchema(RAW_SCHEMA as unknown as avro.Schema, { registry: { long: bigLong } });

export interface RawDatum {
  seriesId: string;
  timeInSeconds: number;
  offsetInNanos: number;
  quality: string;
  doubleValue: number | null;
  stringValue: string | null;
  integerValue: number | null;
  booleanValue: boolean | null;
  jsonValue: string | null;
  recordVersion: number | null;
}

type DataType = 'DOUBLE' | 'STRING' | 'INTEGER' | 'BOOLEAN' | 'STRUCT';

export interface SeriesSpec {
  id: string;
  associated: boolean;
  assetId?: string;
  propertyId?: string;
  alias?: string;
  dataType: DataType;
}

export interface ColdObject {
  key: string;
  seriesId: string;
  exportIndex: number;
  body: Buffer;
  records: RawDatum[];
}

/** mulberry32: small, fast, deterministic. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function uuid(rand: () => number): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(rand() * 16).toString(16)).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20)}`;
}

const DATA_TYPES: DataType[] = ['DOUBLE', 'DOUBLE', 'DOUBLE', 'INTEGER', 'STRING', 'BOOLEAN', 'STRUCT'];

export function makeSeries(count: { associated: number; disassociated: number }, seed = 1): SeriesSpec[] {
  const rand = prng(seed);
  const series: SeriesSpec[] = [];
  for (let i = 0; i < count.associated; i++) {
    const assetId = uuid(rand);
    const propertyId = uuid(rand);
    series.push({ id: `${assetId}_${propertyId}`, associated: true, assetId, propertyId, dataType: DATA_TYPES[i % DATA_TYPES.length]! });
  }
  for (let i = 0; i < count.disassociated; i++) {
    series.push({ id: uuid(rand), associated: false, alias: `/plant/line${i}/sensor`, dataType: DATA_TYPES[(i + 3) % DATA_TYPES.length]! });
  }
  return series;
}

export function seriesBucket(id: string): string {
  return createHash('md5').update(id).digest('hex').slice(0, 2);
}

export const EXPORT_SECONDS = 6 * 3600;

export function dayStartSeconds(day: Day): number {
  return Date.UTC(day.year, day.month - 1, day.day) / 1000;
}

export function coldKey(prefix: string, day: Day, seriesId: string, startTimestamp: number, quality: string, kind = 'raw'): string {
  return `${dayPrefix(prefix, day)}seriesBucket=${seriesBucket(seriesId)}/${kind}_${seriesId}_${startTimestamp}_${quality}.avro`;
}

function value(series: SeriesSpec, rand: () => number, t: number): Partial<RawDatum> {
  switch (series.dataType) {
    case 'DOUBLE':
      return { doubleValue: Math.round((20 + 10 * Math.sin(t / 3600) + rand()) * 1e6) / 1e6 };
    case 'INTEGER':
      return { integerValue: Math.floor(rand() * 10000) - 5000 };
    case 'STRING':
      return { stringValue: ['RUNNING', 'IDLE', 'FAULT', 'MAINTENANCE'][Math.floor(rand() * 4)]! };
    case 'BOOLEAN':
      return { booleanValue: rand() < 0.5 };
    case 'STRUCT':
      return { jsonValue: JSON.stringify({ temp: Math.round(rand() * 1000) / 10, unit: 'C' }) };
  }
}

export interface DayOptions {
  prefix?: string;
  exports?: number[];
  recordsPerFile?: number;
  seed?: number;
  codec?: 'snappy' | 'deflate' | 'null';
}

/** One day's cold-tier objects for the given series and export windows (0..3). */
export async function generateDay(series: SeriesSpec[], day: Day, options: DayOptions = {}): Promise<ColdObject[]> {
  const objects: ColdObject[] = [];
  for await (const o of generateObjects(series, day, options)) objects.push(o);
  return objects;
}

/** The same objects one at a time, so a benchmark can make gigabytes without holding them. */
export async function* generateObjects(series: SeriesSpec[], day: Day, options: DayOptions = {}): AsyncGenerator<ColdObject> {
  const { prefix = 'raw/', exports = [0, 1, 2, 3], recordsPerFile = 20, seed = 7, codec = 'snappy' } = options;
  for (const [si, s] of series.entries()) {
    for (const e of exports) {
      const rand = prng(seed * 1_000_003 + dayStartSeconds(day) + si * 31 + e);
      const start = dayStartSeconds(day) + e * EXPORT_SECONDS;
      const qualities = ['GOOD', ...(rand() < 0.2 ? ['BAD'] : []), ...(rand() < 0.1 ? ['UNCERTAIN'] : [])];
      for (const quality of qualities) {
        const n = quality === 'GOOD' ? recordsPerFile : Math.max(1, Math.floor(recordsPerFile / 5));
        const records: RawDatum[] = [];
        for (let i = 0; i < n; i++) {
          const t = start + Math.floor((i * EXPORT_SECONDS) / n);
          records.push({
            seriesId: s.id,
            timeInSeconds: t,
            offsetInNanos: Math.floor(rand() * 1e9),
            quality,
            doubleValue: null,
            stringValue: null,
            integerValue: null,
            booleanValue: null,
            jsonValue: null,
            recordVersion: rand() < 0.5 ? null : Math.floor(rand() * 1e12),
            ...value(s, rand, t),
          });
        }
        yield { key: coldKey(prefix, day, s.id, start, quality), seriesId: s.id, exportIndex: e, body: await encodeAvro(records, codec), records };
      }
    }
  }
}

const codecs = {
  snappy(buf: Buffer, cb: (err: Error | null, out?: Buffer) => void) {
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(buf));
    cb(null, Buffer.concat([snappy.compressSync(buf), crc]));
  },
  deflate: (buf: Buffer, cb: (err: Error | null, out?: Buffer) => void) => zlib.deflateRaw(buf, cb),
  null: (buf: Buffer, cb: (err: Error | null, out?: Buffer) => void) => cb(null, buf),
};

/** An object-container file written by avsc's own encoder. */
export async function encodeAvro(records: object[], codec = 'snappy', type: avro.Type = rawType, blockSize = 16 * 1024): Promise<Buffer> {
  const encoder = new avro.streams.BlockEncoder(type, { codec, codecs, blockSize });
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    encoder.on('data', (c: Buffer) => chunks.push(c));
    encoder.on('end', resolve);
    encoder.on('error', reject);
  });
  for (const r of records) encoder.write(r);
  encoder.end();
  await done;
  return Buffer.concat(chunks);
}

/** Decodes a whole object-container file with avsc: the independent reader tests compare against. */
export async function decodeAvro(body: Buffer, as?: avro.Type): Promise<{ schema: unknown; codec: string; records: RawDatum[] }> {
  // `as`: the file's schema read through this type (exactRawType for exact longs)
  const decoder = new avro.streams.BlockDecoder({ codecs: { snappy: snappyDecode, deflate: zlib.inflateRaw }, ...(as ? { parseHook: () => as } : {}) });
  const records: RawDatum[] = [];
  let schema: unknown;
  let codec = 'null';
  const done = new Promise<void>((resolve, reject) => {
    decoder.on('metadata', (type: avro.Type, c: string) => {
      schema = type.schema();
      codec = c;
    });
    decoder.on('data', (r: RawDatum) => records.push({ ...r }));
    decoder.on('end', resolve);
    decoder.on('error', reject);
  });
  decoder.end(body);
  await done;
  return { schema, codec, records };
}

function snappyDecode(buf: Buffer, cb: (err: Error | null, out?: Buffer) => void) {
  try {
    const raw = snappy.uncompressSync(buf.subarray(0, buf.length - 4), { asBuffer: true }) as Buffer;
    if (zlib.crc32(raw) !== buf.readUInt32BE(buf.length - 4)) throw new Error('snappy CRC mismatch');
    cb(null, raw);
  } catch (err) {
    cb(err as Error);
  }
}

/** A stable text form of a record, for multiset comparisons. */
export function recordKey(r: RawDatum): string {
  return JSON.stringify([r.seriesId, r.timeInSeconds, r.offsetInNanos, r.quality, r.doubleValue, r.stringValue, r.integerValue, r.booleanValue, r.jsonValue, r.recordVersion]);
}

/** Flips the 4 CRC bytes at the end of the first block's data (just before its sync marker). */
export function breakFirstCrc(body: Buffer): Buffer {
  const copy = Buffer.from(body);
  const sync = Buffer.from(copy.subarray(copy.length - 16)); // every container file ends with its sync marker
  const at = copy.indexOf(sync, copy.indexOf(sync) + 16); // the first block's end: the header ends with the marker too
  for (let i = at - 4; i < at; i++) copy[i] = copy[i]! ^ 0xff;
  return copy;
}


/**
 * Records SiteWise sends again in a later export, as it may ("newer records
 * have larger versions"): for every `seriesEvery`-th series of `objects`, a
 * new object (its own key, one second after the series' first export) with
 * about a third of that series' records again, values changed. Most carry a
 * larger recordVersion (they must win); some whose version is at least 1
 * carry a smaller one (the earlier record must stay).
 */
export async function generateReExports(objects: ColdObject[], options: { seriesEvery?: number; seed?: number } = {}): Promise<ColdObject[]> {
  const { seriesEvery = 3, seed = 11 } = options;
  const rand = prng(seed);
  const ids = [...new Set(objects.map((o) => o.seriesId))].sort().filter((_, i) => i % seriesEvery === 0);
  const out: ColdObject[] = [];
  for (const id of ids) {
    const mine = objects.filter((o) => o.seriesId === id).sort((a, b) => a.key.localeCompare(b.key));
    const records: RawDatum[] = [];
    for (const r of mine.flatMap((o) => o.records)) {
      if (rand() > 0.35) continue;
      const old = r.recordVersion;
      const stale = old !== null && old >= 1 && rand() < 0.3;
      records.push({
        ...r,
        recordVersion: stale ? old - 1 : (old ?? 0) + 1 + Math.floor(rand() * 1000),
        doubleValue: r.doubleValue === null ? null : r.doubleValue + 0.5,
        stringValue: r.stringValue === null ? null : `${r.stringValue}-resent`,
        integerValue: r.integerValue === null ? null : r.integerValue + 1,
        booleanValue: r.booleanValue === null ? null : !r.booleanValue,
        jsonValue: r.jsonValue === null ? null : JSON.stringify({ resent: true }),
      });
    }
    if (records.length === 0) continue;
    const first = mine[0]!;
    const key = first.key.replace(/_(\d+)_([A-Z]+)\.avro$/, (_m, t: string) => `_${Number(t) + 1}_GOOD.avro`);
    out.push({ key, seriesId: id, exportIndex: first.exportIndex, body: await encodeAvro(records), records });
  }
  return out;
}

/** Of records sharing (seriesId, timeInSeconds, offsetInNanos), the one with the largest recordVersion (null the smallest): what output.dedupe: latest keeps. */
export function latestOf(records: RawDatum[]): RawDatum[] {
  const best = new Map<string, RawDatum>();
  const version = (r: RawDatum) => r.recordVersion ?? -Infinity;
  for (const r of records) {
    const key = `${r.seriesId}\u0000${r.timeInSeconds}\u0000${r.offsetInNanos}`;
    const had = best.get(key);
    if (!had || version(r) > version(had)) best.set(key, r);
  }
  return [...best.values()];
}

const PROPERTY_NAMES: Record<DataType, { name: string; unit?: string }> = {
  DOUBLE: { name: 'Temperature', unit: 'Celsius' },
  INTEGER: { name: 'Rotation count', unit: 'count' },
  STRING: { name: 'Status' },
  BOOLEAN: { name: 'Running' },
  STRUCT: { name: 'Diagnostics' },
};

/** An associated series' asset and property names, as the asset metadata below gives them. */
export function namesOf(series: SeriesSpec[]): Map<string, { assetName: string; propertyName: string }> {
  return new Map(series.filter((s) => s.associated).map((s, i) => [s.id, { assetName: `Turbine ${i + 1}`, propertyName: PROPERTY_NAMES[s.dataType].name }]));
}

/**
 * SiteWise's asset metadata export in the cold tier, as its User Guide
 * describes it: `{keyPrefix}/asset_metadata/asset_{assetId}.ndjson`, one JSON
 * line per asset property (the series' measurement, and an attribute with no
 * time series), with the asset's and property's ids and names.
 */
export function assetMetadataObjects(series: SeriesSpec[], keyPrefix = ''): { key: string; body: string }[] {
  const names = namesOf(series);
  return series
    .filter((s) => s.associated)
    .map((s, i) => {
      const { assetName, propertyName } = names.get(s.id)!;
      const asset = { assetId: s.assetId!, assetName, assetModelId: `model-${i % 3}` };
      const lines = [
        { ...asset, assetPropertyId: s.propertyId!, assetPropertyName: propertyName, assetPropertyDataType: s.dataType, ...(PROPERTY_NAMES[s.dataType].unit ? { assetPropertyUnit: PROPERTY_NAMES[s.dataType].unit } : {}), assetPropertyAlias: `/plant/turbine${i + 1}/${propertyName.toLowerCase().replace(/ /g, '-')}`, timeSeriesId: `ts-${s.id.slice(0, 8)}`, timeSeriesBucket: seriesBucket(s.id) },
        { ...asset, assetPropertyId: `attr-${s.assetId!.slice(0, 8)}`, assetPropertyName: 'Serial number', assetPropertyDataType: 'STRING' },
      ];
      return { key: `${keyPrefix}asset_metadata/asset_${s.assetId!}.ndjson`, body: lines.map((l) => `${JSON.stringify(l)}\n`).join('') };
    });
}

/**
 * Schema of the cold tier's agg/ files (metrics, transforms and aggregates):
 * the same key fields as raw data, then the aggregation window and its
 * statistics. Written by the tests as SiteWise's guide describes the folder
 * (a different schema: resolution, count, average, minimum, maximum, sum).
 */
export const AGG_SCHEMA = {
  type: 'record',
  name: 'AggregatedDatum',
  namespace: 'amazon.aws.iot.sitewise.agg',
  fields: [
    { name: 'seriesId', type: 'string' },
    { name: 'timeInSeconds', type: 'long' },
    { name: 'offsetInNanos', type: 'long' },
    { name: 'resolution', type: 'string' },
    { name: 'quality', type: 'string' },
    { name: 'count', type: ['null', 'long'], default: null },
    { name: 'average', type: ['null', 'double'], default: null },
    { name: 'minimum', type: ['null', 'double'], default: null },
    { name: 'maximum', type: ['null', 'double'], default: null },
    { name: 'sum', type: ['null', 'double'], default: null },
  ],
} as const;

const aggType = avro.Type.forSchema(AGG_SCHEMA as unknown as avro.Schema);

/** One day of agg/ objects: per series and export window, one minute's aggregates. */
export async function generateAggDay(series: SeriesSpec[], day: Day, options: { prefix?: string; exports?: number[]; recordsPerFile?: number } = {}): Promise<{ key: string; seriesId: string; body: Buffer; records: Record<string, unknown>[] }[]> {
  const { prefix = 'agg/', exports = [0, 1, 2, 3], recordsPerFile = 24 } = options;
  const out = [];
  for (const [si, s] of series.entries()) {
    for (const e of exports) {
      const rand = prng(dayStartSeconds(day) + si * 131 + e);
      const start = dayStartSeconds(day) + e * EXPORT_SECONDS;
      const records = Array.from({ length: recordsPerFile }, (_, i) => {
        const values = Array.from({ length: 60 }, () => 20 + rand() * 10);
        const empty = rand() < 0.1;
        return {
          seriesId: s.id,
          timeInSeconds: start + i * 60,
          offsetInNanos: 0,
          resolution: '1m',
          quality: 'GOOD',
          count: empty ? null : values.length,
          average: empty ? null : values.reduce((a, b) => a + b, 0) / values.length,
          minimum: empty ? null : Math.min(...values),
          maximum: empty ? null : Math.max(...values),
          sum: empty ? null : values.reduce((a, b) => a + b, 0),
        };
      });
      out.push({ key: coldKey(prefix, day, s.id, start, 'GOOD', 'agg'), seriesId: s.id, body: await encodeAvro(records, 'snappy', aggType), records });
    }
  }
  return out;
}
