/**
 * `npm run bench:shards -- --days 8 --series 300`: the scale simulation. One
 * generated multi-day cold tier on a loopback S3 server; for N = 1, 2 and 4,
 * N processes of the built CLI run `run --shard i/N` at once over the whole
 * range, each with its own work dir (as N machines would), into an empty
 * destination. Prints the wall time until the last one ends, for each N, and
 * checks that every day landed once. `--latency-ms N` puts a proxy that
 * holds every request N ms between the CLI and the server, as a region's S3
 * does. On loopback with no latency one process already keeps both cores of
 * a 2-core machine busy (with the server), so shards gain nothing there;
 * with latency, each process waits on S3 and shards add up, until the CPU
 * (or the concurrency) is the limit.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createLimiter } from '../src/shared/limit.js';
import { generateObjects, makeSeries } from './support/generate-cold-tier.js';
import { startFaultProxy } from './support/fault-proxy.js';
import { CLI, startWorld } from './support/harness.js';

const { values } = parseArgs({
  options: {
    days: { type: 'string', default: '8' },
    series: { type: 'string', default: '300' },
    records: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '16' },
    'latency-ms': { type: 'string', default: '0' },
  },
});
const latencyMs = Number(values['latency-ms']);
const days = Number(values.days);
const concurrency = Number(values.concurrency);
const series = makeSeries({ associated: Number(values.series), disassociated: 0 }, 5);
const world = await startWorld(series);
// with --latency-ms, every request of the CLI goes through a proxy that holds it that long, as a region's S3 does
const proxy = latencyMs > 0 ? await startFaultProxy(world.s3.endpoint) : undefined;
if (proxy) proxy.latencyMs = latencyMs;

function runShards(n: number, dest: string, configFile: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  const runs = Array.from({ length: n }, (_, i) => {
    const args = ['run', '--config', configFile, '--shard', `${i}/${n}`, '--work-dir', path.join(world.dir, `work-${n}-${i}`), '--quiet'];
    return new Promise<void>((resolve, reject) => {
      const child = spawn(CLI, args, { cwd: world.dir, env: { ...process.env, ...world.env }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`shard ${i}/${n} into ${dest} exited ${code}: ${stderr}`))));
    });
  });
  return Promise.all(runs).then(() => Number(process.hrtime.bigint() - t0) / 1e9);
}

try {
  console.error(`generating ${days} days x ${series.length} series x 4 exports, ${values.records} records per GOOD file...`);
  const limit = createLimiter(concurrency);
  let objects = 0;
  let bytes = 0;
  const puts: Promise<unknown>[] = [];
  for (let d = 1; d <= days; d++) {
    for await (const o of generateObjects(series, { year: 2024, month: 5, day: d }, { recordsPerFile: Number(values.records) })) {
      objects++;
      bytes += o.body.length;
      puts.push(limit(() => world.s3.client.send(new PutObjectCommand({ Bucket: world.cold, Key: o.key, Body: o.body }))));
    }
  }
  await Promise.all(puts);
  console.log(`\nscale simulation: ${days} days, ${objects} objects, ${(bytes / 2 ** 20).toFixed(1)} MB, S3: ${world.s3.kind} on loopback${proxy ? `, ${latencyMs} ms added per request` : ''}, ${os.cpus().length} cores, concurrency ${concurrency} per process\n`);
  console.log('| shard processes | wall s | days/s | vs. 1 process |');
  console.log('|---:|---:|---:|---:|');
  let one = 0;
  for (const n of [1, 2, 4]) {
    const dest = await world.s3.createBucket(`dest${n}`);
    await world.writeConfig({
      timeseries_type: 'ALL',
      s3_buckets: { cold_tier_bucket_name: world.cold, repartitioned_bucket_name: dest },
      date_range: { date_start: '2024-05-01', date_end: `2024-05-${String(days).padStart(2, '0')}` },
      concurrency,
    }, proxy?.endpoint);
    const seconds = await runShards(n, dest, world.configFile);
    const landed = (await world.list(dest, 'consolidated/')).length;
    if (landed !== days) throw new Error(`${n} shards: ${landed} data files for ${days} days`);
    one ||= seconds;
    console.log(`| ${n} | ${seconds.toFixed(2)} | ${(days / seconds).toFixed(2)} | ${(one / seconds).toFixed(2)} x |`);
  }
} finally {
  await proxy?.stop();
  await world.stop();
}
