/**
 * `npm run bench -- --series 1200 --records 2000 --days 1`: generates a cold
 * tier with the project's generator, starts a loopback S3 server, runs each
 * stage of the built CLI as a user would, and prints per stage: wall seconds,
 * records/s, MB/s, peak RSS, and the ratios to a byte-copy floor (cat of the
 * same files into one file) and to rclone (same number of parallel transfers),
 * all measured in the same run on the same data.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createLimiter } from '../src/limit.js';
import { dayFolderName, type Day } from '../src/partition/day.js';
import { generateObjects, makeSeries } from './support/generate-cold-tier.js';
import { CLI, startWorld } from './support/harness.js';

const { values } = parseArgs({
  options: {
    days: { type: 'string', default: '1' },
    series: { type: 'string', default: '1200' },
    records: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '16' },
  },
});
const days = Number(values.days);
const seriesCount = Number(values.series);
const recordsPerFile = Number(values.records);
const concurrency = Number(values.concurrency);

interface Measure {
  seconds: number;
  peakRssMb: number;
  code: number | null;
  stderr: string;
}

/** Runs a command, polling its peak RSS (VmHWM) from /proc while it runs. */
function measure(cmd: string, args: string[], env: Record<string, string>, cwd: string): Promise<Measure> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    // rclone fails on AWS_CA_BUNDLE with a plain-http endpoint; nothing here uses TLS.
    const { AWS_CA_BUNDLE: _ca, ...inherited } = process.env;
    const child = spawn(cmd, args, { cwd, env: { ...inherited, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    let peak = 0;
    const poll = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peak = Math.max(peak, Number(m[1]) / 1024);
      } catch {
        // exited between polls
      }
    }, 20);
    child.on('close', (code) => {
      clearInterval(poll);
      resolve({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, peakRssMb: peak, code, stderr });
    });
  });
}

function hasCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function ensureRclone(): boolean {
  if (hasCommand('rclone')) return true;
  try {
    console.error('installing rclone (apt-get) for the side-by-side download figure...');
    execFileSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rclone'], { stdio: 'ignore' });
    return hasCommand('rclone');
  } catch {
    return false;
  }
}

async function dirBytes(dir: string): Promise<{ bytes: number; files: string[] }> {
  const files = (await readdir(dir, { recursive: true })).map((f) => path.join(dir, f));
  let bytes = 0;
  const out: string[] = [];
  for (const f of files) {
    const s = await stat(f);
    if (s.isFile() && f.endsWith('.avro')) {
      bytes += s.size;
      out.push(f);
    }
  }
  return { bytes, files: out };
}

