/**
 * `npm run bench -- --latency-ms 20 [--concurrency 16,32,64] [--days D]
 * [--range-years Y]`: download through a proxy that adds that latency to
 * every request, as a distant region does, against rclone through the same
 * proxy (at each of our concurrencies, and at its own default of 4
 * transfers). Prints per-day and whole-range seconds, the latency floor
 * (its requests x latency / concurrency, plus one day's LIST pages, ledger
 * and index reads one after another), the ratio to rclone and peak RSS;
 * then, with --range-years, a download of the same days inside a range of
 * that many years (most days empty); then a `run` over the days against the
 * sum of its days' floors. The day is smaller than the main bench's by
 * default (400 records a file): at these latencies the number of objects,
 * not their bytes, sets the time.
 */
import { mkdtemp, readdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Day } from '../src/partition/day.js';
import { dayFolderName } from '../src/workdir/layout.js';
import { ensureRclone, measure, median, putColdTier, setAside, type Measure } from './support/bench-tools.js';
import { startFaultProxy } from './support/fault-proxy.js';
import { makeSeries } from './support/generate-cold-tier.js';
import { CLI, startWorld } from './support/harness.js';

export async function benchLatency(options: { latencyMs: number; days: number; series: number; records: number; concurrencies: number[]; repeat: number; rangeYears?: number }): Promise<void> {
  const { latencyMs, days } = options;
  const series = makeSeries({ associated: Math.round(options.series * 0.9), disassociated: options.series - Math.round(options.series * 0.9) }, 1);
  const world = await startWorld(series);
  const proxy = await startFaultProxy(world.s3.endpoint, 1);
  // what each measured run wrote is moved here, not deleted, and goes with the world (see setAside)
  const trash = path.join(world.dir, 'set-aside');
  try {
    const dayList: Day[] = Array.from({ length: days }, (_, i) => ({ year: 2024, month: 5, day: 1 + i }));
    const { objects, bytes } = await putColdTier(world, series, dayList, options.records, 16);
    const from = '2024-05-01';
    const to = `2024-05-${String(days).padStart(2, '0')}`;
    proxy.latencyMs = latencyMs;
    const rcloneAvailable = ensureRclone();
    const rcloneEnv = {
      RCLONE_CONFIG_SRC_TYPE: 's3',
      RCLONE_CONFIG_SRC_PROVIDER: 'Other',
      RCLONE_CONFIG_SRC_ENDPOINT: proxy.endpoint,
      RCLONE_CONFIG_SRC_ACCESS_KEY_ID: world.s3.accessKeyId,
      RCLONE_CONFIG_SRC_SECRET_ACCESS_KEY: world.s3.secretAccessKey,
      RCLONE_CONFIG_SRC_FORCE_PATH_STYLE: 'true',
    };
    const rclone = async (transfers?: number): Promise<Measure> => {
      const target = await mkdtemp(path.join(os.tmpdir(), 'bench-rclone-'));
      const flags = transfers ? ['--transfers', String(transfers), '--checkers', String(transfers)] : [];
      const m = await measure('rclone', ['copy', '--fast-list', `src:${world.cold}/raw/`, target, ...flags], rcloneEnv, world.dir);
      await setAside(target, trash);
      if (m.code !== 0) throw new Error(`rclone exited ${m.code}: ${m.stderr}`);
      return m;
    };
    const rows: string[] = [];
    for (const c of options.concurrencies) {
      await world.writeConfig({ timeseries_type: 'ALL', date_range: { date_start: from, date_end: to }, concurrency: c }, proxy.endpoint);
      const ours: Measure[] = [];
      const theirs: Measure[] = [];
      let perDay = '';
      let gets = 0;
      let lists = 0;
      for (let i = 0; i < options.repeat; i++) {
        await setAside(world.workDir, trash);
        proxy.log.length = 0;
        const m = await measure(CLI, ['download', '--config', world.configFile, '--log-format', 'json'], world.env, world.dir);
        if (m.code !== 0) throw new Error(`download exited ${m.code}: ${m.stderr}`);
        ours.push(m);
        if (i === 0) {
          perDay = await perDaySeconds(world.workDir, dayList);
          gets = proxy.log.filter((r) => r.method === 'GET' && !r.path.includes('list-type=2') && r.path.includes(`/${world.cold}/`)).length;
          lists = proxy.log.filter((r) => r.path.includes('list-type=2')).length;
        }
        if (rcloneAvailable) theirs.push(await rclone(c));
      }
      // what it costs at least: every request shares c connections, and one day's LIST pages, ledger and index reads wait on each other
      const floor = (((gets + lists + 2 * days) / c + Math.ceil(lists / days) + 2) * latencyMs) / 1000;
      const d = median(ours);
      const r = theirs.length ? median(theirs) : undefined;
      rows.push(`| ${c} | ${d.seconds.toFixed(2)} | ${perDay} | ${floor.toFixed(2)} | ${times(d.seconds, floor)} | ${r ? `${r.seconds.toFixed(2)} (ours: ${(d.seconds / r.seconds).toFixed(2)} x its time)` : 'n/a'} | ${d.peakRssMb} |`);
    }
    const rcloneDefault = rcloneAvailable ? await rclone() : undefined;
    const c = options.concurrencies[0]!;
    // the same days inside a range of years, most of it empty: a LIST a day, several at once
    let longRange = '';
    if (options.rangeYears) {
      const start = `${2024 - options.rangeYears}-05-01`;
      await world.writeConfig({ timeseries_type: 'ALL', date_range: { date_start: start, date_end: to }, concurrency: c }, proxy.endpoint);
      await setAside(world.workDir, trash);
      proxy.log.length = 0;
      const m = await measure(CLI, ['download', '--config', world.configFile, '--quiet'], world.env, world.dir);
      if (m.code !== 0) throw new Error(`download exited ${m.code}: ${m.stderr}`);
      const lists = proxy.log.filter((r) => r.path.includes('list-type=2')).length;
      longRange = `download from ${start} to ${to} (${days} days with data), concurrency ${c}: ${m.seconds.toFixed(2)} s, ${lists} LISTs, peak RSS ${m.peakRssMb} MB`;
    }
    // run: download, merge and upload of every day, the days overlapping, against the sum of its days' floors
    await world.writeConfig({ timeseries_type: 'ALL', date_range: { date_start: from, date_end: to }, concurrency: c }, proxy.endpoint);
    await setAside(world.workDir, trash);
    proxy.log.length = 0;
    const run = await measure(CLI, ['run', '--config', world.configFile, '--quiet'], world.env, world.dir);
    if (run.code !== 0) throw new Error(`run exited ${run.code}: ${run.stderr}`);
    const floors = dayFloors(proxy.log, world.cold, c, latencyMs);
    const sumOfFloors = floors.reduce((n, f) => n + f, 0);

    console.log(`\nsitewise-repartition download at ${latencyMs} ms a request: ${days} day(s), ${objects} objects, ${(bytes / 2 ** 20).toFixed(1)} MB, through a latency proxy to ${world.s3.kind} on loopback\n`);
    console.log('| concurrency | whole range s | per day s | latency floor s | vs. floor | rclone at the same --transfers, s | peak RSS MB |');
    console.log('|---:|---:|---|---:|---:|---|---:|');
    for (const row of rows) console.log(row);
    if (rcloneDefault) console.log(`\nrclone at its default (--transfers 4): ${rcloneDefault.seconds.toFixed(2)} s`);
    if (longRange) console.log(`\n${longRange}`);
    console.log(`\nrun over the ${days} day(s), concurrency ${c}: ${run.seconds.toFixed(2)} s; the sum of its days' floors ${sumOfFloors.toFixed(2)} s (each day's GETs x latency / concurrency, plus its other requests one after another); ${times(run.seconds, sumOfFloors)} that sum; peak RSS ${run.peakRssMb} MB`);
  } finally {
    await proxy.stop();
    await world.stop();
  }
}

