/**
 * Parquet output, read back by an independent reader: DuckDB
 * (@duckdb/node-api) reads every Parquet file these tests make, and the tests
 * check its records, their order, the row groups' statistics and a query by
 * series against the generated inputs.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { athenaDdl } from '../src/commands/athena-ddl.js';
import { loadConfig } from '../src/config/load-config.js';
import avro from 'avsc';
import { PARQUET, parquetOutput, ROW_GROUP_ROWS } from '../src/output/parquet-output.js';
import { DECODER_THREAD_MIN_BYTES } from '../src/output/series-supply.js';
import { encodeAvro, generateDay, makeSeries, recordKey, type ColdObject } from './support/generate-cold-tier.js';
import { recordSet, recordsOf, startWorld, type World } from './support/harness.js';
import { datum } from './support/parquet-read.js';

const golden = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/golden');
const DAYS = ['--from', '2024-03-01', '--to', '2024-03-02'];
const DAY1 = { year: 2024, month: 3, day: 1 };
const DAY2 = { year: 2024, month: 3, day: 2 };

type Row = Record<string, unknown>;

describe('Parquet output', () => {
  const series = makeSeries({ associated: 36, disassociated: 4 }, 71);
  let world: World;
  let scratch: string;
  let db: DuckDBConnection;
  let objects: ColdObject[];
  before(async () => {
    world = await startWorld(series);
    scratch = await mkdtemp(path.join(os.tmpdir(), 'parquet-'));
    db = await (await DuckDBInstance.create(':memory:')).connect();
    // day 1 is large enough for several row groups and for merge's decoder thread; day 2 is small (decoded on the main thread)
    const day1 = await generateDay(series, DAY1, { recordsPerFile: 2000 });
    assert.ok(day1.reduce((n, o) => n + o.body.length, 0) >= DECODER_THREAD_MIN_BYTES, 'day 1 is decoded on the decoder thread');
    objects = [...day1, ...(await generateDay(series, DAY2, { exports: [0, 1], recordsPerFile: 30 }))];
    await world.put(objects);
  });
  after(async () => {
    db?.closeSync();
    await world?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  /** The day's Parquet files, fetched to local files for DuckDB. */
  async function parquetFiles(day: { day: number }): Promise<string[]> {
    const keys = (await world.list(world.dest, `consolidated/startYear=2024/startMonth=3/startDay=${day.day}/`)).map((o) => o.key);
    assert.ok(keys.length > 0 && keys.every((k) => /\/merged_series_v1-[0-9a-f]{24}\.parquet$/.test(k)), keys.join(', '));
    return Promise.all(
      keys.map(async (k, i) => {
        const file = path.join(scratch, `${day.day}-${i}-${path.basename(k)}`);
        await writeFile(file, await world.get(world.dest, k));
        return file;
      }),
    );
  }
  const rows = async (sql: string): Promise<Row[]> => (await db.runAndReadAll(sql)).getRowObjects();
  const list = (files: string[]) => `[${files.map((f) => `'${f}'`).join(', ')}]`;

  /** Day 1's file as `merge` wrote it, on its decoder thread: run (which decodes in place) must write the same bytes. */
  let mergedDay1: Buffer;

  it('merge writes Parquet days one at a time, the large one on the decoder thread', async () => {
    await world.writeConfig({ timeseries_type: 'ALL', output: { format: 'parquet', compression: 'zstd' } });
    assert.equal((await world.cli(['download', ...DAYS])).code, 0);
    const r = await world.cli(['merge', '--log-format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const events = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; stage?: string; day?: string });
    const ofDay = (day: string) => events.flatMap((e, i) => (e.stage === 'merge' && e.day === day ? [i] : []));
    const [a, b] = [ofDay('2024-03-02'), ofDay('2024-03-01')];
    assert.ok(a.length > 0 && b.length > 0);
    // one day's events all come before the other's: the two days were not written at once
    assert.ok(Math.max(...a) < Math.min(...b) || Math.max(...b) < Math.min(...a), 'the days were merged one after the other');
    const dir = path.join(world.workDir, 'merged', '2024-3-1');
    mergedDay1 = await readFile(path.join(dir, (await readdir(dir)).find((f) => f.endsWith('.parquet'))!));
    await rm(world.workDir, { recursive: true, force: true });
  });

  it('run writes one Parquet file a day under the same keys; DuckDB reads back exactly the inputs, ordered by series and time, with row-group statistics', async () => {
    await world.writeConfig({ timeseries_type: 'ALL', output: { format: 'parquet', compression: 'zstd' } });
    const r = await world.cli(['run', ...DAYS]);
    assert.equal(r.code, 0, r.stderr);
    for (const day of [DAY1, DAY2]) {
      const files = await parquetFiles(day);
      assert.equal(files.length, 1);
      if (day === DAY1) assert.ok((await readFile(files[0]!)).equals(mergedDay1), 'run, decoding in place, wrote the bytes merge wrote on its decoder thread');
      const got = await rows(`select * from read_parquet(${list(files)}, file_row_number = true) order by file_row_number`);
      const inputs = objects.filter((o) => o.key.includes(`startDay=${day.day}/`));
      assert.deepEqual(recordSet(got.map(datum)), recordSet(recordsOf(inputs)), `day ${day.day}: the multiset of records`);
      // the file's own order: seriesId, then timeInSeconds, then offsetInNanos
      const order = got.map((row) => [row.seriesId as string, Number(row.timeInSeconds as bigint), Number(row.offsetInNanos as bigint)] as const);
      for (let i = 1; i < order.length; i++) {
        const [a, b] = [order[i - 1]!, order[i]!];
        assert.ok(a[0] < b[0] || (a[0] === b[0] && (a[1] < b[1] || (a[1] === b[1] && a[2] <= b[2]))), `row ${i} is out of order: ${JSON.stringify(a)} then ${JSON.stringify(b)}`);
      }
    }
    // row groups: bounded, compressed as configured, with min/max on seriesId and the time columns
    const [big] = await parquetFiles(DAY1);
    const meta = await rows(`select row_group_id, row_group_num_rows, path_in_schema, stats_min_value, stats_max_value, compression, encodings from parquet_metadata('${big}')`);
    // integer columns delta-encoded or in a dictionary (the writer picks the smaller), never plain alone; the series id dictionary-encoded
    for (const column of ['timeInSeconds', 'offsetInNanos', 'recordVersion', 'integerValue']) {
      const encodings = meta.filter((m) => m.path_in_schema === column).map((m) => String(m.encodings));
      assert.ok(encodings.length > 0 && encodings.every((e) => /DELTA_BINARY_PACKED|DICTIONARY/.test(e)), `${column}: ${encodings.join('; ')}`);
    }
    assert.ok(meta.filter((m) => m.path_in_schema === 'seriesId').every((m) => String(m.encodings).includes('DICTIONARY')), 'seriesId: dictionary');
    const groups = new Set(meta.map((m) => m.row_group_id));
    assert.ok(groups.size >= 2, `${groups.size} row groups`);
    assert.ok(meta.every((m) => Number(m.row_group_num_rows as bigint) <= ROW_GROUP_ROWS));
    assert.ok(meta.every((m) => m.compression === 'ZSTD'));
    for (const column of ['seriesId', 'timeInSeconds', 'offsetInNanos']) {
      assert.ok(meta.filter((m) => m.path_in_schema === column).every((m) => m.stats_min_value !== null && m.stats_max_value !== null), `${column} has statistics in every row group`);
    }
    // sorted by series: the row groups' seriesId ranges follow one another, so an engine skips the others
    const ranges = meta.filter((m) => m.path_in_schema === 'seriesId').sort((a, b) => Number(a.row_group_id) - Number(b.row_group_id));
    // (a writer may cut a long string bound, raising its last byte in a max: compared on 63 bytes)
    const bounds = ranges.map((m) => [(m.stats_min_value as string).slice(0, 63), (m.stats_max_value as string).slice(0, 63)]);
    for (let i = 1; i < bounds.length; i++) assert.ok(bounds[i - 1]![1]! <= bounds[i]![0]!, JSON.stringify(bounds));
    // every field a column, in the schema's order, each optional (DuckDB's writer marks every column so), typed as the Avro field
    const schema = await rows(`select name, repetition_type, type from parquet_schema('${big}') where name <> 'duckdb_schema' and num_children is null`);
    assert.deepEqual(
      schema.map((s) => `${s.name as string} ${s.repetition_type as string} ${s.type as string}`),
      ['seriesId', 'timeInSeconds', 'offsetInNanos', 'quality', 'doubleValue', 'stringValue', 'integerValue', 'booleanValue', 'jsonValue', 'recordVersion'].map(
        (name, i) => `${name} OPTIONAL ${['BYTE_ARRAY', 'INT64', 'INT64', 'BYTE_ARRAY', 'DOUBLE', 'BYTE_ARRAY', 'INT32', 'BOOLEAN', 'BYTE_ARRAY', 'INT64'][i]!}`,
      ),
    );
  });

  it('a query by seriesId returns exactly that series\' records', async () => {
    const files = await parquetFiles(DAY1);
    for (const s of [series[0]!, series[17]!, series[39]!]) {
      const got = await rows(`select * from read_parquet(${list(files)}) where seriesId = '${s.id}'`);
      const want = recordsOf(objects.filter((o) => o.seriesId === s.id && o.key.includes('startDay=1/')));
      assert.ok(want.length > 0);
      assert.deepEqual(got.map(datum).map(recordKey).sort(), want.map(recordKey).sort());
    }
  });

  it('late exports add a Parquet file beside the first, and the day still holds every record once; snappy by default', async () => {
    await world.writeConfig({ timeseries_type: 'ALL', output: { format: 'parquet' } });
    const late = (await generateDay(series, DAY2, { exports: [2], recordsPerFile: 30, seed: 9 })).filter((o) => !objects.some((x) => x.key === o.key));
    assert.ok(late.length > 0);
    await world.put(late);
    const r = await world.cli(['run', ...DAYS]);
    assert.equal(r.code, 0, r.stderr);
    const files = await parquetFiles(DAY2);
    assert.equal(files.length, 2);
    const got = await rows(`select * from read_parquet(${list(files)})`);
    assert.deepEqual(recordSet(got.map(datum)), recordSet(recordsOf([...objects.filter((o) => o.key.includes('startDay=2/')), ...late])));
    const newest = files.find((f) => !f.includes('-0-')) ?? files[1]!;
    const codecs = new Set((await rows(`select compression from parquet_metadata('${newest}')`)).map((m) => m.compression));
    assert.ok(codecs.has('SNAPPY') || codecs.has('ZSTD'));
  });

  it('--output-format overrides the config, and a bad output.format or compression names the key', async () => {
    await world.writeConfig({ timeseries_type: 'ALL', output: { format: 'orc' } });
    const bad = await world.cli(['merge']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /output\.format: 'orc' is not one of avro, parquet/);
    await world.writeConfig({ timeseries_type: 'ALL', output: { compression: 'lz4' } });
    const badCompression = await world.cli(['merge']);
    assert.equal(badCompression.code, 2);
    assert.match(badCompression.stderr, /output\.compression: 'lz4' is not one of snappy, zstd/);
    await world.writeConfig({ timeseries_type: 'ALL', output: { format: 'orc' } });
    assert.equal((await world.cli(['merge', '--output-format', 'parquet'])).code, 0);
  });
});

