/**
 * Latency across days: the cold tier's listings of the coming days run
 * several at once, under the run's bound on requests, so a range of mostly
 * empty days costs one LIST a day in parallel, while the days (and their
 * lines) keep their order. Measured through a proxy that adds latency; the
 * test counts requests in flight, it times nothing.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { generateDay, makeSeries, recordKey } from './support/generate-cold-tier.js';
import { recordsOf, startWorld, type World } from './support/harness.js';
import { DOWNLOAD_DAYS_IN_FLIGHT, LISTS_AHEAD } from '../src/commands/download.js';
import { DAYS_IN_FLIGHT } from '../src/commands/run.js';
import { readManifest } from '../src/workdir/hand-off.js';

/** Runs the CLI with `latencyMs` added to every request, the proxy's log cleared first; it must succeed. */
async function cliThrough(world: World, proxy: FaultProxy, latencyMs: number, args: string[]) {
  proxy.log.length = 0;
  proxy.latencyMs = latencyMs;
  const r = await world.cli(args).finally(() => (proxy.latencyMs = 0));
  assert.equal(r.code, 0, r.stderr);
  return r;
}

/** The day a request's path names (startDay=D of a cold-tier or destination key), if any. */
const dayOf = (path: string) => /startDay(?:=|%3D)(\d+)/.exec(decodeURIComponent(path))?.[1];

/** Whether some request of `a` and some request of `b` were in flight at the same moment. */
function overlapped(a: FaultProxy['log'], b: FaultProxy['log']): boolean {
  return a.some((x) => b.some((y) => x.at! < y.done! && y.at! < x.done!));
}

/** The most requests matching `match` that were in flight at one moment. */
function peakInFlight(log: FaultProxy['log'], match: (path: string) => boolean): number {
  const edges = log.filter((r) => match(r.path) && r.at !== undefined && r.done !== undefined).flatMap((r) => [[r.at!, 1], [r.done!, -1]] as const);
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let peak = 0;
  for (const [, step] of edges) peak = Math.max(peak, (now += step));
  return peak;
}

describe('listing many days at once', () => {
  const series = makeSeries({ associated: 2, disassociated: 1 }, 44);
  let world: World;
  let proxy: FaultProxy;
  const days = [{ year: 2024, month: 6, day: 3 }, { year: 2024, month: 6, day: 17 }];
  before(async () => {
    world = await startWorld(series);
    proxy = await startFaultProxy(world.s3.endpoint, 5);
    await world.writeConfig({ timeseries_type: 'ALL' }, proxy.endpoint);
    await world.put((await Promise.all(days.map((d) => generateDay(series, d, { recordsPerFile: 10 })))).flat());
  });
  after(async () => {
    await proxy?.stop();
    await world?.stop();
  });

  for (const command of ['download', 'run'] as const)
    it(`${command}: a month, two days with data, is listed one LIST a day, several at once, the days in order`, async () => {
      const r = await cliThrough(world, proxy, 60, [command, '--from', '2024-06-01', '--to', '2024-06-30']);
      // the day listings (not the one-key access check at start)
      const coldLists = (path: string) => path.includes(`/${world.cold}`) && path.includes('list-type=2') && /startDay(=|%3D)/.test(decodeURIComponent(path));
      const listed = proxy.log.filter((x) => coldLists(x.path)).map((x) => /startDay(?:=|%3D)(\d+)/.exec(decodeURIComponent(x.path))?.[1]);
      assert.equal(listed.length, 30, 'one LIST a day');
      assert.equal(new Set(listed).size, 30);
      const peak = peakInFlight(proxy.log, coldLists);
      // at most the days ahead beyond each day in flight (run works on DAYS_IN_FLIGHT at once)
      assert.ok(peak > 1 && peak <= LISTS_AHEAD + (command === 'run' ? DAYS_IN_FLIGHT : DOWNLOAD_DAYS_IN_FLIGHT), `${peak} LISTs in flight at most`);
      // the days still come one after another, from the last back, as the original's lines did
      const reviewed = [...r.stdout.matchAll(/Reviewing --> year: 2024, month: 6, day: (\d+)/g)].map((m) => Number(m[1]));
      assert.deepEqual(reviewed, Array.from({ length: 30 }, (_, i) => 30 - i));
      if (command === 'run') {
        const got = new Set((await world.destinationRecords()).map(recordKey));
        assert.ok(recordsOf((await Promise.all(days.map((d) => generateDay(series, d, { recordsPerFile: 10 })))).flat()).every((x) => got.has(recordKey(x))));
      }
    });
});

