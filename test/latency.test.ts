/**
 * Latency across days: the cold tier's listings of the coming days run
 * several at once, under the run's bound on requests, so a range of mostly
 * empty days costs one LIST a day in parallel, while the days (and their
 * lines) keep their order. Measured through a proxy that adds latency; the
 * test counts requests in flight, it times nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { generateDay, makeSeries, recordKey } from './support/generate-cold-tier.js';
import { recordsOf, startWorld, type World } from './support/harness.js';
import { LISTS_AHEAD } from '../src/commands/download.js';
import { DAYS_IN_FLIGHT } from '../src/commands/run.js';

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
      proxy.log.length = 0;
      proxy.latencyMs = 60;
      const r = await world.cli([command, '--from', '2024-06-01', '--to', '2024-06-30']);
      proxy.latencyMs = 0;
      assert.equal(r.code, 0, r.stderr);
      // the day listings (not the one-key access check at start)
      const coldLists = (path: string) => path.includes(`/${world.cold}`) && path.includes('list-type=2') && /startDay(=|%3D)/.test(decodeURIComponent(path));
      const listed = proxy.log.filter((x) => coldLists(x.path)).map((x) => /startDay(?:=|%3D)(\d+)/.exec(decodeURIComponent(x.path))?.[1]);
      assert.equal(listed.length, 30, 'one LIST a day');
      assert.equal(new Set(listed).size, 30);
      const peak = peakInFlight(proxy.log, coldLists);
      // at most the days ahead beyond each day in flight (run works on DAYS_IN_FLIGHT at once)
      assert.ok(peak > 1 && peak <= LISTS_AHEAD + (command === 'run' ? DAYS_IN_FLIGHT : 1), `${peak} LISTs in flight at most`);
      // the days still come one after another, from the last back, as the original's lines did
      const reviewed = [...r.stdout.matchAll(/Reviewing --> year: 2024, month: 6, day: (\d+)/g)].map((m) => Number(m[1]));
      assert.deepEqual(reviewed, Array.from({ length: 30 }, (_, i) => 30 - i));
      if (command === 'run') {
        const got = new Set((await world.destinationRecords()).map(recordKey));
        assert.ok(recordsOf((await Promise.all(days.map((d) => generateDay(series, d, { recordsPerFile: 10 })))).flat()).every((x) => got.has(recordKey(x))));
      }
    });
});