describe('Parquet from a schema with nested fields', () => {
  it('keeps every field: nested types as JSON text, read back by DuckDB, rows in series and time order', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'nested-'));
    const type = avro.Type.forSchema({
      type: 'record',
      name: 'Nested',
      fields: [
        { name: 'seriesId', type: 'string' },
        { name: 'timeInSeconds', type: 'long' },
        { name: 'offsetInNanos', type: 'long' },
        { name: 'tags', type: { type: 'array', items: 'string' } },
        { name: 'note', type: ['null', 'string'], default: null },
      ],
    });
    const rows = (id: string, t0: number) => [2, 0, 1].map((k) => ({ seriesId: id, timeInSeconds: t0 + k, offsetInNanos: 5, tags: [`t${k}`, 'x'], note: k === 1 ? null : `n${k}` }));
    const inputs = [];
    for (const [i, id] of ['series-b', 'series-a'].entries()) {
      const file = path.join(dir, `${i}.avro`);
      await writeFile(file, await encodeAvro(rows(id, 100), 'snappy', type));
      inputs.push({ file, name: `in-${i}`, size: 0, seriesId: id });
    }
    const out = path.join(dir, 'out.parquet');
    const written = await parquetOutput({}).writeDay(inputs, out, { seed: 'nested' });
    assert.equal(written.records, 6);
    const db = await (await DuckDBInstance.create(':memory:')).connect();
    const got = (await db.runAndReadAll(`select seriesId, timeInSeconds, tags, note from read_parquet('${out}', file_row_number = true) order by file_row_number`)).getRowObjects();
    db.closeSync();
    assert.deepEqual(
      got.map((r) => [r.seriesId, Number(r.timeInSeconds as bigint), JSON.parse(r.tags as string) as string[], r.note]),
      [
        ['series-a', 100, ['t0', 'x'], 'n0'],
        ['series-a', 101, ['t1', 'x'], null],
        ['series-a', 102, ['t2', 'x'], 'n2'],
        ['series-b', 100, ['t0', 'x'], 'n0'],
        ['series-b', 101, ['t1', 'x'], null],
        ['series-b', 102, ['t2', 'x'], 'n2'],
      ],
    );
    await rm(dir, { recursive: true, force: true });
  });
});

