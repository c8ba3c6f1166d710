/**
 * output.dedupe: latest: of the records sharing (seriesId, timeInSeconds,
 * offsetInNanos), only the largest recordVersion is kept, within one merge
 * and across the files of earlier runs, in both formats; the blocks of series
 * whose exports do not overlap are copied as they are.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dedupeLatest } from '../src/avro/dedupe-latest.js';
import { DuckDBInstance } from '@duckdb/node-api';
import { avroOutput } from '../src/output/avro-output.js';
import { parquetOutput } from '../src/output/parquet-output.js';
import { decodeAvro, encodeAvro, exactRawType, generateDay, generateReExports, latestOf, makeSeries, type ColdObject, type RawDatum } from './support/generate-cold-tier.js';
import { recordSet, recordsOf, startWorld, type World } from './support/harness.js';

const DAY1 = { year: 2024, month: 3, day: 1 };
const DAY2 = { year: 2024, month: 3, day: 2 };
const DATES = ['--from', '2024-03-01', '--to', '2024-03-02'];
const DATA = (d: { day: number }) => `consolidated/startYear=2024/startMonth=3/startDay=${d.day}/`;

/** A record's key as one number (seconds and nanoseconds), for spans. */
const key = (r: RawDatum) => r.timeInSeconds * 1e9 + r.offsetInNanos;

describe('dedupeLatest on a merged Avro file', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'dedupe-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  async function inputsOf(objects: ColdObject[]) {
    return Promise.all(
      objects.map(async (o, i) => {
        const file = path.join(dir, `in-${i}.avro`);
        await writeFile(file, o.body);
        return { file, name: o.key, size: o.body.length, seriesId: o.seriesId };
      }),
    );
  }

  it("keeps each key's latest version, and copies the blocks of every series whose exports do not overlap", async () => {
    const series = makeSeries({ associated: 10, disassociated: 2 }, 5);
    const base = await generateDay(series, DAY1, { recordsPerFile: 50 });
    const resent = await generateReExports(base, { seriesEvery: 4 });
    const touched = new Set(resent.map((o) => o.seriesId));
    assert.equal(touched.size, 3);
    const all = [...base, ...resent];
    const merged = path.join(dir, 'merged.avro');
    const written = await avroOutput().writeDay(await inputsOf(all), merged, { seed: 'dedupe' });
    assert.equal(written.records, recordsOf(all).length);
    const out = path.join(dir, 'out.avro');
    const sync = Buffer.alloc(16, 7);
    const result = await dedupeLatest(merged, out, 'merged.avro', sync);
    const want = latestOf(recordsOf(all));
    assert.ok(want.length < recordsOf(all).length);
    assert.equal(result.dropped, recordsOf(all).length - want.length);
    assert.equal(result.records, want.length);
    assert.deepEqual(recordSet((await decodeAvro(await readFile(out))).records), recordSet(want));
    // one block per generated object: an object is compared when its time span meets another of its series'
    // (a re-export, or another quality's file of the same window), else copied as stored
    const span = (o: ColdObject) => [Math.min(...o.records.map(key)), Math.max(...o.records.map(key))] as const;
    const meets = (a: ColdObject, b: ColdObject) => a !== b && a.seriesId === b.seriesId && span(a)[0] <= span(b)[1] && span(b)[0] <= span(a)[1];
    const hot = all.filter((o) => all.some((other) => meets(o, other)));
    assert.ok(hot.length < all.length && hot.some((o) => !touched.has(o.seriesId)), `${hot.length} of ${all.length}`);
    assert.deepEqual([result.copiedBlocks, result.hotBlocks], [all.length - hot.length, hot.length]);
  });

  it('compares the records of a block whose keys do not rise, and drops nothing where no key repeats', async () => {
    const r = (t: number, version: number | null, v: number): RawDatum => ({ seriesId: 's1', timeInSeconds: t, offsetInNanos: 0, quality: 'GOOD', doubleValue: v, stringValue: null, integerValue: null, booleanValue: null, jsonValue: null, recordVersion: version });
    const file = path.join(dir, 'one.avro');
    await writeFile(file, await encodeAvro([r(3, 1, 1), r(1, null, 2), r(3, 2, 3), r(2, 5, 4), r(1, 0, 5)]));
    const result = await dedupeLatest(file, path.join(dir, 'one-out.avro'), 'one.avro', Buffer.alloc(16, 1));
    assert.equal(result.dropped, 2);
    const got = (await decodeAvro(await readFile(path.join(dir, 'one-out.avro')))).records;
    assert.deepEqual(got.map((x) => [x.timeInSeconds, x.recordVersion, x.doubleValue]), [[1, 0, 5], [2, 5, 4], [3, 2, 3]]);
    const plain = path.join(dir, 'plain.avro');
    await writeFile(plain, await encodeAvro([r(1, null, 1), r(2, null, 2)]));
    const none = await dedupeLatest(plain, path.join(dir, 'plain-out.avro'), 'plain.avro', Buffer.alloc(16, 1));
    assert.deepEqual([none.dropped, none.copiedBlocks, none.hotBlocks], [0, 1, 0]);
  });

  it('compares versions past 2^53 exactly (in the Avro file and the Parquet day), and writes them exactly', async () => {
    // versions one apart beyond 2^53 (a time in nanoseconds, say), and negative ones below -2^62: as numbers they tie, or turn positive
    const r = (t: number, version: bigint, v: number) => ({ seriesId: 's1', timeInSeconds: BigInt(t), offsetInNanos: 0n, quality: 'GOOD', doubleValue: v, stringValue: null, integerValue: null, booleanValue: null, jsonValue: null, recordVersion: version });
    const records = [r(1, 2n ** 60n, 1), r(2, -(2n ** 62n) - 3n, 2), r(1, 2n ** 60n + 1n, 3), r(2, -(2n ** 62n) - 2n, 4), r(3, 1733011200123456789n, 5), r(3, 1733011200123456788n, 6)];
    const file = path.join(dir, 'big.avro');
    await writeFile(file, await encodeAvro(records, 'snappy', exactRawType));
    const kept = [[1n, 2n ** 60n + 1n, 3], [2n, -(2n ** 62n) - 2n, 4], [3n, 1733011200123456789n, 5]];
    const out = path.join(dir, 'big-out.avro');
    assert.equal((await dedupeLatest(file, out, 'big.avro', Buffer.alloc(16, 1))).dropped, 3);
    const got = (await decodeAvro(await readFile(out), exactRawType)).records as unknown as { timeInSeconds: bigint; recordVersion: bigint; doubleValue: number }[];
    assert.deepEqual(got.map((x) => [x.timeInSeconds, x.recordVersion, x.doubleValue]), kept);
    const db = await (await DuckDBInstance.create(':memory:')).connect();
    try {
      for (const dedupe of ['none', 'latest'] as const) {
        const parquet = path.join(dir, `big-${dedupe}.parquet`);
        await parquetOutput({ dedupe }).writeDay([{ file, name: 'big.avro', size: 0, seriesId: 's1' }], parquet, { seed: 'big' });
        const rows = (await db.runAndReadAll(`select timeInSeconds, recordVersion, doubleValue from '${parquet}'`)).getRows();
        const want = dedupe === 'latest' ? kept : [...records].sort((a, b) => Number(a.timeInSeconds - b.timeInSeconds)).map((x) => [x.timeInSeconds, x.recordVersion, x.doubleValue]);
        assert.deepEqual(new Set(rows.map((x) => JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)))), new Set(want.map((x) => JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)))), dedupe);
      }
    } finally {
      db.closeSync();
    }
  });
});