describe('the first day starts with the checks', () => {
  const series = makeSeries({ associated: 2, disassociated: 0 }, 47);
  const day = { year: 2024, month: 6, day: 20 };
  const next = { year: 2024, month: 6, day: 19 };
  let world: World;
  let proxy: FaultProxy;
  before(async () => {
    world = await startWorld(series);
    proxy = await startFaultProxy(world.s3.endpoint, 8);
    await world.writeConfig({ timeseries_type: 'ALL' }, proxy.endpoint);
    await world.put([...(await generateDay(series, day, { recordsPerFile: 10 })), ...(await generateDay(series, next, { recordsPerFile: 10 }))]);
  });
  after(async () => {
    await proxy?.stop();
    await world?.stop();
  });

  for (const command of ['download', 'run'] as const)
    it(`${command}: the first day's listing and its ledger read leave while the buckets are checked, not a round trip after; the next day's ledger once its listing has a key`, async () => {
      // the one-key access checks answered late, as a distant region would
      const isCheck = (r: { path: string }) => r.path.includes('max-keys=1');
      proxy.slow = [{ match: isCheck, ms: 800 }];
      await cliThrough(world, proxy, 40, [command, '--from', '2024-06-18', '--to', '2024-06-20']).finally(() => (proxy.slow = []));
      const checks = proxy.log.filter(isCheck);
      const listOf = (d: string) => proxy.log.find((r) => r.path.includes(`/${world.cold}`) && r.path.includes('list-type=2') && dayOf(r.path) === d);
      const ledgerOf = (d: string) => proxy.log.find((r) => r.method === 'GET' && r.path.includes(`/${world.dest}/`) && r.path.includes('ledger.json') && dayOf(r.path) === d);
      const [list, ledger, nextList, nextLedger] = [listOf('20'), ledgerOf('20'), listOf('19'), ledgerOf('19')];
      assert.equal(checks.length, 2, 'one check of each bucket');
      assert.ok(list && ledger && nextList && nextLedger, 'both days were listed and their ledgers read');
      const checked = Math.min(...checks.map((r) => r.done!));
      assert.ok(list.at! < checked, 'the first LIST of 2024-06-20 left before a check was answered');
      assert.ok(ledger.at! < list.done!, 'the ledger of 2024-06-20 was read while its listing was in flight');
      assert.ok(nextLedger.at! >= nextList.done! && nextLedger.at! < checked, 'the ledger of 2024-06-19 was read once its listing was in, before the checks were answered');
      // the day before them, empty: one LIST, no ledger read
      assert.ok(listOf('18'), 'the empty day was listed');
      assert.ok(!ledgerOf('18'), 'no ledger read for an empty day');
      if (command === 'run') {
        const got = (await world.destinationRecords()).map(recordKey).sort();
        assert.deepEqual(got, recordsOf([...(await generateDay(series, day, { recordsPerFile: 10 })), ...(await generateDay(series, next, { recordsPerFile: 10 }))]).map(recordKey).sort());
      } else await rm(world.workDir, { recursive: true, force: true });
    });
});

