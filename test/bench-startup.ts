/**
 * `npm run bench -- --startup`: what a small day costs beyond its bytes.
 * Generates one small day (77 series: about 400 objects, 33 MB), downloads
 * it, then times, interleaved and after one round not counted, the merge
 * against a bare Node process that block-copies the same files into one
 * Avro file (the baseline: Node's own start-up plus the least work a merge
 * does), and the whole-process times
 * of the commands with nothing to do: download, merge, upload and run once
 * the day is merged and committed.
 */
import { writeFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Day } from '../src/partition/day.js';
import { dayFolderName } from '../src/workdir/layout.js';
import { measure, median, putColdTier, runs, type Measure } from './support/bench-tools.js';
import { makeSeries } from './support/generate-cold-tier.js';
import { CLI, startWorld } from './support/harness.js';

/**
 * The baseline: a bare Node block copy of the day. Reads each file whole,
 * keeps the first file's header, and appends every file's blocks with that
 * header's sync marker (what any merge of these files into one Avro file
 * must do at least), without checks, config, manifest or CLI.
 */
const BARE_COPY = `import { openSync, readdirSync, readFileSync, writeSync, closeSync } from 'node:fs';
const [dir, out] = process.argv.slice(2);
const fd = openSync(out, 'w');
let sync;
for (const name of readdirSync(dir).filter((n) => n.endsWith('.avro')).sort()) {
  const b = readFileSync(dir + '/' + name);
  let p = 4;
  const long = () => { let n = 0, shift = 0, x; do { x = b[p++]; n += (x & 0x7f) * 2 ** shift; shift += 7; } while (x & 0x80); return n % 2 ? -(n + 1) / 2 : n / 2; };
  const skip = () => { const n = long(); p += n; };
  for (let n = long(); n !== 0; n = long()) {
    if (n < 0) long();
    for (let i = 0; i < Math.abs(n); i++) { skip(); skip(); }
  }
  const headerEnd = p + 16;
  if (!sync) { sync = b.subarray(p, headerEnd); writeSync(fd, b.subarray(0, headerEnd)); }
  p = headerEnd;
  const parts = [];
  while (p < b.length) {
    const start = p;
    long();
    skip();
    parts.push(b.subarray(start, p), sync);
    p += 16;
  }
  writeSync(fd, Buffer.concat(parts));
}
closeSync(fd);
`;

export async function benchStartup(options: { series: number; records: number; repeat: number }): Promise<void> {
  const series = makeSeries({ associated: options.series, disassociated: 0 }, 3);
  const world = await startWorld(series);
  try {
    const day: Day = { year: 2024, month: 5, day: 1 };
    const { objects, bytes } = await putColdTier(world, series, [day], options.records, 16);
    await world.writeConfig({ timeseries_type: 'ALL', date_range: { date_start: '2024-05-01', date_end: '2024-05-01' } });
    const cli = (...args: string[]) => measure(CLI, [...args, '--config', world.configFile, '--quiet'], world.env, world.dir);
    const ok = (what: string, m: Measure) => {
      if (m.code !== 0) throw new Error(`${what} exited ${m.code}: ${m.stderr}`);
      return m;
    };
    ok('download', await cli('download'));
    const script = path.join(world.dir, 'bare-copy.mjs');
    await writeFile(script, BARE_COPY);
    const rawDir = path.join(world.workDir, 'raw', dayFolderName(day));
    const copyOut = path.join(world.dir, 'copy.out');
    const copies: Measure[] = [];
    const merges: Measure[] = [];
    const rounds = Math.max(7, options.repeat);
    for (let i = 0; i <= rounds; i++) {
      const copy = ok('bare copy', await measure(process.execPath, [script, rawDir, copyOut], {}, world.dir));
      await rm(copyOut, { force: true });
      await rm(path.join(world.workDir, 'merged'), { recursive: true, force: true });
      const merge = ok('merge', await cli('merge'));
      if (i === 0) continue;
      copies.push(copy);
      merges.push(merge);
    }
    ok('upload', await cli('upload'));
    // with nothing to do: the day is committed, the work dir empty
    const idle: { name: string; m: Measure }[] = [];
    for (const command of ['download', 'merge', 'upload', 'run']) {
      const ms: Measure[] = [];
      for (let i = 0; i < 5; i++) ms.push(ok(command, await cli(command)));
      idle.push({ name: command, m: median(ms) });
    }
    const copy = median(copies);
    const merge = median(merges);
    console.log(`\nsitewise-repartition start-up: one day of ${options.series} series, ${objects} objects, ${(bytes / 2 ** 20).toFixed(1)} MB, ${world.s3.kind} on loopback\n`);
    console.log('| step | median s | runs | vs. the bare copy |');
    console.log('|---|---:|---|---:|');
    console.log(`| bare Node block copy of the day's files (baseline) | ${copy.seconds.toFixed(3)} | ${runs(copy)} | 1.00 x |`);
    console.log(`| merge | ${merge.seconds.toFixed(3)} | ${runs(merge)} | ${(merge.seconds / copy.seconds).toFixed(2)} x |`);
    console.log('\n| nothing to do (day merged and committed) | median s | runs | peak RSS MB |');
    console.log('|---|---:|---|---:|');
    for (const { name, m } of idle) console.log(`| ${name} | ${m.seconds.toFixed(3)} | ${runs(m)} | ${m.peakRssMb} |`);
  } finally {
    await world.stop();
  }
}