describe('Parquet writer: every column kind through DuckDB\'s chunks', () => {
  const type = avro.Type.forSchema({
    type: 'record',
    name: 'Kinds',
    fields: [
      { name: 'seriesId', type: 'string' },
      { name: 'timeInSeconds', type: 'long' },
      { name: 'offsetInNanos', type: 'long' },
      { name: 'label', type: 'string' },
      { name: 'blob', type: ['null', 'bytes'], default: null },
      { name: 'flag', type: ['null', 'boolean'], default: null },
      { name: 'count', type: ['null', 'int'], default: null },
      { name: 'ratio', type: ['null', 'float'], default: null },
      { name: 'tag', type: ['null', 'string'], default: null },
    ],
  });
  // a short series id (its chunks inline) with more rows than two chunks, and a long one (a constant vector) with a few;
  // labels short and long in one chunk, nulls between values, every value exact in its type
  const rowsOf = (id: string, n: number) =>
    Array.from({ length: n }, (_, k) => {
      const i = n - 1 - k;
      return {
        seriesId: id,
        timeInSeconds: 1_700_000_000 + i,
        offsetInNanos: (i * 7919) % 1_000_000_000,
        label: i % 3 === 0 ? `L${i}` : `a label longer than twelve bytes ${i}`,
        blob: i % 5 === 0 ? null : Buffer.from([i & 255, 7, 0]),
        flag: i % 4 === 0 ? null : i % 2 === 0,
        count: i % 6 === 0 ? null : i - 1500,
        ratio: i % 7 === 0 ? null : i / 8,
        tag: i % 11 === 0 ? null : 'a tag longer than twelve bytes',
      };
    });
  const ids = ['series-a', 'series-b-whose-id-is-longer-than-twelve-bytes'] as const;

  async function inputsIn(dir: string, spoil?: number) {
    const inputs = [];
    for (const [i, [id, n]] of ([[ids[1], 5], [ids[0], 2500], [ids[0], 1800]] as const).entries()) {
      const file = path.join(dir, `${i}.avro`);
      // the second export of series-a comes later in the day
      const records = rowsOf(id, n).map((r) => (i === 2 ? { ...r, timeInSeconds: r.timeInSeconds + 10_000 } : r));
      const body = await encodeAvro(records, 'snappy', type, 4096);
      if (i === spoil) body[Math.floor(body.length / 2)]! ^= 0xff;
      await writeFile(file, body);
      inputs.push({ file, name: `in-${i}`, size: body.length, seriesId: id });
    }
    return inputs;
  }

  it('reads back exactly what went in: strings inline, constant and one by one, bytes, booleans, ints, floats and nulls; the same bytes from the decoder thread', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kinds-'));
    const inputs = await inputsIn(dir);
    const out = path.join(dir, 'out.parquet');
    const written = await parquetOutput({}).writeDay(inputs, out, { seed: 'kinds' });
    assert.equal(written.records, 5 + 2500 + 1800);
    // inputs said to be large go through the decoder thread: the same file
    const threaded = path.join(dir, 'threaded.parquet');
    const big = inputs.map((i) => ({ ...i, size: DECODER_THREAD_MIN_BYTES }));
    assert.deepEqual(await parquetOutput({}).writeDay(big, threaded, { seed: 'kinds' }), written);
    assert.ok((await readFile(threaded)).equals(await readFile(out)), 'the decoder thread writes the same bytes');
    const want = [
      ...[...rowsOf(ids[0], 2500), ...rowsOf(ids[0], 1800).map((r) => ({ ...r, timeInSeconds: r.timeInSeconds + 10_000 }))].sort((a, b) => a.timeInSeconds - b.timeInSeconds),
      ...rowsOf(ids[1], 5).reverse(),
    ];
    await assertReadsBack(out, want);
    await rm(dir, { recursive: true, force: true });
  });

  it('a block of more records than twice the rows read before it, then a few more: every value in its row', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kinds-block-'));
    // one block of 3,001 records (a writer with a large sync interval), then an export of 5: the columns grow by the block, not by doubling
    const [big, few] = [rowsOf(ids[0], 3001), rowsOf(ids[0], 5).map((r) => ({ ...r, timeInSeconds: r.timeInSeconds + 10_000 }))];
    const inputs = [];
    for (const [i, records] of [big, few].entries()) {
      const file = path.join(dir, `${i}.avro`);
      const body = await encodeAvro(records, 'snappy', type, 2 ** 20);
      await writeFile(file, body);
      inputs.push({ file, name: `in-${i}`, size: body.length, seriesId: ids[0] });
    }
    const out = path.join(dir, 'out.parquet');
    await parquetOutput({}).writeDay(inputs, out, { seed: 'block' });
    await assertReadsBack(out, [...big.reverse(), ...few.reverse()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('a series whose text differs on every record, too many values for the decoder thread, is written whole on the main thread instead', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kinds-distinct-'));
    // 240,000 distinct tags in one series' day (a text reading at some 3 Hz): more than the thread's heap holds
    const rows = rowsOf(ids[0], 240_000).map((r, i) => ({ ...r, tag: `reading ${i} of a text sensor` }));
    const inputs = [];
    for (const [i, part] of [rows.slice(0, 120_000), rows.slice(120_000)].entries()) {
      const file = path.join(dir, `${i}.avro`);
      const body = await encodeAvro(part, 'snappy', type);
      await writeFile(file, body);
      // said to be large: a day that goes to the decoder thread
      inputs.push({ file, name: `in-${i}`, size: DECODER_THREAD_MIN_BYTES, seriesId: ids[0] });
    }
    const out = path.join(dir, 'out.parquet');
    const seen: number[] = [];
    const written = await parquetOutput({}).writeDay(inputs, out, { seed: 'distinct', onInput: (_r, bytes) => seen.push(bytes) });
    assert.equal(written.records, rows.length);
    // progress counts each input's bytes once, though the day was begun on the thread
    assert.equal(
      seen.reduce((n, b) => n + b, 0),
      written.bytesIn,
    );
    await assertReadsBack(out, [...rows].sort((a, b) => a.timeInSeconds - b.timeInSeconds));
    await rm(dir, { recursive: true, force: true });
  });

  it('a row group that begins inside a series, at a row that is not a multiple of 8, keeps every value and null in its row', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kinds-cut-'));
    // 3 rows of series-a, then series-b across the first row group's end: its rows from the cut on start at row 32,765 of the series
    const [a, b] = [rowsOf(ids[0], 3), rowsOf(ids[1], ROW_GROUP_ROWS + 100)];
    const inputs = [];
    for (const [i, records] of [a, b].entries()) {
      const file = path.join(dir, `${i}.avro`);
      const body = await encodeAvro(records, 'snappy', type, 4096);
      await writeFile(file, body);
      inputs.push({ file, name: `in-${i}`, size: body.length, seriesId: records[0]!.seriesId });
    }
    const out = path.join(dir, 'out.parquet');
    await parquetOutput({}).writeDay(inputs, out, { seed: 'cut' });
    await assertReadsBack(out, [...a.reverse(), ...b.reverse()]);
    await rm(dir, { recursive: true, force: true });
  });

  /** The file's rows, read by DuckDB in file order, equal `want`'s. */
  async function assertReadsBack(out: string, want: ReturnType<typeof rowsOf>) {
    const db = await (await DuckDBInstance.create(':memory:')).connect();
    const got = (await db.runAndReadAll(`select * exclude (file_row_number) from read_parquet('${out}', file_row_number = true) order by file_row_number`)).getRowObjects();
    db.closeSync();
    const plain = (r: Row) => ({ ...r, timeInSeconds: Number(r.timeInSeconds), offsetInNanos: Number(r.offsetInNanos), blob: r.blob === null ? null : Buffer.from((r.blob as { bytes: Uint8Array }).bytes ?? (r.blob as Uint8Array)) });
    assert.equal(got.length, want.length);
    for (let i = 0; i < want.length; i++) assert.deepEqual(plain(got[i]!), { ...want[i]!, blob: want[i]!.blob }, `row ${i}`);
  }

  it('a compact of Parquet files gives the same bytes whether it orders the day at once or a series at a time', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kinds-compact-'));
    const inputs = await inputsIn(dir);
    // two files of the day, as two runs would leave them: every series in each, the second export of series-a later
    const files = [];
    for (const [i, part] of [[inputs[0]!, inputs[1]!], [inputs[2]!, inputs[0]!]].entries()) {
      const file = path.join(dir, `run-${i}.parquet`);
      await parquetOutput({}).writeDay(part, file, { seed: `run-${i}` });
      files.push({ file, name: `run-${i}.parquet`, size: 0 });
    }
    for (const dedupe of ['none', 'latest'] as const) {
      const [whole, bySeries] = [path.join(dir, `whole-${dedupe}.parquet`), path.join(dir, `series-${dedupe}.parquet`)];
      const a = await parquetOutput({ dedupe }).writeDay(files, whole, { seed: 'compact' });
      const b = await parquetOutput({ dedupe, compactBatchRows: 1 }).writeDay(files, bySeries, { seed: 'compact' });
      assert.deepEqual(b, a);
      // series-b's five rows are in both files: kept twice, or once with dedupe
      assert.equal(a.records, dedupe === 'none' ? 2 * 5 + 2500 + 1800 : 5 + 2500 + 1800);
      assert.ok((await readFile(bySeries)).equals(await readFile(whole)), `${dedupe}: the same bytes`);
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('a damaged input is named, and the others still read, for the message', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kinds-bad-'));
    for (const size of [1, DECODER_THREAD_MIN_BYTES]) {
      const inputs = (await inputsIn(dir, 1)).map((i) => ({ ...i, size }));
      await assert.rejects(parquetOutput({}).writeDay(inputs, path.join(dir, 'out.parquet'), { seed: 'bad' }), (err: Error & { bad?: { name: string }[] }) => {
        assert.equal(err.name, 'BadInputsError');
        assert.deepEqual(err.bad?.map((b) => b.name), ['in-1']);
        assert.match(err.message, /in-1: /);
        return true;
      });
    }
    await rm(dir, { recursive: true, force: true });
  });
});

describe('athena-ddl for Parquet', () => {
  it('matches the golden DDL: the same columns and partition projection, STORED AS PARQUET', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ddl-'));
    const file = path.join(dir, 'config.yml');
    await writeFile(file, JSON.stringify({ s3_buckets: { cold_tier_bucket_name: 'plant-cold', repartitioned_bucket_name: 'plant-repartitioned', repartitioned_bucket_data_prefix: 'sitewise/consolidated' }, output: { format: 'parquet' } }));
    const config = await loadConfig({ config: file }, ['dest-bucket'], {}, new Date());
    assert.equal(config.outputFormat, 'parquet');
    const ddl = athenaDdl(config, { table: 'plant_data', database: 'iot' }, PARQUET);
    if (process.env.UPDATE_GOLDEN) await writeFile(path.join(golden, 'athena-ddl-parquet.sql'), ddl);
    assert.equal(ddl, await readFile(path.join(golden, 'athena-ddl-parquet.sql'), 'utf8'));
    await rm(dir, { recursive: true, force: true });
  });
});