describe('days at once', () => {
  const series = makeSeries({ associated: 12, disassociated: 0 }, 45);
  let world: World;
  let proxy: FaultProxy;
  // the first day worked on (the last date) is small, the next one larger, so the first is merged and uploaded while the next still downloads
  const small = { year: 2024, month: 7, day: 12 };
  const large = { year: 2024, month: 7, day: 11 };
  const third = { year: 2024, month: 7, day: 10 };
  let objects: Awaited<ReturnType<typeof generateDay>>;
  before(async () => {
    world = await startWorld(series);
    proxy = await startFaultProxy(world.s3.endpoint, 6);
    await world.writeConfig({ timeseries_type: 'ALL', concurrency: 4 }, proxy.endpoint);
    objects = [...(await generateDay(series.slice(0, 1), small, { recordsPerFile: 10 })), ...(await generateDay(series, large, { recordsPerFile: 10 })), ...(await generateDay(series.slice(0, 3), third, { recordsPerFile: 10 }))];
    await world.put(objects);
  });
  after(async () => {
    await proxy?.stop();
    await world?.stop();
  });

  const isColdGet = (r: { method: string; path: string }) => r.method === 'GET' && r.path.includes(`/${world.cold}/`) && !r.path.includes('list-type=2');
  const coldGets = (day: number) => proxy.log.filter((r) => isColdGet(r) && dayOf(r.path) === String(day));
  /**
   * Holds the first object GET of each day named for that many ms, so a day is still downloading when the
   * next one could start: without it a small day can end before the next is listed, on a fast machine.
   */
  const holdFirstGet = (msByDay: Record<number, number>) => {
    proxy.slow = Object.entries(msByDay).map(([day, ms]) => {
      let held = false;
      return { ms, match: (r: { method: string; path: string }) => !held && isColdGet(r) && dayOf(r.path) === day && (held = true) };
    });
  };

  it('download: GETs of different days are in flight at once, and each day\'s lines come together, in order', async () => {
    holdFirstGet({ 12: 1500, 11: 4000 });
    const r = await cliThrough(world, proxy, 40, ['download', '--from', '2024-07-10', '--to', '2024-07-12']).finally(() => (proxy.slow = []));
    assert.ok(coldGets(12).length > 0 && coldGets(11).length > 0 && coldGets(10).length > 0);
    assert.ok(overlapped(coldGets(12), coldGets(11)), 'GETs of 2024-07-12 and 2024-07-11 overlap');
    assert.ok(overlapped(coldGets(11), coldGets(10)), 'GETs of 2024-07-11 and 2024-07-10 overlap');
    // each day's lines, from its Reviewing line to its summary, before the next day's first line
    const lines = r.stdout.split('\n');
    const starts = [12, 11, 10].map((d) => lines.findIndex((l) => l.includes(`Reviewing --> year: 2024, month: 7, day: ${d}`)));
    const ends = ['2024-07-12', '2024-07-11', '2024-07-10'].map((d) => lines.findIndex((l) => l.startsWith(`download ${d}: done`)));
    assert.ok(starts.every((s) => s >= 0) && ends.every((e) => e >= 0), r.stdout);
    for (let i = 0; i < 3; i++) assert.ok(starts[i]! < ends[i]! && (i === 2 || ends[i]! < starts[i + 1]!), r.stdout);
    await rm(world.workDir, { recursive: true, force: true });
  });

  it('run: the next day downloads while the first is merged and uploaded; every record lands once', async () => {
    holdFirstGet({ 11: 6000 });
    await cliThrough(world, proxy, 40, ['run', '--from', '2024-07-10', '--to', '2024-07-12']).finally(() => (proxy.slow = []));
    const uploadsOfSmall = proxy.log.filter((x) => x.method === 'PUT' && x.path.includes(`/${world.dest}/`) && dayOf(x.path) === '12' && /\.avro/.test(x.path));
    assert.ok(uploadsOfSmall.length > 0, 'the small day\'s data file was put');
    assert.ok(overlapped(uploadsOfSmall, coldGets(11)), 'the upload of 2024-07-12 overlaps GETs of 2024-07-11');
    const got = (await world.destinationRecords()).map(recordKey).sort();
    assert.deepEqual(got, recordsOf(objects).map(recordKey).sort());
  });
});

describe('a day of several listing pages', () => {
  // about 1,150 objects: more than one page of 1,000 keys
  const series = makeSeries({ associated: 220, disassociated: 0 }, 46);
  const day = { year: 2024, month: 8, day: 5 };
  let world: World;
  let proxy: FaultProxy;
  let objects: Awaited<ReturnType<typeof generateDay>>;
  before(async () => {
    world = await startWorld(series);
    proxy = await startFaultProxy(world.s3.endpoint, 7);
    await world.writeConfig({ timeseries_type: 'ALL', concurrency: 8 }, proxy.endpoint);
    objects = await generateDay(series, day, { recordsPerFile: 2 });
    await world.put(objects);
  });
  after(async () => {
    await proxy?.stop();
    await world?.stop();
  });

  it('download: the first objects download while the last keys are still being listed; the manifest has every object once', async () => {
    assert.ok(objects.length > 1000, `${objects.length} objects`);
    // the listing's later pages answered slowly, as a large prefix can be
    proxy.slow = [{ match: (r) => r.path.includes('continuation-token='), ms: 1500 }];
    await cliThrough(world, proxy, 40, ['download', '--from', '2024-08-05', '--to', '2024-08-05']).finally(() => (proxy.slow = []));
    const ofDay = proxy.log.filter((r) => r.method === 'GET' && r.path.includes(`/${world.cold}`) && dayOf(r.path) === '5');
    const pages = ofDay.filter((r) => r.path.includes('list-type=2'));
    const gets = ofDay.filter((r) => !r.path.includes('list-type=2'));
    assert.ok(pages.length >= 2, `${pages.length} listing pages`);
    const lastPageDone = Math.max(...pages.map((r) => r.done!));
    assert.ok(gets.some((r) => r.at! < lastPageDone), 'a GET of the day began before its last listing page was answered');
    const manifest = await readManifest(path.join(world.workDir, 'raw', '2024-8-5'));
    assert.deepEqual(manifest?.objects.map((o) => o.key).sort(), objects.map((o) => o.key).sort());
  });
});