/** Seconds from each day folder's first file to its manifest (written last), as the per-day download time. */
async function perDaySeconds(workDir: string, dayList: Day[]): Promise<string> {
  const out: string[] = [];
  for (const d of dayList) {
    const dir = path.join(workDir, 'raw', dayFolderName(d));
    const names = await readdir(dir).catch(() => [] as string[]);
    const times = await Promise.all(names.map(async (n) => (await stat(path.join(dir, n))).mtimeMs));
    if (times.length > 1) out.push(((Math.max(...times) - Math.min(...times)) / 1000).toFixed(2));
  }
  return out.join(', ');
}

/** A ratio to a floor, or '-' where there is none (no latency added). */
const times = (seconds: number, floor: number) => (floor > 0 ? `${(seconds / floor).toFixed(2)} x` : '-');

/**
 * Each day's latency floor in a run, from the requests the proxy saw: its
 * cold-tier GETs share `c` connections; its other requests (LIST pages,
 * lease, ledger and index reads and writes, the data file's PUTs, its
 * parts 4 at a time) wait on each other.
 */
function dayFloors(log: { method: string; path: string }[], cold: string, c: number, latencyMs: number): number[] {
  const perDay = new Map<string, { gets: number; others: number }>();
  for (const r of log) {
    const p = decodeURIComponent(r.path);
    const day = /startYear=(\d+)\/startMonth=(\d+)\/startDay=(\d+)/.exec(p)?.slice(1).join('-');
    if (!day) continue;
    const d = perDay.get(day) ?? { gets: 0, others: 0 };
    if (r.method === 'GET' && p.includes(`/${cold}/`) && !p.includes('list-type=2')) d.gets++;
    // an upload's parts go 4 at a time
    else d.others += p.includes('partNumber=') ? 1 / 4 : 1;
    perDay.set(day, d);
  }
  return [...perDay.values()].map((d) => ((d.gets / c + d.others) * latencyMs) / 1000);
}
