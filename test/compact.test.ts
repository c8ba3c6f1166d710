/**
 * compact: a day's data files become one, committed with one ledger write,
 * exactly once whatever moment a SIGKILL lands on; Avro days by a block
 * copy, Parquet days rewritten (read back by DuckDB).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { generateDay, makeSeries, recordKey, type ColdObject } from './support/generate-cold-tier.js';
import { recordSet, recordsOf, startWorld, type World } from './support/harness.js';

const DAY1 = { year: 2024, month: 3, day: 1 };
const DAY2 = { year: 2024, month: 3, day: 2 };
const DATES = ['--from', '2024-03-01', '--to', '2024-03-02'];
const DATA = (d: { day: number }) => `consolidated/startYear=2024/startMonth=3/startDay=${d.day}/`;

/** Export `e` of the series, under keys no other export has. */
async function exportOf(series: ReturnType<typeof makeSeries>, day: typeof DAY1, e: number, tag: number): Promise<ColdObject[]> {
  const objects = await generateDay(series, day, { exports: [e % 4], recordsPerFile: 40, seed: 300 + tag });
  return objects.map((o) => ({ ...o, key: o.key.replace(/_(\d+)_([A-Z]+)\.avro$/, (_m, t: string, q: string) => `_${Number(t) + tag}_${q}.avro`) }));
}

interface LedgerDoc {
  batches: { file: string; records: number; objects: { key: string }[]; compactedFrom?: string[] }[];
}

for (const format of ['avro', 'parquet'] as const)
describe(`compact (${format})`, () => {
  const series = makeSeries({ associated: 6, disassociated: 2 }, 81);
  let world: World;
  let proxy: FaultProxy;
  const landed: ColdObject[] = [];
  /** Three runs with late exports between them: day 1 ends with three data files, day 2 with one. */
  async function threeRuns(tag: number): Promise<void> {
    for (let e = 0; e < 3; e++) {
      const objects = [...(await exportOf(series, DAY1, e, tag + e)), ...(e === 0 ? await exportOf(series, DAY2, 0, tag) : [])];
      await world.put(objects);
      landed.push(...objects);
      const r = await world.cli(['run', ...DATES]);
      assert.equal(r.code, 0, r.stderr);
    }
  }
  const files = async (d: { day: number }) => (await world.list(world.dest, DATA(d))).map((o) => o.key);
  const ledger = async (d: { day: number }) => JSON.parse((await world.get(world.dest, `index/startYear=2024/startMonth=3/startDay=${d.day}/ledger.json`)).toString()) as LedgerDoc;
  async function assertExactlyOnce(): Promise<void> {
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(landed)));
    for (const d of [DAY1, DAY2]) {
      const named = (await ledger(d)).batches.map((b) => b.file).sort();
      assert.deepEqual((await files(d)).map((k) => k.slice(k.lastIndexOf('/') + 1)).sort(), named, `day ${d.day}: the files are the ledger's`);
    }
  }

  before(async () => {
    world = await startWorld(series);
    proxy = await startFaultProxy(world.s3.endpoint, 3);
    await world.writeConfig({ timeseries_type: 'ALL', output: { format } }, proxy.endpoint);
  });
  after(async () => {
    await proxy?.stop();
    await world?.stop();
  });

  it('makes one file of a day\'s files with one ledger write that replaces their batches, deletes the old ones, and leaves a one-file day alone', async () => {
    await threeRuns(0);
    assert.equal((await files(DAY1)).length, 3);
    const before = await ledger(DAY1);
    const r = await world.cli(['compact', ...DATES]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /compact 2024-03-01: done \(\d+ objects, \d+ records, 3 files into 1\)/);
    assert.match(r.stdout, /compact 2024-03-02: skipped \(one data file already\)/);
    const [file] = await files(DAY1);
    assert.equal((await files(DAY1)).length, 1);
    const after = await ledger(DAY1);
    assert.equal(after.batches.length, 1);
    assert.deepEqual(after.batches[0]!.compactedFrom, before.batches.map((b) => b.file));
    assert.deepEqual(after.batches[0]!.objects.map((o) => o.key).sort(), before.batches.flatMap((b) => b.objects.map((o) => o.key)).sort());
    assert.ok(file!.endsWith(`.${format}`), file);
    assert.equal(after.batches[0]!.records, (await world.destinationRecords(DATA(DAY1))).length);
    await assertExactlyOnce();
    // the next run with nothing new changes nothing, and a second compact has nothing to do
    assert.equal((await world.cli(['run', ...DATES])).code, 0);
    assert.match((await world.cli(['compact', ...DATES])).stdout, /compact 2024-03-01: skipped \(one data file already\)/);
    await assertExactlyOnce();
  });

  it('killed with SIGKILL before its ledger write, or after it and before the deletes, a rerun lands every record exactly once', async () => {
    for (const [i, stop] of [
      ['the ledger write', (r: { method: string; path: string }) => r.method === 'PUT' && /startDay(=|%3D)1\/ledger\.json/.test(r.path)],
      // the deletes that follow the ledger write (not the probe's, before any work)
      ['the deletes', (r: { method: string; path: string }) => r.method === 'POST' && r.path.includes('?delete') && proxy.log.some((x) => x.method === 'PUT' && /startDay(=|%3D)1\/ledger\.json/.test(x.path))],
    ].entries() as IterableIterator<[number, [string, (r: { method: string; path: string }) => boolean]]>) {
      await threeRuns(100 * (i + 1));
      const [, match] = stop;
      proxy.stall = [{ match, mode: 'no-answer' }];
      const seen = () => proxy.log.some((r) => match(r));
      proxy.log.length = 0;
      const killed = await world.cli(['compact', ...DATES], { killWhenSeen: seen });
      proxy.stall = [];
      assert.equal(killed.signal, 'SIGKILL', `${stop[0]}: killed; ${killed.stdout}${killed.stderr}`);
      // a query now would see each record at most twice (old and new files), and never lose one
      const visible = new Set((await world.destinationRecords()).map(recordKey));
      assert.ok(recordsOf(landed).every((r) => visible.has(recordKey(r))), 'nothing is missing meanwhile');
      const rerun = await world.cli(['compact', ...DATES], { env: { SITEWISE_REPARTITION_LEASE_SECONDS: '1' } });
      assert.equal(rerun.code, 0, rerun.stderr);
      // a later upload or compact removes what the killed one left
      const again = await world.cli(['compact', ...DATES], { env: { SITEWISE_REPARTITION_LEASE_SECONDS: '1' } });
      assert.equal(again.code, 0, again.stderr);
      assert.equal((await files(DAY1)).length, 1, `${stop[0]}: one file`);
      await assertExactlyOnce();
    }
  });

  it('run --compact leaves one file a day after late exports', async () => {
    const late = await exportOf(series, DAY1, 3, 900);
    await world.put(late);
    landed.push(...late);
    const r = await world.cli(['run', ...DATES, '--compact']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await files(DAY1)).length, 1);
    await assertExactlyOnce();
  });
});
