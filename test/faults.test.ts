import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { generateDay, makeSeries, type ColdObject, type SeriesSpec } from './support/generate-cold-tier.js';
import { recordSet, recordsOf, startWorld, type World } from './support/harness.js';

const DAY = { year: 2024, month: 3, day: 2 };
const DATES = ['--from', '2024-03-01', '--to', '2024-03-02'];

async function threeCommands(world: World, extra: string[] = []): Promise<void> {
  for (const command of ['download', 'merge', 'upload']) {
    const r = await world.cli([command, ...DATES, ...extra]);
    assert.equal(r.code, 0, `${command}: ${r.stderr}`);
  }
}

/** No stack trace, and exactly one error line. */
function assertOneClearLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(stderr, /\n\s+at /);
}

/** Two generated days in the cold tier, and the CLI configured to reach S3 through a fault proxy. */
async function twoDaysBehindProxy(series: SeriesSpec[], seed?: number): Promise<{ world: World; proxy: FaultProxy; objects: ColdObject[] }> {
  const world = await startWorld(series);
  const objects = [...(await generateDay(series, DAY)), ...(await generateDay(series, { ...DAY, day: 1 }))];
  await world.put(objects);
  const proxy = await startFaultProxy(world.s3.endpoint, seed);
  await world.writeConfig({ timeseries_type: 'ALL' }, proxy.endpoint);
  return { world, proxy, objects };
}

describe('transient faults', () => {
  const series = makeSeries({ associated: 10, disassociated: 5 }, 31);
  let world: World;
  let proxy: FaultProxy;
  let objects: ColdObject[];
  before(async () => {
    ({ world, proxy, objects } = await twoDaysBehindProxy(series, 5));
  });
  after(async () => {
    await proxy?.stop();
    await world?.stop();
  });

  it('500s, 503 SlowDown and connection resets (before and after the server acted) are retried; every record lands once', async () => {
    proxy.failureRate = 0.2;
    await threeCommands(world);
    proxy.failureRate = 0;
    assert.ok(proxy.log.filter((r) => r.fault).length >= 20, `only ${proxy.log.filter((r) => r.fault).length} faults injected`);
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(objects)));
    assert.equal((await world.list(world.dest, 'consolidated/')).length, 2);
  });

  it('tries each request AWS_MAX_ATTEMPTS times in all (one retry policy, no SDK retries inside it), and names a bad value', async () => {
    const listing = (r: { method: string; path: string }) => r.method === 'GET' && r.path.includes(world.cold) && r.path.includes('list-type=2');
    // the access check at start (the day's listing, sent beside it, is stopped once the check has failed)
    const checks = () => proxy.log.filter((r) => listing(r) && r.path.includes('max-keys=1')).length;
    proxy.rules = [{ match: listing, status: 500, code: 'InternalError' }];
    const before = checks();
    const failed = await world.cli(['download', '--from', '2024-03-02', '--to', '2024-03-02', '--dry-run'], { env: { AWS_MAX_ATTEMPTS: '2' } });
    assert.equal(failed.code, 1);
    assert.equal(checks() - before, 2, 'two attempts in all');
    proxy.rules = [{ match: listing, status: 500, code: 'InternalError', times: 2 }];
    const passed = await world.cli(['download', '--from', '2024-03-02', '--to', '2024-03-02', '--dry-run'], { env: { AWS_MAX_ATTEMPTS: '3' } });
    proxy.rules = [];
    assert.equal(passed.code, 0, passed.stderr);
    const bad = await world.cli(['download', '--dry-run'], { env: { AWS_MAX_ATTEMPTS: 'many' } });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^config error: AWS_MAX_ATTEMPTS: 'many' must be a whole number of 1 or more$/m);
  });
});

