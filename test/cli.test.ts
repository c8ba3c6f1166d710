import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { pathToFileURL } from 'node:url';
import { athenaDdl } from '../src/commands/athena-ddl.js';
import { AVRO } from '../src/output/avro-output.js';
import { resolveConfig } from '../src/config/load-config.js';
import { defaultOf, KEYS } from '../src/config/schema.js';
import { dayPrefix } from '../src/partition/day.js';
import { generateDay, makeSeries } from './support/generate-cold-tier.js';
import { CLI, startWorld, type World } from './support/harness.js';

const run = async (args: string[], cwd = os.tmpdir()) => {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], { cwd });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
};

const here = path.dirname(new URL(import.meta.url).pathname);
const golden = path.resolve(here, '../../test/golden');

describe('help, version, mistakes', () => {
  it('--help lists the commands in order with examples', async () => {
    const r = await run(['--help']);
    assert.equal(r.code, 0);
    for (const c of ['download', 'merge|repartition', 'upload', 'run', 'athena-ddl']) assert.ok(r.stdout.includes(c), c);
    assert.match(r.stdout, /Examples:\n {2}sitewise-repartition download --config config.yml --from 2023-01-01/);
  });
  for (const command of ['download', 'merge', 'repartition', 'upload', 'run', 'athena-ddl']) {
    it(`${command} --help shows options with defaults and an example`, async () => {
      const r = await run([command, '--help']);
      assert.equal(r.code, 0);
      assert.match(r.stdout.replace(/\s+/g, " "), /--config <file> config file \(default: \$SITEWISE_REPARTITION_CONFIG, else config\.yml\)/);
      assert.match(r.stdout, /Example:\n {2}sitewise-repartition /);
    });
  }
  it('takes the defaults in its help from the config schema', async () => {
    const r = await run(['run', '--help']);
    const oneLine = r.stdout.replace(/\s+/g, ' ');
    assert.ok(oneLine.includes(`overrides local_dirs.work_dir, default ${defaultOf('local_dirs.work_dir')})`), r.stdout);
    assert.ok(oneLine.includes(`parallel S3 transfers (default ${defaultOf('concurrency')})`), r.stdout);
    assert.equal(defaultOf('concurrency'), String(KEYS.find((k) => k.path === 'concurrency')!.default));
  });
  it('starts with its code cache missing or damaged, and writes a good one; each command keeps its own', async () => {
    const cache = path.join(path.dirname(CLI), 'cli.cjs.other.v8-cache');
    for (const damage of [() => writeFile(cache, 'not a V8 code cache'), () => rm(cache, { force: true })]) {
      await damage();
      const r = await run(['--version']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^\d+\.\d+\.\d+/);
      const written = await readFile(cache);
      assert.ok(written.length > 10_000 && !written.toString('latin1').startsWith('not a V8'), `cache of ${written.length} bytes`);
    }
    // and V8 takes it: a start with it writes nothing new
    const before = (await stat(cache)).mtimeMs;
    assert.equal((await run(['--version'])).code, 0);
    assert.equal((await stat(cache)).mtimeMs, before);
    // a command's first start after that writes a cache of its own, with the functions it compiled
    const mergeCache = path.join(path.dirname(CLI), 'cli.cjs.merge.v8-cache');
    await rm(mergeCache, { force: true });
    assert.equal((await run(['merge', '--help'])).code, 0);
    assert.ok((await stat(mergeCache)).size > 10_000);
    assert.equal((await stat(cache)).mtimeMs, before);
  });

  it('--version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(path.resolve(here, '../../package.json'), 'utf8')) as { version: string };
    assert.equal((await run(['--version'])).stdout.trim(), pkg.version);
  });
  it('a mistyped command or option gets a did-you-mean and exit 2', async () => {
    const cmd = await run(['uplod']);
    assert.equal(cmd.code, 2);
    assert.match(cmd.stderr, /unknown command 'uplod'\n\(Did you mean upload\?\)/);
    const opt = await run(['download', '--dry-rn']);
    assert.equal(opt.code, 2);
    assert.match(opt.stderr, /unknown option '--dry-rn'\n\(Did you mean --dry-run\?\)/);
  });
  it('help into a pipe that closes early (| head) ends quietly', async () => {
    const child = spawn(process.execPath, [CLI, 'merge', '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const [code] = (await once(child, 'close')) as [number];
    assert.equal(stderr, '');
    assert.equal(code, 0);
  });
  it('the memory governor collects above its soft limit, never below it, backs off where collecting frees little, and is a no-op without --expose-gc', async () => {
    const governor = pathToFileURL(path.resolve(here, '../src/cli/peak-memory.js')).href;
    // counts the collections asked for while the governor looks every 20 ms for 300 ms
    const script = `const { governMemory } = await import(${JSON.stringify(governor)});
      let n = 0; const real = globalThis.gc; if (real) globalThis.gc = () => { n++; real(); };
      const stop = governMemory({ softLimitBytes: Number(process.argv[1]), checkMs: 20, futileBytes: Number(process.argv[2]) });
      await new Promise((r) => setTimeout(r, 300)); stop(); const after = n;
      await new Promise((r) => setTimeout(r, 100)); console.log(after, n);`;
    // futile: what a collection must free to count as worth it (-Infinity: every one counts)
    const count = async (flags: string[], limit: number, futile = -Infinity) => (await promisify(execFile)(process.execPath, [...flags, '--input-type=module', '-e', script, String(limit), String(futile)])).stdout.trim();
    const [above, stopped] = (await count(['--expose-gc'], 1)).split(' ').map(Number);
    assert.ok(above! >= 3, `${above} collections above the limit`);
    assert.equal(stopped, above, 'none after the stop');
    assert.equal(await count(['--expose-gc'], Number.MAX_SAFE_INTEGER), '0 0');
    assert.equal(await count([], 1), '0 0');
    // collections that free nothing worth it come ever more rarely
    const [futile] = (await count(['--expose-gc'], 1, Infinity)).split(' ').map(Number);
    assert.ok(futile! >= 1 && futile! * 2 < above!, `${futile} futile collections against ${above}`);
  });
  it('merge --no-crc-check, the old flag, is still accepted', async () => {
    const r = await run(['merge', '--no-crc-check', '--help']);
    assert.equal(r.code, 0);
    assert.doesNotMatch(r.stdout, /no-crc-check/);
  });
  it('the bin starts from any POSIX sh (busybox sh too, where installed), giving Node its flags and every argument as is', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'bin-'));
    // a `node` first on PATH that prints what it was given, one argument a line
    await writeFile(path.join(dir, 'node'), '#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n', { mode: 0o755 });
    const env = { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` };
    const busybox = await promisify(execFile)('busybox', ['true']).then(() => true, () => false);
    const args = ['merge', 'a b', '$HOME', '*', ''];
    try {
      for (const [cmd, ...before] of [[CLI], ['sh', CLI], ...(busybox ? [['busybox', 'sh', CLI]] : [])]) {
        const { stdout } = await promisify(execFile)(cmd!, [...before, ...args], { env });
        assert.deepEqual(stdout.split('\n').slice(0, -1), ['--max-semi-space-size=8', '--expose-gc', CLI, ...args], cmd);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const real = await promisify(execFile)(CLI, ['--version']);
    assert.match(real.stdout, /^\d+\.\d+\.\d+\n$/);
  });
  it('a missing config file is named, exit 2', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cli-'));
    const r = await run(['merge'], dir);
    await rm(dir, { recursive: true, force: true });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^config error: config file .*\/config\.yml: no such file \(pass --config <file>/);
  });
});

describe('athena-ddl', () => {
  const config = resolveConfig(
    '/c.yml',
    { s3_buckets: { cold_tier_bucket_name: 'plant-cold', repartitioned_bucket_name: 'plant-repartitioned', repartitioned_bucket_data_prefix: 'sitewise/consolidated' } },
    {},
    ['dest-bucket'],
    {},
    new Date(),
  );

  it('matches the golden DDL for the configured bucket and prefix', async () => {
    const ddl = athenaDdl(config, { table: 'plant_data', database: 'iot' }, AVRO);
    if (process.env.UPDATE_GOLDEN) await writeFile(path.join(golden, 'athena-ddl.sql'), ddl);
    assert.equal(ddl, await readFile(path.join(golden, 'athena-ddl.sql'), 'utf8'));
  });

  it('projects partitions onto exactly the keys upload writes', () => {
    const ddl = athenaDdl(config, { table: 't', database: 'd' }, AVRO);
    const template = /'storage\.location\.template'='([^']+)'/.exec(ddl)![1]!;
    const location = /LOCATION '([^']+)'/.exec(ddl)![1]!;
    for (const day of [{ year: 2023, month: 1, day: 7 }, { year: 2024, month: 12, day: 31 }]) {
      const projected = template.replace('${startyear}', String(day.year)).replace('${startmonth}', String(day.month)).replace('${startday}', String(day.day));
      assert.equal(projected, `s3://plant-repartitioned/${dayPrefix(config.dataPrefix, day)}`);
      assert.ok(projected.startsWith(location));
    }
    for (const [part, range] of [['startyear', '2020,2099'], ['startmonth', '1,12'], ['startday', '1,31']]) {
      assert.ok(ddl.includes(`'projection.${part}.type'='integer'`) && ddl.includes(`'projection.${part}.range'='${range}'`), part);
    }
  });

  it('is well-formed Hive DDL: balanced parentheses and quotes, the raw schema as columns and Avro literal', () => {
    const ddl = athenaDdl(config, { table: 't', database: 'd' }, AVRO);
    let depth = 0;
    for (const ch of ddl.replace(/'[^']*'/g, "''")) {
      if (ch === '(') depth++;
      if (ch === ')') depth--;
      assert.ok(depth >= 0);
    }
    assert.equal(depth, 0);
    assert.equal((ddl.match(/'/g) ?? []).length % 2, 0);
    assert.match(ddl, /^CREATE EXTERNAL TABLE IF NOT EXISTS `d`\.`t` \(\n {2}`seriesid` string,\n {2}`timeinseconds` bigint,/);
    const literal = /'avro\.schema\.literal'='([^']+)'/.exec(ddl)![1]!;
    assert.equal((JSON.parse(literal) as { name: string }).name, 'RawDatum');
    assert.ok(ddl.trimEnd().endsWith(');'));
  });
});