for (const format of ['avro', 'parquet'] as const)
  describe(`output.dedupe: latest (${format})`, () => {
    const series = makeSeries({ associated: 8, disassociated: 2 }, 91);
    let world: World;
    let base1: ColdObject[];
    before(async () => {
      world = await startWorld(series);
      await world.writeConfig({ timeseries_type: 'ALL', output: { format, dedupe: 'latest' } });
      base1 = await generateDay(series, DAY1, { recordsPerFile: 40 });
    });
    after(async () => world?.stop());

    it('drops older versions that arrive in the same run, and reports how many', async () => {
      const base2 = await generateDay(series, DAY2, { recordsPerFile: 40, seed: 3 });
      const resent = await generateReExports(base2, { seriesEvery: 3, seed: 4 });
      await world.put([...base1, ...base2, ...resent]);
      const r = await world.cli(['run', ...DATES, '--log-format', 'json']);
      assert.equal(r.code, 0, r.stderr);
      const want = latestOf(recordsOf([...base2, ...resent]));
      const dropped = recordsOf([...base2, ...resent]).length - want.length;
      assert.ok(dropped > 0);
      const merges = r.stdout.split('\n').filter((l) => l.includes('"day-end"')).map((l) => JSON.parse(l) as { stage: string; day: string; dropped?: number });
      assert.deepEqual(merges.filter((e) => e.stage === 'run').map((e) => e.day).sort(), ['2024-03-01', '2024-03-02']);
      assert.match(r.stdout, new RegExp(`2024-03-02: ${dropped} records dropped as older versions`));
      assert.deepEqual(recordSet(await world.destinationRecords(DATA(DAY2))), recordSet(want));
      assert.deepEqual(recordSet(await world.destinationRecords(DATA(DAY1))), recordSet(recordsOf(base1)));
    });

    it('a later export with new versions of merged records: the day is compacted into one file holding each key\'s latest', async () => {
      const resent = await generateReExports(base1, { seriesEvery: 2, seed: 8 });
      await world.put(resent);
      // upload alone compacts too, so every way of running keeps each key once
      const steps = format === 'avro' ? [['download', ...DATES], ['merge'], ['upload']] : [['run', ...DATES]];
      let out = '';
      for (const step of steps) {
        const r = await world.cli(step);
        assert.equal(r.code, 0, `${step[0]}: ${r.stderr}`);
        out += r.stdout;
      }
      const want = latestOf(recordsOf([...base1, ...resent]));
      const dropped = recordsOf([...base1, ...resent]).length - want.length;
      assert.match(out, new RegExp(`compacted 2 files into \\S+\\.${format} \\(${want.length} records, ${dropped} older versions dropped\\)`));
      const keys = (await world.list(world.dest, DATA(DAY1))).map((o) => o.key);
      assert.equal(keys.length, 1, keys.join(', '));
      assert.deepEqual(recordSet(await world.destinationRecords(DATA(DAY1))), recordSet(want));
      // nothing new: nothing changes
      const again = await world.cli(['run', ...DATES]);
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(recordSet(await world.destinationRecords(DATA(DAY1))), recordSet(want));
    });
  });

describe('output.dedupe in the config', () => {
  it('a value other than none or latest names the key', async () => {
    const world = await startWorld(makeSeries({ associated: 1, disassociated: 0 }));
    try {
      await world.writeConfig({ output: { dedupe: 'newest' } });
      const r = await world.cli(['merge']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /output\.dedupe: 'newest' is not one of none, latest/);
    } finally {
      await world.stop();
    }
  });
});