describe('permanent faults stop with one clear line', () => {
  const series = makeSeries({ associated: 2, disassociated: 1 }, 32);
  let world: World;
  let proxy: FaultProxy;
  before(async () => {
    world = await startWorld(series);
    await world.put(await generateDay(series, DAY, { exports: [0] }));
    proxy = await startFaultProxy(world.s3.endpoint);
  });
  after(async () => {
    await proxy?.stop();
    await world?.stop();
  });

  it('AccessDenied names the bucket, the operation and the permission', async () => {
    await world.writeConfig({ timeseries_type: 'ALL' }, proxy.endpoint);
    // denied on data, ledger and index (the probe of conditional writes and the day's lease may write)
    proxy.rules = [{ match: (r) => r.method === 'PUT' && r.path.includes(world.dest) && !/conditional-write-probe|lease\.json/.test(r.path), status: 403, code: 'AccessDenied' }];
    assert.equal((await world.cli(['download', ...DATES])).code, 0);
    assert.equal((await world.cli(['merge'])).code, 0);
    const r = await world.cli(['upload', '--quiet']);
    proxy.rules = [];
    assert.equal(r.code, 1);
    assertOneClearLine(r.stderr, new RegExp(`^error: PutObject on s3://${world.dest}/consolidated/.*: access denied; the role needs s3:PutObject there$`));
    // nothing committed, local files kept for the next run
    assert.deepEqual(await world.list(world.dest), []);
    assert.ok(existsSync(path.join(world.workDir, 'merged', '2024-3-2')));
    assert.equal((await world.cli(['upload'])).code, 0);
  });

  it('a role that may not list multipart uploads gets a warning, and the day still lands', async () => {
    await world.writeConfig({ timeseries_type: 'ALL' }, proxy.endpoint);
    await world.put(await generateDay(series, DAY, { exports: [1] }));
    assert.equal((await world.cli(['download', ...DATES])).code, 0);
    assert.equal((await world.cli(['merge'])).code, 0);
    proxy.rules = [{ match: (r) => r.method === 'GET' && /[?&]uploads(=|&|$)/.test(r.path), status: 403, code: 'AccessDenied' }];
    const r = await world.cli(['upload']);
    proxy.rules = [];
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /WARNING: ListMultipartUploads on s3:\/\/dest-.*: access denied; the role needs s3:ListBucketMultipartUploads there; unfinished multipart uploads/);
    assert.match(r.stdout, /upload 2024-03-02: done/);
  });

  it('GetObject access denied stops with one line; an object changed since it was listed makes the day be listed again, and fails it, named, if it changes again', async () => {
    await world.writeConfig({ timeseries_type: 'ALL' }, proxy.endpoint);
    await world.put(await generateDay(series, DAY, { exports: [2] }));
    const objectGet = (r: { method: string; path: string }) => r.method === 'GET' && r.path.includes(world.cold) && r.path.endsWith('.avro');
    proxy.rules = [{ match: objectGet, status: 403, code: 'AccessDenied' }];
    const denied = await world.cli(['download', ...DATES, '--quiet']);
    assert.equal(denied.code, 1);
    assertOneClearLine(denied.stderr, new RegExp(`^error: GetObject on s3://${world.cold}/raw/startYear=2024/startMonth=3/startDay=2/.*\\.avro: access denied; the role needs s3:GetObject there$`));
    proxy.rules = [{ match: objectGet, status: 412, code: 'PreconditionFailed', times: 1 }];
    const relisted = await world.cli(['download', ...DATES]);
    assert.equal(relisted.code, 0, relisted.stderr);
    assert.match(relisted.stderr, /changed after it was listed \(its ETag is no longer [0-9a-f]{32}\): listing the day again/);
    // downloaded again from scratch (a resumed day would not need to GET anything)
    await rm(path.join(world.workDir, 'raw'), { recursive: true, force: true });
    proxy.rules = [{ match: objectGet, status: 412, code: 'PreconditionFailed' }];
    const changed = await world.cli(['download', ...DATES]);
    proxy.rules = [];
    assert.equal(changed.code, 1);
    assert.match(changed.stderr, new RegExp(`download 2024-03-02: FAILED: s3://${world.cold}/raw/.*\\.avro changed after it was listed \\(its ETag is no longer [0-9a-f]{32}\\); run download again`));
    assert.equal((await world.cli(['download', ...DATES])).code, 0);
  });

  it('a missing bucket, source or destination, is named with its config key before anything is downloaded', async () => {
    await world.writeConfig({ timeseries_type: 'ALL', s3_buckets: { cold_tier_bucket_name: 'no-such-bucket-here', repartitioned_bucket_name: world.dest } });
    const r = await world.cli(['download', ...DATES, '--quiet']);
    assert.equal(r.code, 1);
    assertOneClearLine(r.stderr, /^error: s3_buckets\.cold_tier_bucket_name 'no-such-bucket-here': ListObjectsV2 on s3:\/\/no-such-bucket-here: no such bucket; check the bucket name and region$/);
    // a typo in the destination is found at the start too, not after downloading and merging the range
    await world.writeConfig({ timeseries_type: 'ALL', s3_buckets: { cold_tier_bucket_name: world.cold, repartitioned_bucket_name: 'no-such-dest-here' } });
    await rm(path.join(world.workDir, 'raw'), { recursive: true, force: true });
    for (const command of ['download', 'run', 'upload']) {
      const d = await world.cli([command, ...DATES, '--quiet']);
      assert.equal(d.code, 1, command);
      assertOneClearLine(d.stderr, /^error: s3_buckets\.repartitioned_bucket_name 'no-such-dest-here': ListObjectsV2 on s3:\/\/no-such-dest-here: no such bucket; check the bucket name and region$/);
    }
    assert.ok(!existsSync(path.join(world.workDir, 'raw')), 'nothing was downloaded');
    await world.writeConfig({ timeseries_type: 'ALL' });
  });

  it('an unreachable endpoint gets a few quick tries, then one line naming it and where it came from', async () => {
    await world.writeConfig({ timeseries_type: 'ALL' }, 'http://127.0.0.1:1');
    const r = await world.cli(['download', ...DATES, '--quiet']);
    assert.equal(r.code, 1);
    assertOneClearLine(r.stderr, /^error: cannot reach http:\/\/127\.0\.0\.1:1 \(from aws\.s3_endpoint\) for s3_buckets\.\w+ '[^']+': .*ECONNREFUSED.*; check the URL and the network$/);
    await world.writeConfig({ timeseries_type: 'ASSOCIATED', aws: { region: 'us-east-1', s3_endpoint: world.s3.endpoint, s3_force_path_style: true, sitewise_endpoint: 'http://127.0.0.1:1' } });
    const sw = await world.cli(['download', ...DATES, '--quiet']);
    assert.equal(sw.code, 1);
    assertOneClearLine(sw.stderr, /^error: ListTimeSeries at http:\/\/127\.0\.0\.1:1 \(from aws\.sitewise_endpoint\): .*ECONNREFUSED.*; check the URL and the network$/);
    await world.writeConfig({ timeseries_type: 'ALL' });
  });

  it('at the start check: access denied names the key and the permission, another region says to set it, a KMS denial names the action and the key', async () => {
    await world.writeConfig({ timeseries_type: 'ALL' }, proxy.endpoint);
    const startListing = (bucket: string) => (r: { method: string; path: string }) => r.method === 'GET' && r.path.startsWith(`/${bucket}`) && r.path.includes('max-keys=1');
    proxy.rules = [{ match: startListing(world.cold), status: 403, code: 'AccessDenied' }];
    const denied = await world.cli(['download', ...DATES, '--quiet']);
    assert.equal(denied.code, 1);
    assertOneClearLine(denied.stderr, new RegExp(`^error: s3_buckets\\.cold_tier_bucket_name '${world.cold}': ListObjectsV2 on s3://${world.cold}: access denied; the role needs s3:ListBucket there$`));
    proxy.rules = [{ match: startListing(world.dest), status: 301, code: 'PermanentRedirect' }];
    const moved = await world.cli(['upload', '--quiet']);
    assert.equal(moved.code, 1);
    assertOneClearLine(moved.stderr, new RegExp(`^error: s3_buckets\\.repartitioned_bucket_name '${world.dest}': ListObjectsV2 on s3://${world.dest}: the bucket is in another region; set aws\\.region or AWS_REGION$`));
    const arn = 'arn:aws:kms:us-east-1:123456789012:key/0f2b9c1e-1111-2222-3333-444455556666';
    proxy.rules = [
      {
        match: (r) => r.method === 'GET' && r.path.startsWith(`/${world.cold}/raw/`),
        status: 403,
        code: 'AccessDenied',
        message: `User: arn:aws:sts::123456789012:assumed-role/etl/run is not authorized to perform: kms:Decrypt on resource: ${arn} because no identity-based policy allows the kms:Decrypt action`,
      },
    ];
    await rm(path.join(world.workDir, 'raw'), { recursive: true, force: true });
    const kms = await world.cli(['download', ...DATES, '--quiet']);
    proxy.rules = [];
    assert.equal(kms.code, 1);
    assertOneClearLine(kms.stderr, new RegExp(`^error: GetObject on s3://${world.cold}/raw/.*: access denied by KMS; the role needs kms:Decrypt on ${arn}$`));
  });

  it('bad credentials say what to set', async () => {
    await world.writeConfig({ timeseries_type: 'ALL' });
    const r = await world.cli(['download', ...DATES, '--quiet'], { env: { AWS_ACCESS_KEY_ID: 'WRONGKEY', AWS_SECRET_ACCESS_KEY: 'wrong' } });
    assert.equal(r.code, 1);
    assertOneClearLine(r.stderr, /^error: s3_buckets\.\w+ '[a-z0-9-]+': ListObjectsV2 on s3:\/\/(cold|dest)-.*: AWS credentials missing, invalid or expired \(\w+\); set a profile/);
  });

  it('ListTimeSeries access denied names the API and the permission', async () => {
    await world.writeConfig({ timeseries_type: 'ASSOCIATED' });
    world.sitewise.failWith = { status: 403, type: 'AccessDeniedException' };
    const r = await world.cli(['download', ...DATES, '--dry-run', '--quiet']);
    world.sitewise.failWith = undefined;
    assert.equal(r.code, 1);
    assertOneClearLine(r.stderr, /^error: ListTimeSeries on the AWS IoT SiteWise API: access denied; the role needs iotsitewise:ListTimeSeries there/);
  });

  it('a config error exits 2 with the key named', async () => {
    await world.writeConfig({ timeseries_type: 'SOME', date_range: { date_start: '2024-03-05', date_end: '2024-03-01' } });
    const r = await world.cli(['download']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /config error: .*timeseries_type: 'SOME' is not one of ASSOCIATED, DISASSOCIATED, ALL/);
    assert.match(r.stderr, /config error: .*date_range.date_start: start 2024-03-05 is after end 2024-03-01 \(date_range.date_end\)/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });
});