describe('output for terminals, cron and log shippers', () => {
  const series = makeSeries({ associated: 20, disassociated: 5 }, 61);
  let world: World;
  before(async () => {
    world = await startWorld(series);
    await world.put(await generateDay(series, { year: 2024, month: 3, day: 2 }, { recordsPerFile: 50 }));
    await world.writeConfig({ timeseries_type: 'ALL' });
  });
  after(async () => {
    await world?.stop();
  });

  it('without a terminal: plain lines, no control characters, one summary line per day and per command', async () => {
    const r = await world.cli(['download', '--dry-run']);
    assert.equal(r.code, 0);
    // eslint-disable-next-line no-control-regex -- looking for exactly these
    assert.doesNotMatch(r.stdout + r.stderr, /[\x00-\x08\x0b-\x1f\x7f]/);
    assert.match(r.stdout, /^download 2024-03-02: done \(\d+ objects, [\d.]+ MB, dry run\) in [\d.]+s$/m);
    assert.match(r.stdout, /^\twould download \d+ objects of \d+ series, [\d.]+ MB$/m);
    assert.match(r.stdout, /^download 2024-03-01\.\.2024-03-03: 1 days done, 2 skipped, 0 failed in [\d.]+s, peak memory [1-9]\d* MB, at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/m);
  });

  it('--quiet prints only the final summary', async () => {
    const r = await world.cli(['download', '--dry-run', '--quiet']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout.trim(), r.stdout.trim().split('\n')[0]);
    assert.match(r.stdout, /^download 2024-03-01\.\.2024-03-03: 1 days done/);
  });

  it("reports its own peak memory, not that of the process that started it", async () => {
    // getrusage's maxrss would carry this parent's resident memory over into the child
    const ballast = Buffer.alloc(600 * 1024 * 1024, 1);
    const r = await world.cli(['merge', '--quiet']);
    assert.equal(ballast.at(-1), 1);
    assert.equal(r.code, 0, r.stderr);
    const peak = Number(/peak memory (\d+) MB/.exec(r.stdout)?.[1]);
    assert.ok(peak > 0 && peak < 600, `peak memory ${peak} MB`);
  });

  it('--log-format json: one JSON object per line, for every event', async () => {
    const r = await world.cli(['run', '--log-format', 'json', '--verbose']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '', 'every JSON event on stdout');
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; stage: string; time: string; runId: string });
    const types = new Set(events.map((e) => e.type));
    for (const t of ['log', 'progress', 'day-end', 'command-end']) assert.ok(types.has(t), t);
    assert.ok(events.every((e) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(e.time) && typeof e.stage === 'string'));
    assert.equal(new Set(events.map((e) => e.runId)).size, 1);
    assert.match(events[0]!.runId, /^[0-9a-f]{8}$/);
    const end = events.find((e) => e.type === 'command-end') as unknown as { done: number; failed: number; peakRssMb: number };
    assert.deepEqual([end.done, end.failed], [1, 0]);
    assert.ok(Number.isInteger(end.peakRssMb) && end.peakRssMb > 0, `peakRssMb ${end.peakRssMb}`);
  });

  it('--log-format json: a fatal error is a JSON line too', async () => {
    await world.writeConfig({ timeseries_type: 'ALL', s3_buckets: { cold_tier_bucket_name: 'no-such-bucket-json', repartitioned_bucket_name: world.dest } });
    const r = await world.cli(['download', '--log-format', 'json']);
    await world.writeConfig({ timeseries_type: 'ALL' });
    assert.equal(r.code, 1);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; kind?: string; error?: string; runId?: string; stage?: string });
    // an error event, then command-end, on stdout with the other events, all of one run
    assert.deepEqual(lines.slice(-2).map((l) => [l.type, l.kind]), [['error', 'fatal'], ['command-end', undefined]]);
    assert.equal(lines.at(-1)!.stage, 'download');
    assert.equal(new Set(lines.map((l) => l.runId)).size, 1);
    lines.splice(0, lines.length - 2);
    assert.match(lines[0]!.error!, /no-such-bucket-json.*no such bucket/);
  });

  it('on a terminal: a live progress line with counts, bytes, rate and ETA', async (t) => {
    if (!existsSync('/usr/bin/script')) {
      t.skip('util-linux script not installed');
      return;
    }
    const dest = await world.s3.createBucket('tty');
    await world.writeConfig({ timeseries_type: 'ALL', s3_buckets: { cold_tier_bucket_name: world.cold, repartitioned_bucket_name: dest }, local_dirs: { work_dir: path.join(world.dir, 'tty-work') } });
    const command = `${process.execPath} ${CLI} download --config ${world.configFile} --concurrency 1`;
    const { stdout } = await promisify(execFile)('script', ['-qfec', command, '/dev/null'], { env: { ...process.env, ...world.env } });
    // days done of the command's total first, then the day's objects, bytes, rate and ETA
    // eslint-disable-next-line no-control-regex -- the terminal's erase-line sequence
    assert.match(stdout, /\r\x1b\[2K\[\d\/3 days\] download 2024-03-02: \d+\/\d+ objects [\d.]+ KB\/[\d.]+ KB [\d.]+ [KM]?B\/s( ETA \d+s)?/);
    assert.match(stdout, /Script execution successfully completed!!/);
  });
});
