import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateDay, makeSeries, type ColdObject } from './support/generate-cold-tier.js';
import { recordSet, recordsOf, startWorld, type World } from './support/harness.js';
import { originalOutput } from './support/original-sample.js';

const DAY = { year: 2024, month: 3, day: 2 };
const DATES = ['--from', '2024-03-02', '--to', '2024-03-02'];

async function threeCommands(world: World): Promise<void> {
  for (const command of ['download', 'merge', 'upload']) {
    const r = await world.cli([command, ...DATES]);
    assert.equal(r.code, 0, `${command}: ${r.stderr}`);
  }
}

describe('incremental runs and late exports', () => {
  const series = makeSeries({ associated: 8, disassociated: 4 }, 3);
  const late = makeSeries({ associated: 3, disassociated: 0 }, 99); // series that first appear in exports 3 and 4
  let world: World;
  before(async () => {
    world = await startWorld([...series, ...late]);
    await world.writeConfig({ timeseries_type: 'ALL' });
  });
  after(async () => {
    await world?.stop();
  });

  it('exports 1+2, then 3+4 with new series: every record of all four exports exactly once', async () => {
    const early = await generateDay(series, DAY, { exports: [0, 1] });
    await world.put(early);
    await threeCommands(world);
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(early)));

    const rest = [...(await generateDay(series, DAY, { exports: [2, 3] })), ...(await generateDay(late, DAY, { exports: [2, 3] }))];
    await world.put(rest);
    const dry = await world.cli(['download', '--dry-run', ...DATES]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, new RegExp(`would download ${rest.length} objects of ${series.length + late.length} series, [\\d.]+ MB`));
    assert.match(dry.stdout, new RegExp(`\t${early.length} objects already merged \\(in the ledger\\)`));
    assert.ok(!existsSync(path.join(world.workDir, 'raw', '2024-3-2')), 'dry run wrote nothing locally');

    await threeCommands(world);
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf([...early, ...rest])));
    const files = await world.list(world.dest, 'consolidated/');
    assert.equal(files.length, 2, 'one merged file per run that found new data');
    const index = (await world.get(world.dest, 'index/startYear=2024/startMonth=3/startDay=2/timeseries.txt')).toString().trim().split('\n');
    assert.deepEqual(index, [...series, ...late].map((s) => s.id).sort());
  });

  it('reports an object that changed after it was merged, and does not merge it again', async () => {
    const [victim] = await generateDay(series.slice(0, 1), DAY, { exports: [0], recordsPerFile: 99 });
    await world.put([victim!]);
    const before = recordSet(await world.destinationRecords());
    const r = await world.cli(['run', ...DATES]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`WARNING: ${victim!.key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} changed since it was merged`));
    assert.deepEqual(recordSet(await world.destinationRecords()), before);
  });
});

describe('a destination written by the original sample', () => {
  const series = makeSeries({ associated: 6, disassociated: 3 }, 21);
  let world: World;
  let early: ColdObject[];
  before(async () => {
    world = await startWorld(series);
    await world.writeConfig({ timeseries_type: 'ALL' });
    early = await generateDay(series, DAY, { exports: [0, 1] });
    await world.put(early);
    // The original processed exports 1 and 2 of most series, then stopped at a
    // complete-looking day: its index lists those series (associated ids cut in half).
    const processed = early.filter((o) => o.seriesId !== series[0]!.id);
    await world.put(await originalOutput(DAY, processed), world.dest);
  });
  after(async () => {
    await world?.stop();
  });

  it('is adopted without loss or duplicates, later exports of processed series included', async () => {
    const rest = await generateDay(series, DAY, { exports: [2, 3] });
    await world.put(rest);
    await threeCommands(world);
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf([...early, ...rest])));
    const ledger = JSON.parse((await world.get(world.dest, 'index/startYear=2024/startMonth=3/startDay=2/ledger.json')).toString()) as {
      batches: { file: string; adopted?: boolean; objects: unknown[] }[];
    };
    const adopted = ledger.batches.find((b) => b.adopted);
    assert.equal(adopted?.file, 'merged_series_20240302120000.avro');
    assert.equal(adopted?.objects.length, early.filter((o) => o.seriesId !== series[0]!.id).length);
    // the original's file is still there, untouched
    assert.ok((await world.list(world.dest, 'consolidated/')).some((o) => o.key.endsWith('merged_series_20240302120000.avro')));

    const again = await world.cli(['run', ...DATES]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /Skip, no new data/);
  });
});

describe('selection through ListTimeSeries', () => {
  const series = makeSeries({ associated: 5, disassociated: 4 }, 8);
  let world: World;
  let objects: ColdObject[];
  before(async () => {
    world = await startWorld(series);
    objects = await generateDay(series, DAY, { exports: [0] });
    await world.put(objects);
  });
  after(async () => {
    await world?.stop();
  });

  it('DISASSOCIATED takes the single-id series only', async () => {
    await world.writeConfig({ timeseries_type: 'DISASSOCIATED' });
    const r = await world.cli(['run', ...DATES]);
    assert.equal(r.code, 0, r.stderr);
    const ids = new Set(series.filter((s) => !s.associated).map((s) => s.id));
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(objects.filter((o) => ids.has(o.seriesId)))));
    assert.ok(world.sitewise.requests.some((q) => q.type === 'DISASSOCIATED'));
  });

  it('ALL takes the rest without calling ListTimeSeries', async () => {
    await world.writeConfig({ timeseries_type: 'ALL' });
    const calls = world.sitewise.requests.length;
    const r = await world.cli(['run', ...DATES]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(world.sitewise.requests.length, calls);
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(objects)));
  });

  it('pages slowly through throttling instead of failing', async () => {
    await world.writeConfig({ timeseries_type: 'ASSOCIATED' });
    world.sitewise.throttleNext = 3;
    const r = await world.cli(['download', '--dry-run', ...DATES]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(world.sitewise.throttleNext, 0);
  });
});