describe('a crash between the data upload and the commit', () => {
  const series = makeSeries({ associated: 4, disassociated: 2 }, 33);
  let world: World;
  let proxy: FaultProxy;
  before(async () => {
    world = await startWorld(series);
    proxy = await startFaultProxy(world.s3.endpoint);
    await world.writeConfig({ timeseries_type: 'ALL' }, proxy.endpoint);
  });
  after(async () => {
    await proxy?.stop();
    await world?.stop();
  });

  it('leaves no duplicate after new exports arrive and the next run commits', async () => {
    const early = await generateDay(series, DAY, { exports: [0, 1] });
    await world.put(early);
    await world.cli(['download', ...DATES]);
    await world.cli(['merge']);
    proxy.rules = [{ match: (r) => r.method === 'PUT' && r.path.includes('ledger.json'), status: 403, code: 'AccessDenied' }];
    const failed = await world.cli(['upload']);
    proxy.rules = [];
    assert.equal(failed.code, 1);
    assert.equal((await world.list(world.dest, 'consolidated/')).length, 1, 'the data object went up, the commit did not');

    const late = await generateDay(series, DAY, { exports: [2, 3] });
    await world.put(late);
    await threeCommands(world);
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf([...early, ...late])));
    assert.equal((await world.list(world.dest, 'consolidated/')).length, 1, 'the uncommitted object was removed');
  });
});

