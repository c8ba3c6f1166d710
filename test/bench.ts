/**
 * `npm run bench -- --series 1200 --records 4000 --days 1`: generates a cold
 * tier with the project's generator, starts a loopback S3 server, runs each
 * stage of the built CLI as a user would, and prints per stage: wall seconds,
 * records/s, MB/s, peak RSS, and the ratios to a byte-copy floor (cat of the
 * same files into one file) and to rclone (same number of parallel transfers),
 * all measured in the same run on the same data. Download (with rclone) runs
 * `--repeat` times, cat and merge (quick) at least 7 times after one round not
 * counted, interleaved, and the medians are compared: a shared machine's noise
 * moves single runs by a third.
 * Each timed step starts after a `sync`, so none pays for writing back what the
 * step before it wrote. With --run, also `run` over every day into a bucket
 * of its own (its peak RSS with several days in flight; `--run-format parquet`
 * for Parquet days); --avro-only skips
 * the Parquet merges and queries.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Day } from '../src/partition/day.js';
import { dayFolderName } from '../src/workdir/layout.js';
import { makeSeries } from './support/generate-cold-tier.js';
import { ensureRclone, measure, median, putColdTier, runs, seconds, setAside, type Measure } from './support/bench-tools.js';
import { CLI, startWorld } from './support/harness.js';

const { values } = parseArgs({
  options: {
    days: { type: 'string', default: '1' },
    series: { type: 'string', default: '1200' },
    records: { type: 'string', default: '4000' },
    concurrency: { type: 'string', default: '16' },
    repeat: { type: 'string', default: '3' },
    'latency-ms': { type: 'string' },
    'range-years': { type: 'string' },
    startup: { type: 'boolean', default: false },
    run: { type: 'boolean', default: false },
    'run-format': { type: 'string', default: 'avro' },
    'avro-only': { type: 'boolean', default: false },
  },
});
if (values.startup) {
  // a small day's merge against a bare Node copy, and the commands' whole-process times with nothing to do (bench-startup.ts)
  const { benchStartup } = await import('./bench-startup.js');
  await benchStartup({
    series: process.argv.includes('--series') ? Number(values.series) : 77,
    records: Number(values.records),
    repeat: Number(values.repeat),
  });
  process.exit(0);
}
if (values['latency-ms'] !== undefined) {
  // downloads through a latency proxy against rclone (bench-latency.ts); a smaller day by default: there the objects, not the bytes, set the time
  const { benchLatency } = await import('./bench-latency.js');
  await benchLatency({
    latencyMs: Number(values['latency-ms']),
    days: Number(values.days),
    series: Number(values.series),
    records: process.argv.includes('--records') ? Number(values.records) : 400,
    concurrencies: values.concurrency.split(',').map(Number),
    repeat: process.argv.includes('--repeat') ? Number(values.repeat) : 1,
    rangeYears: values['range-years'] !== undefined ? Number(values['range-years']) : undefined,
  });
  process.exit(0);
}
const repeat = Math.max(1, Number(values.repeat));
const days = Number(values.days);
const seriesCount = Number(values.series);
const recordsPerFile = Number(values.records);
const concurrency = Number(values.concurrency.split(',')[0]);

/**
 * What three queries must read of a Parquet file: the column chunks they
 * use, of the row groups whose footer statistics can match (as an engine
 * skips the rest), and DuckDB's time for each on the file. An Avro file is
 * read whole by any query.
 */