const series = makeSeries({ associated: Math.round(seriesCount * 0.9), disassociated: seriesCount - Math.round(seriesCount * 0.9) }, 1);
const world = await startWorld(series);
try {
  const dayList: Day[] = Array.from({ length: days }, (_, i) => ({ year: 2024, month: 5, day: 1 + i }));
  console.error(`generating ${days} day(s) x ${seriesCount} series x 4 exports, ${recordsPerFile} records per GOOD file...`);
  const limit = createLimiter(concurrency);
  let objects = 0;
  let records = 0;
  let bytes = 0;
  const pending = new Set<Promise<unknown>>();
  for (const d of dayList) {
    for await (const o of generateObjects(series, d, { recordsPerFile })) {
      objects++;
      records += o.records.length;
      bytes += o.body.length;
      const p = limit(() => world.s3.client.send(new PutObjectCommand({ Bucket: world.cold, Key: o.key, Body: o.body })));
      pending.add(p);
      void p.finally(() => pending.delete(p));
      if (pending.size >= concurrency * 4) await Promise.race(pending);
    }
  }
  await Promise.all(pending);
  const mb = bytes / 1024 / 1024;
  const from = `2024-05-01`;
  const to = `2024-05-${String(days).padStart(2, '0')}`;
  await world.writeConfig({ timeseries_type: 'ALL', date_range: { date_start: from, date_end: to }, concurrency });
  // the bin itself, as npx runs it (its shebang sets Node's flags)
  const cli = (stage: string, ...flags: string[]) => measure(CLI, [stage, ...flags, '--config', world.configFile, '--quiet'], world.env, world.dir);

  const results: { stage: string; m: Measure; ratio?: string }[] = [];
  const check = (stage: string, m: Measure) => {
    if (m.code !== 0) throw new Error(`${stage} exited ${m.code}: ${m.stderr}`);
  };

  const download = await cli('download');
  check('download', download);
  let rcloneLine = 'rclone: not available (apt-get install rclone), column skipped';
  let rclone: Measure | undefined;
  if (ensureRclone()) {
    const target = await mkdtemp(path.join(os.tmpdir(), 'bench-rclone-'));
    const env = {
      RCLONE_CONFIG_SRC_TYPE: 's3',
      RCLONE_CONFIG_SRC_PROVIDER: 'Other',
      RCLONE_CONFIG_SRC_ENDPOINT: world.s3.endpoint,
      RCLONE_CONFIG_SRC_ACCESS_KEY_ID: world.s3.accessKeyId,
      RCLONE_CONFIG_SRC_SECRET_ACCESS_KEY: world.s3.secretAccessKey,
      RCLONE_CONFIG_SRC_FORCE_PATH_STYLE: 'true',
    };
    // --fast-list: one recursive listing (s3rver's delimiter listing hides folders with '=' from rclone)
    rclone = await measure('rclone', ['copy', '--fast-list', `src:${world.cold}/raw/`, target, '--transfers', String(concurrency), '--checkers', String(concurrency)], env, world.dir);
    check('rclone', rclone);
    const copied = Number(execFileSync('sh', ['-c', `find '${target}' -type f | wc -l`]).toString().trim());
    if (copied !== objects) throw new Error(`rclone copied ${copied} of ${objects} objects: ${rclone.stderr}`);
    rcloneLine = `rclone copy --transfers ${concurrency}: ${rclone.seconds.toFixed(2)} s`;
    await rm(target, { recursive: true, force: true });
  }
  results.push({ stage: 'download', m: download, ratio: rclone ? `${(rclone.seconds / download.seconds).toFixed(2)} x rclone speed` : 'n/a' });

  // The byte-copy floor: cat every downloaded file of the run into one file (and the same
  // made durable with sync, as merge makes its output durable before renaming it).
  const raw = await Promise.all(dayList.map((d) => dirBytes(path.join(world.workDir, 'raw', dayFolderName(d)))));
  const files = raw.flatMap((r) => r.files);
  const catOut = path.join(world.dir, 'cat.out');
  const byteCopy = (durable: boolean) =>
    new Promise<number>((resolve) => {
      const t0 = process.hrtime.bigint();
      const child = spawn('sh', ['-c', `xargs -0 cat > '${catOut}'${durable ? ` && sync '${catOut}'` : ''}`], { stdio: ['pipe', 'ignore', 'inherit'] });
      child.stdin.end(files.join('\0'));
      child.on('close', () => resolve(Number(process.hrtime.bigint() - t0) / 1e9));
    });
  const catSeconds = await byteCopy(false);
  await rm(catOut, { force: true });
  const catSyncSeconds = await byteCopy(true);
  await rm(catOut, { force: true });
  const vsCat = (m: Measure) => `${(catSeconds / m.seconds).toFixed(2)} x cat, ${(catSyncSeconds / m.seconds).toFixed(2)} x cat+sync`;

  const fast = await cli('merge', '--no-crc-check');
  check('merge --no-crc-check', fast);
  results.push({ stage: 'merge --no-crc-check', m: fast, ratio: vsCat(fast) });
  await rm(path.join(world.workDir, 'merged'), { recursive: true, force: true });
  const merge = await cli('merge');
  check('merge', merge);
  results.push({ stage: 'merge (CRC checked)', m: merge, ratio: vsCat(merge) });
  const upload = await cli('upload');
  check('upload', upload);
  results.push({ stage: 'upload', m: upload });

  console.log(`\nsitewise-repartition bench: ${days} day(s), ${seriesCount} series, ${objects} objects, ${records} records, ${mb.toFixed(1)} MB of snappy Avro`);
  console.log(`machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, S3: ${world.s3.kind} on loopback, concurrency ${concurrency}\n`);
  console.log('| stage | wall s | records/s | MB/s | peak RSS MB | vs. floor |');
  console.log('|---|---:|---:|---:|---:|---|');
  for (const r of results) {
    console.log(`| ${r.stage} | ${r.m.seconds.toFixed(2)} | ${Math.round(records / r.m.seconds)} | ${(mb / r.m.seconds).toFixed(1)} | ${r.m.peakRssMb.toFixed(0)} | ${r.ratio ?? ''} |`);
  }
  console.log(`\nfloors: cat of the ${files.length} downloaded files into one file: ${catSeconds.toFixed(2)} s (${(mb / catSeconds).toFixed(1)} MB/s), with sync ${catSyncSeconds.toFixed(2)} s; ${rcloneLine}`);
} finally {
  await world.stop();
}