describe('kill -9 at any point, then rerun', () => {
  const series = makeSeries({ associated: 60, disassociated: 20 }, 34);
  let world: World;
  let objects: ColdObject[];
  before(async () => {
    world = await startWorld(series);
    objects = [...(await generateDay(series, DAY, { recordsPerFile: 200 })), ...(await generateDay(series, { ...DAY, day: 1 }, { recordsPerFile: 200 }))];
    await world.put(objects);
    await world.writeConfig({ timeseries_type: 'ALL' });
  });
  after(async () => {
    await world?.stop();
  });

  it('each command killed in the middle of its work, then rerun, lands every record once', async () => {
    const json = ['--log-format', 'json', '--verbose', '--concurrency', '2'];
    const dl = await world.cli(['download', ...DATES, ...json], { killWhen: (out) => out.includes('"doneObjects":60,') });
    assert.equal(dl.signal, 'SIGKILL', 'download was killed mid-way');
    const resumed = await world.cli(['download', ...DATES, ...json]);
    assert.equal(resumed.code, 0, resumed.stderr);

    const mg = await world.cli(['merge', ...json], { killWhen: (out) => out.includes('"stage":"merge","day":"2024-03-02"') });
    assert.equal(mg.signal, 'SIGKILL', 'merge was killed mid-way');
    assert.equal((await world.cli(['merge'])).code, 0);

    const up = await world.cli(['upload', ...json], { killWhen: (out) => out.includes('"type":"day-end","stage":"upload"') });
    assert.equal(up.signal, 'SIGKILL', 'upload was killed after its first day');
    assert.equal((await world.cli(['upload'])).code, 0);

    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(objects)));
    assert.equal((await world.list(world.dest, 'consolidated/')).length, 2);
    assert.deepEqual(await readdir(path.join(world.workDir, 'raw')), []);
  });

  it('run killed at a series of moments, then rerun, lands every record once', async () => {
    const extra = [
      ...(await generateDay(series, DAY, { exports: [3], recordsPerFile: 50, seed: 99 })).map((o) => ({ ...o, key: o.key.replace('_GOOD', '_UNCERTAIN').replace('_BAD', '_UNCERTAIN') })),
    ];
    const fresh = extra.filter((o, i, all) => all.findIndex((x) => x.key === o.key) === i && !objects.some((x) => x.key === o.key));
    await world.put(fresh);
    for (const ms of [150, 400, 700, 1000, 1500]) {
      await world.cli(['run', ...DATES, '--concurrency', '2'], { killAfterMs: ms });
    }
    const last = await world.cli(['run', ...DATES]);
    assert.equal(last.code, 0, last.stderr);
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf([...objects, ...fresh])));
  });
});