async function queryCosts(file: string, seriesId: string, day: Day): Promise<{ name: string; bytes: number; ms: number }[]> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const db = await (await DuckDBInstance.create(':memory:')).connect();
  const meta = (await db.runAndReadAll(`select row_group_id, path_in_schema, stats_min_value, stats_max_value, total_compressed_size from parquet_metadata('${file}')`)).getRowObjects() as {
    row_group_id: bigint;
    path_in_schema: string;
    stats_min_value: string | null;
    stats_max_value: string | null;
    total_compressed_size: bigint;
  }[];
  const start = Date.UTC(day.year, day.month - 1, day.day) / 1000 + 12 * 3600;
  const groupsWhere = (column: string, keep: (min: string, max: string) => boolean) =>
    new Set(meta.filter((m) => m.path_in_schema === column && keep(m.stats_min_value ?? '', m.stats_max_value ?? '')).map((m) => m.row_group_id));
  const bytesOf = (groups: Set<bigint>, columns?: string[]) =>
    meta.filter((m) => groups.has(m.row_group_id) && (!columns || columns.includes(m.path_in_schema))).reduce((n, m) => n + Number(m.total_compressed_size), 0);
  const all = new Set(meta.map((m) => m.row_group_id));
  const cases = [
    { name: 'one series for the day (every column)', sql: `select * from '${file}' where seriesId = '${seriesId}'`, bytes: bytesOf(groupsWhere('seriesId', (min, max) => min <= seriesId && seriesId <= max)) },
    {
      name: 'every series for one hour (every column)',
      sql: `select * from '${file}' where timeInSeconds between ${start} and ${start + 3599}`,
      bytes: bytesOf(groupsWhere('timeInSeconds', (min, max) => Number(min) <= start + 3599 && Number(max) >= start)),
    },
    { name: 'average doubleValue per series for the day', sql: `select seriesId, avg(doubleValue) from '${file}' group by seriesId`, bytes: bytesOf(all, ['seriesId', 'doubleValue']) },
  ];
  const out = [];
  for (const c of cases) {
    const t0 = process.hrtime.bigint();
    await db.runAndReadAll(c.sql);
    out.push({ name: c.name, bytes: c.bytes, ms: Number(process.hrtime.bigint() - t0) / 1e6 });
  }
  db.closeSync();
  return out;
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
// the downloads' folders are moved here, not deleted, and go with the world (see setAside)
const trash = path.join(world.dir, 'set-aside');
try {
  const dayList: Day[] = Array.from({ length: days }, (_, i) => ({ year: 2024, month: 5, day: 1 + i }));
  const { objects, records, bytes } = await putColdTier(world, series, dayList, recordsPerFile, concurrency);
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

  const rcloneAvailable = ensureRclone();
  const rcloneEnv = {
    RCLONE_CONFIG_SRC_TYPE: 's3',
    RCLONE_CONFIG_SRC_PROVIDER: 'Other',
    RCLONE_CONFIG_SRC_ENDPOINT: world.s3.endpoint,
    RCLONE_CONFIG_SRC_ACCESS_KEY_ID: world.s3.accessKeyId,
    RCLONE_CONFIG_SRC_SECRET_ACCESS_KEY: world.s3.secretAccessKey,
    RCLONE_CONFIG_SRC_FORCE_PATH_STYLE: 'true',
  };
  const downloads: Measure[] = [];
  const rclones: Measure[] = [];
  for (let i = 0; i < repeat; i++) {
    await setAside(path.join(world.workDir, 'raw'), trash);
    const download = await cli('download');
    check('download', download);
    downloads.push(download);
    if (!rcloneAvailable) continue;
    const target = await mkdtemp(path.join(os.tmpdir(), 'bench-rclone-'));
    // --fast-list: one recursive listing (s3rver's delimiter listing hides folders with '=' from rclone)
    const rclone = await measure('rclone', ['copy', '--fast-list', `src:${world.cold}/raw/`, target, '--transfers', String(concurrency), '--checkers', String(concurrency)], rcloneEnv, world.dir);
    check('rclone', rclone);
    const copied = Number(execFileSync('sh', ['-c', `find '${target}' -type f | wc -l`]).toString().trim());
    if (copied !== objects) throw new Error(`rclone copied ${copied} of ${objects} objects: ${rclone.stderr}`);
    rclones.push(rclone);
    await setAside(target, trash);
  }
  const download = median(downloads);
  const rclone = rclones.length ? median(rclones) : undefined;
  const rcloneLine = rclone ? `rclone copy --transfers ${concurrency}: ${seconds(rclone)}` : 'rclone: not available (apt-get install rclone), column skipped';
  results.push({ stage: 'download', m: download, ratio: rclone ? `${(rclone.seconds / download.seconds).toFixed(2)} x rclone speed` : 'n/a' });

  // The byte-copy floor: cat every downloaded file of the run into one file.
  const raw = await Promise.all(dayList.map((d) => dirBytes(path.join(world.workDir, 'raw', dayFolderName(d)))));
  const files = raw.flatMap((r) => r.files);
  const catOut = path.join(world.dir, 'cat.out');
  const byteCopy = () =>
    new Promise<Measure>((resolve) => {
      execFileSync('sync');
      const t0 = process.hrtime.bigint();
      const child = spawn('sh', ['-c', `xargs -0 cat > '${catOut}'`], { stdio: ['pipe', 'ignore', 'inherit'] });
      child.stdin.end(files.join('\0'));
      child.on('close', (code) => resolve({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, peakRssMb: 0, code, stderr: '' }));
    });
  const cats: Measure[] = [];
  const merges: Measure[] = [];
  // Neither cat nor merge uses the loopback server: it is stopped meanwhile, as it would not run beside
  // a real merge (beside it, some merges ran 1.5-2 x slower in the kernel; see README "Performance").
  await world.s3.pause();
  const copyRepeat = Math.max(7, repeat);
  // round 0 is not counted: it brings the files into the page cache (and this VM's memory into use) for both
  for (let i = 0; i <= copyRepeat; i++) {
    await rm(path.join(world.workDir, 'merged'), { recursive: true, force: true });
    const cat = await byteCopy();
    await rm(catOut, { force: true });
    const merge = await cli('merge');
    check('merge', merge);
    if (i === 0) continue;
    cats.push(cat);
    merges.push(merge);
  }
  const cat = median(cats);
  const vsCat = (m: Measure) => `${(cat.seconds / m.seconds).toFixed(2)} x cat speed`;
  results.push({ stage: 'merge', m: median(merges), ratio: vsCat(median(merges)) });
  await rm(path.join(world.workDir, 'merged'), { recursive: true, force: true });
  const checked = await cli('merge', '--crc-check');
  check('merge --crc-check', checked);
  results.push({ stage: 'merge --crc-check (once)', m: checked, ratio: vsCat(checked) });
  const parquet: { compression: string; m: Measure; bytes: number; file: string }[] = [];
  let avroBytes = 0;
  let queries: Awaited<ReturnType<typeof queryCosts>> = [];
  if (!values['avro-only']) {
    // Parquet: the same day merged to Parquet, its size against the Avro file, and what three queries must read of each
    await rm(path.join(world.workDir, 'merged'), { recursive: true, force: true });
    check('merge', await cli('merge'));
    // day 1's merged Avro file, against which its Parquet files are measured
    avroBytes = (await dirBytes(path.join(world.workDir, 'merged', dayFolderName(dayList[0]!)))).bytes;
    for (const compression of ['snappy', 'zstd']) {
      await world.writeConfig({ timeseries_type: 'ALL', date_range: { date_start: from, date_end: to }, concurrency, output: { compression } });
      await rm(path.join(world.workDir, 'merged'), { recursive: true, force: true });
      const m = await cli('merge', '--output-format', 'parquet');
      check('merge --output-format parquet', m);
      const dir = path.join(world.workDir, 'merged', dayFolderName(dayList[0]!));
      const file = path.join(world.dir, `bench-${compression}.parquet`);
      await rename(path.join(dir, (await readdir(dir)).find((f) => f.endsWith('.parquet'))!), file);
      parquet.push({ compression, m, bytes: (await stat(file)).size, file });
      results.push({ stage: `merge to Parquet, ${compression} (once)`, m, ratio: `${(m.seconds / median(merges).seconds).toFixed(1)} x the Avro merge's time` });
    }
    await world.writeConfig({ timeseries_type: 'ALL', date_range: { date_start: from, date_end: to }, concurrency });
    await rm(path.join(world.workDir, 'merged'), { recursive: true, force: true });
    check('merge', await cli('merge'));
    queries = await queryCosts(parquet[0]!.file, series[0]!.id, dayList[0]!);
  }

  await world.s3.resume();
  const upload = await cli('upload');
  check('upload', upload);
  results.push({ stage: 'upload (once)', m: upload });
  if (values.run) {
    // the whole job over every day, several days in flight, into a bucket of its own
    const fresh = await world.s3.createBucket('run');
    await rm(world.workDir, { recursive: true, force: true });
    await world.writeConfig({ timeseries_type: 'ALL', date_range: { date_start: from, date_end: to }, concurrency, s3_buckets: { cold_tier_bucket_name: world.cold, repartitioned_bucket_name: fresh } });
    const run = await cli('run', '--output-format', values['run-format']);
    check('run', run);
    results.push({ stage: `run over the ${days} day(s), ${values['run-format']} (once)`, m: run });
  }

  console.log(`\nsitewise-repartition bench: ${days} day(s), ${seriesCount} series, ${objects} objects, ${records} records, ${mb.toFixed(1)} MB of snappy Avro`);
  console.log(`machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, S3: ${world.s3.kind} on loopback, concurrency ${concurrency}\n`);
  console.log('| stage | wall s | records/s | MB/s | peak RSS MB | vs. floor |');
  console.log('|---|---:|---:|---:|---:|---|');
  for (const r of results) {
    console.log(`| ${r.stage} | ${r.m.seconds.toFixed(2)} | ${Math.round(records / r.m.seconds)} | ${(mb / r.m.seconds).toFixed(1)} | ${r.m.peakRssMb.toFixed(0)} | ${r.ratio ?? ''} |`);
  }
  console.log(`\nfloors: cat of the ${files.length} downloaded files into one file: ${seconds(cat)} (${(mb / cat.seconds).toFixed(1)} MB/s); ${rcloneLine}`);
  console.log(`medians of interleaved runs (download ${repeat}, cat and merge ${copyRepeat}); each run: download ${runs(download)}, merge ${runs(median(merges))}`);
  if (parquet.length > 0) {
    console.log(`\nday 1 in Parquet against its Avro file (${(avroBytes / 2 ** 20).toFixed(1)} MB): ${parquet.map((p) => `${p.compression} ${(p.bytes / 2 ** 20).toFixed(1)} MB (${Math.round((100 * p.bytes) / avroBytes)} %)`).join(', ')}`);
    console.log('\n| query (day 1) | Avro bytes read | Parquet (snappy) bytes read | share of the Avro bytes | DuckDB on the Parquet file |');
    console.log('|---|---:|---:|---:|---:|');
    for (const q of queries) {
      console.log(`| ${q.name} | ${(avroBytes / 2 ** 20).toFixed(1)} MB | ${(q.bytes / 2 ** 20).toFixed(2)} MB | ${((100 * q.bytes) / avroBytes).toFixed(2)} % | ${q.ms.toFixed(0)} ms |`);
    }
  }
} finally {
  await world.stop();
}