describe('stopped by SIGTERM or SIGINT', () => {
  const series = makeSeries({ associated: 8, disassociated: 4 }, 36);
  let world: World;
  let proxy: FaultProxy;
  let objects: ColdObject[];
  before(async () => {
    ({ world, proxy, objects } = await twoDaysBehindProxy(series));
    // slow enough that requests are still in flight when the signal comes
    proxy.latencyMs = 150;
  });
  after(async () => {
    await proxy?.stop();
    await world?.stop();
  });

  it('stops the requests in flight, exits 143 (SIGTERM) or 130 (SIGINT) having released its lock, and a rerun lands every record once', async () => {
    const lock = path.join(world.workDir, '.sitewise-repartition.lock');
    for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
      const r = await world.cli(['run', ...DATES, '--concurrency', '2'], { killWhen: (out) => out.includes('Downloading S3 objects'), killSignal: signal });
      assert.equal(r.code, code, r.stderr);
      assert.match(r.stderr, new RegExp(`${signal}: stopped; run the same command again to resume`));
      assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
      assert.doesNotMatch(r.stdout, /^run( \S+)?: \d+ days done/m, 'the run stopped instead of finishing its days');
      // the lock is removed by the run winding down, not by the exit
      assert.ok(!existsSync(lock), 'the work-dir lock was released');
    }
    proxy.latencyMs = 0;
    const rerun = await world.cli(['run', ...DATES]);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(objects)));
  });
});

describe('resume', () => {
  const series = makeSeries({ associated: 5, disassociated: 2 }, 35);
  let world: World;
  let proxy: FaultProxy;
  before(async () => {
    world = await startWorld(series);
    await world.put(await generateDay(series, DAY));
    proxy = await startFaultProxy(world.s3.endpoint);
    await world.writeConfig({ timeseries_type: 'ALL' }, proxy.endpoint);
  });
  after(async () => {
    await proxy?.stop();
    await world?.stop();
  });

  it('download fetches only what is missing or changed locally; merge redoes only a missing or stale output', async () => {
    assert.equal((await world.cli(['download', ...DATES])).code, 0);
    const rawDir = path.join(world.workDir, 'raw', '2024-3-2');
    const files = (await readdir(rawDir)).filter((f) => f.endsWith('.avro'));
    await rm(path.join(rawDir, files[0]!));
    await writeFile(path.join(rawDir, files[1]!), 'garbage of another size');
    const gets = () => proxy.log.filter((r) => r.method === 'GET' && r.path.includes(world.cold) && !r.path.includes('list-type')).length;
    const before = gets();
    assert.equal((await world.cli(['download', ...DATES])).code, 0);
    assert.equal(gets() - before, 2, 'only the removed and the damaged file were fetched again');

    assert.equal((await world.cli(['merge'])).code, 0);
    const again = await world.cli(['merge', '--verbose']);
    assert.match(again.stdout, /merge 2024-03-02: skipped \(already merged\)/);
    assert.equal((await world.cli(['upload'])).code, 0);
  });
});

describe('local files that changed under the tool', () => {
  const series = makeSeries({ associated: 3, disassociated: 1 }, 36);
  let world: World;
  let objects: ColdObject[];
  before(async () => {
    world = await startWorld(series);
    objects = await generateDay(series, DAY);
    await world.put(objects);
    await world.writeConfig({ timeseries_type: 'ALL' });
  });
  after(async () => {
    await world?.stop();
  });

  it('a raw file cut or removed after download is named; a merged file cut short (power cut) is not uploaded; redoing lands every record once', async () => {
    assert.equal((await world.cli(['download', ...DATES])).code, 0);
    const rawDir = path.join(world.workDir, 'raw', '2024-3-2');
    const first = (await readdir(rawDir)).filter((f) => f.endsWith('.avro'))[0]!;
    const original = await readFile(path.join(rawDir, first));
    await writeFile(path.join(rawDir, first), original.subarray(0, 100));
    const cutRaw = await world.cli(['merge']);
    assert.equal(cutRaw.code, 1);
    assert.match(cutRaw.stderr, /FAILED: s3:\/\/.*: its local copy .* has fewer bytes than the \d+ downloaded; run download again/);
    await rm(path.join(rawDir, first));
    const gone = await world.cli(['merge']);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /FAILED: .*: a downloaded file is missing \(ENOENT.*\); run download again/);
    await writeFile(path.join(rawDir, first), original);

    assert.equal((await world.cli(['merge'])).code, 0);
    const mergedDir = path.join(world.workDir, 'merged', '2024-3-2');
    const merged = (await readdir(mergedDir)).find((f) => f.endsWith('.avro'))!;
    await truncate(path.join(mergedDir, merged), 1000);
    const cutMerged = await world.cli(['upload']);
    assert.equal(cutMerged.code, 1);
    assert.match(cutMerged.stderr, /has 1000 bytes where merge wrote \d+; discarded it, run merge again/);
    assert.deepEqual(await world.list(world.dest), [], 'nothing was uploaded');

    for (const command of ['merge', 'upload']) assert.equal((await world.cli([command])).code, 0);
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(objects)));
  });
});
