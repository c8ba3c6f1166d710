/**
 * What AWS S3 does that the loopback servers do not, through the proxy:
 * SSE-KMS ETags (not MD5, with the SSE header), multipart-style ETags, and
 * bytes altered in transit with the ETag kept. The destination is compared
 * record for record.
 */
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HeadObjectCommand, PutBucketVersioningCommand } from '@aws-sdk/client-s3';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { generateDay, makeSeries, type ColdObject } from './support/generate-cold-tier.js';
import { recordSet, recordsOf, startWorld, type World } from './support/harness.js';

const DAYS = ['--from', '2024-05-01', '--to', '2024-05-02'];
const day = (d: number) => ({ year: 2024, month: 5, day: d });

/** Another export of the day under keys no other object has (the quality in its name is `tag`), one object per key. */
async function anotherExport(series: ReturnType<typeof makeSeries>, d: number, seed: number, tag: string): Promise<ColdObject[]> {
  const renamed = (await generateDay(series, day(d), { exports: [0], seed })).map((o) => ({ ...o, key: o.key.replace(/_(GOOD|BAD)\.avro$/, `_${tag}.avro`) }));
  return renamed.filter((o, i) => renamed.findIndex((x) => x.key === o.key) === i);
}

describe('integrity without MD5 ETags', () => {
  const series = makeSeries({ associated: 6, disassociated: 2 }, 51);
  let world: World;
  let proxy: FaultProxy;
  let landed: ColdObject[];
  before(async () => {
    world = await startWorld(series);
    landed = [...(await generateDay(series, day(1), { exports: [0, 1] })), ...(await generateDay(series, day(2), { exports: [0, 1] }))];
    await world.put(landed);
    proxy = await startFaultProxy(world.s3.endpoint, 1, { accessKeyId: world.s3.accessKeyId, secretAccessKey: world.s3.secretAccessKey, region: world.s3.region });
    await world.writeConfig({ timeseries_type: 'ALL', aws: { region: 'us-east-1', s3_endpoint: proxy.endpoint, s3_force_path_style: true, sse: 'aws:kms' } }, proxy.endpoint);
  });
  after(async () => {
    await proxy?.stop();
    await world?.stop();
  });

  it('SSE-KMS buckets on both sides: downloads and uploads verify, later exports land once', async () => {
    proxy.etagStyle = { [world.cold]: 'kms', [world.dest]: 'kms' };
    const first = await world.cli(['run', ...DAYS, '--verbose']);
    assert.equal(first.code, 0, first.stderr);
    // nothing on this server returns a checksum, and a KMS ETag is no MD5: each object's blocks are checked at merge
    assert.match(first.stdout, /raw_.*\.avro: no checksum or MD5 ETag: its blocks are checked at merge/);
    // and the merged file, neither checksummed nor MD5-tagged, was read back to verify it
    const dataKey = (r: { method: string; path: string }) => r.path.includes(`/${world.dest}/consolidated/`) && r.path.includes('merged_series_');
    assert.ok(proxy.log.some((r) => r.method === 'GET' && dataKey(r)), 'the upload was read back');
    // aws.sse went with every write to the destination: data, ledger and index
    const writes = proxy.log.filter((r) => r.path.startsWith(`/${world.dest}/`) && (r.method === 'PUT' || r.method === 'POST') && !r.path.includes('uploadId=') && !r.path.includes('?delete'));
    assert.ok(writes.length >= 6 && writes.every((r) => r.sse === 'aws:kms'), JSON.stringify(writes.filter((r) => r.sse !== 'aws:kms')));
    const late = [...(await generateDay(series, day(1), { exports: [2] })), ...(await generateDay(series, day(2), { exports: [2, 3] }))];
    await world.put(late);
    landed.push(...late);
    const second = await world.cli(['run', ...DAYS]);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(landed)));
    proxy.etagStyle = {};
  });

  it('an object with a multipart-style ETag altered in transit fails its day at merge, named; nothing of it is committed', async () => {
    const extra = await generateDay(series, day(1), { exports: [3] });
    await world.put(extra);
    const victim = extra[0]!.key;
    proxy.etagStyle = { [world.cold]: 'multipart', [world.dest]: 'kms' };
    proxy.alter = [{ match: (r) => r.method === 'GET' && r.path.includes(victim.slice(victim.lastIndexOf('/') + 1)) }];
    const before = (await world.list(world.dest, 'consolidated/')).length;
    const run = await world.cli(['run', ...DAYS]);
    assert.equal(run.code, 1, run.stderr);
    assert.ok(proxy.log.some((r) => r.fault === 'altered'), 'the proxy altered the object');
    const failed = run.stderr.split('\n').find((l) => l.startsWith('run 2024-05-01: FAILED:'));
    assert.ok(failed?.includes(victim) && /corrupt/.test(failed), run.stderr);
    assert.equal((await world.list(world.dest, 'consolidated/')).length, before, 'no merged file was uploaded for the day');
    proxy.alter = [];
    const again = await world.cli(['run', ...DAYS]);
    assert.equal(again.code, 0, again.stderr);
    landed.push(...extra);
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(landed)));
    proxy.etagStyle = {};
  });

  it('bytes altered in transit are fetched again: against the CRC32 the store returns, or against a single-part MD5 ETag', async () => {
    const extra = await anotherExport(series, 1, 79, 'ALTERED');
    const fresh = extra.filter((o) => !landed.some((x) => x.key === o.key));
    await world.put(fresh);
    const [a, b] = [fresh[0]!.key, fresh[1]!.key];
    const getOf = (key: string) => (r: { method: string; path: string }) => r.method === 'GET' && r.path.endsWith(key.slice(key.lastIndexOf('/') + 1));
    // aws.sse is set: the destination takes it as a KMS bucket does
    proxy.etagStyle = { [world.dest]: 'kms' };
    proxy.checksums = new Set([world.cold]);
    // a's GETs carry a CRC32 (the proxy's, of the bytes stored) and b's too: both are altered once
    proxy.alter = [{ match: getOf(a), times: 1 }, { match: getOf(b), times: 1 }];
    const from = proxy.log.length;
    const r = await world.cli(['download', '--from', '2024-05-01', '--to', '2024-05-01', '--verbose']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(proxy.log.slice(from).filter((l) => l.fault === 'altered').length, 2);
    assert.ok(r.stdout.includes(`${a}: checked by CRC32`), r.stdout);
    proxy.checksums = new Set();
    // without a checksum, the MD5 ETag of a single-part object catches it
    await rm(path.join(world.workDir, 'raw'), { recursive: true, force: true });
    proxy.alter = [{ match: getOf(a), times: 1 }];
    const md5 = await world.cli(['download', '--from', '2024-05-01', '--to', '2024-05-01', '--verbose']);
    assert.equal(md5.code, 0, md5.stderr);
    assert.ok(md5.stdout.includes(`${a}: checked by MD5`), md5.stdout);
    proxy.alter = [];
    const run = await world.cli(['run', ...DAYS]);
    proxy.etagStyle = {};
    assert.equal(run.code, 0, run.stderr);
    landed.push(...fresh);
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(landed)));
  });

  it('an upload to a KMS bucket that keeps checksums is verified by the stored CRC32, with no read-back', async () => {
    const more = await anotherExport(series, 2, 80, 'KEPT');
    await world.put(more);
    proxy.etagStyle = { [world.dest]: 'kms' };
    proxy.checksums = new Set([world.dest]);
    const from = proxy.log.length;
    const r = await world.cli(['run', '--from', '2024-05-02', '--to', '2024-05-02']);
    proxy.checksums = new Set();
    proxy.etagStyle = {};
    assert.equal(r.code, 0, r.stderr);
    const data = proxy.log.slice(from).filter((l) => l.path.startsWith(`/${world.dest}/consolidated/`) && l.path.includes('merged_series_'));
    assert.ok(data.some((l) => l.method === 'HEAD') && !data.some((l) => l.method === 'GET'), JSON.stringify(data));
    landed.push(...more);
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(landed)));
  });

  it('an upload that does not read back right is sent again; one that never does is deleted, not left in the destination', async () => {
    proxy.etagStyle = { [world.dest]: 'kms' };
    const readBack = (r: { method: string; path: string }) => r.method === 'GET' && r.path.includes(`/${world.dest}/consolidated/`) && r.path.includes('merged_series_');
    const fresh = await anotherExport(series, 2, 77, 'RESENT');
    await world.put(fresh);
    proxy.alter = [{ match: readBack, times: 1 }];
    const once = await world.cli(['run', ...DAYS]);
    assert.equal(once.code, 0, once.stderr);
    assert.equal(proxy.log.filter((r) => r.fault === 'altered').length >= 1, true);
    landed.push(...fresh);
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(landed)));

    const more = await anotherExport(series, 1, 78, 'NEVER');
    await world.put(more);
    const files = (await world.list(world.dest, 'consolidated/')).map((o) => o.key);
    proxy.alter = [{ match: readBack }];
    const never = await world.cli(['run', ...DAYS], { env: { AWS_MAX_ATTEMPTS: '2' } });
    proxy.alter = [];
    assert.equal(never.code, 1);
    assert.match(never.stderr, /run 2024-05-01: FAILED: upload of .* did not verify \(read back with CRC32/);
    assert.deepEqual((await world.list(world.dest, 'consolidated/')).map((o) => o.key), files, 'the file that did not verify was deleted');
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(landed)), 'what was committed is intact');
    const last = await world.cli(['run', ...DAYS]);
    assert.equal(last.code, 0, last.stderr);
    landed.push(...more);
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(landed)));
    proxy.etagStyle = {};
  });
});

describe('no hangs: a request that is never answered, or a body that stops, is cut off and retried', () => {
  const series = makeSeries({ associated: 4, disassociated: 2 }, 52);
  let aws: Record<string, unknown> = {};
  let world: World;
  let proxy: FaultProxy;
  let objects: ColdObject[];
  before(async () => {
    world = await startWorld(series);
    objects = [...(await generateDay(series, day(1), { exports: [0, 1] })), ...(await generateDay(series, day(2), { exports: [0] }))];
    await world.put(objects);
    proxy = await startFaultProxy(world.s3.endpoint, 1, { accessKeyId: world.s3.accessKeyId, secretAccessKey: world.s3.secretAccessKey, region: world.s3.region });
    aws = { region: 'us-east-1', s3_endpoint: proxy.endpoint, s3_force_path_style: true, first_byte_timeout: 0.5, idle_timeout: 0.5 };
    await world.writeConfig({ timeseries_type: 'ALL', aws }, proxy.endpoint);
  });
  after(async () => {
    await proxy?.stop();
    await world?.stop();
  });

  it('listings, object GETs, bodies cut midway, ledger and data PUTs: every operation goes on, and every record lands once', async () => {
    const cold = (r: { path: string }) => r.path.startsWith(`/${world.cold}`);
    const dest = (r: { path: string }) => r.path.startsWith(`/${world.dest}`);
    proxy.stall = [
      { mode: 'no-answer', times: 1, match: (r) => cold(r) && r.path.includes('list-type=2') },
      { mode: 'no-answer', times: 1, match: (r) => cold(r) && r.method === 'GET' && r.path.endsWith('.avro') },
      { mode: 'stop-body', times: 1, match: (r) => cold(r) && r.method === 'GET' && r.path.endsWith('.avro') },
      { mode: 'no-answer', times: 1, match: (r) => dest(r) && r.method === 'GET' && r.path.includes('ledger.json') },
      { mode: 'no-answer', times: 1, match: (r) => dest(r) && r.method === 'PUT' && r.path.includes('merged_series_') },
      { mode: 'no-answer', times: 1, match: (r) => dest(r) && r.method === 'PUT' && r.path.includes('ledger.json') },
      { mode: 'no-answer', times: 1, match: (r) => dest(r) && r.method === 'HEAD' },
    ];
    // ListTimeSeries too (SiteWise reached directly): its first page is never answered
    await world.writeConfig({ timeseries_type: 'ASSOCIATED', aws: { ...aws, sitewise_endpoint: world.sitewise.endpoint } });
    world.sitewise.stallNext = 1;
    // a guard, not a timing: a run that hangs is killed, and the test fails on it
    const r = await world.cli(['run', ...DAYS], { killAfterMs: 120_000 });
    assert.equal(world.sitewise.stallNext, 0, 'the ListTimeSeries stall was met');
    assert.equal(r.signal, null, 'the run hung and was killed');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      proxy.stall.map((s) => s.times),
      proxy.stall.map(() => 0),
      'every stall was met',
    );
    // ASSOCIATED: the series ListTimeSeries lists as associated
    const associated = objects.filter((o) => series.some((s) => s.associated && o.key.includes(`/raw_${s.id}_`)));
    assert.ok(associated.length > 0 && associated.length < objects.length);
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(associated)));
    proxy.stall = [];
  });
});

describe('no hangs on the large-object paths: SDK GETs and multipart parts', () => {
  const series = makeSeries({ associated: 1, disassociated: 0 }, 60);
  let world: World;
  let proxy: FaultProxy;
  let objects: ColdObject[];
  before(async () => {
    world = await startWorld(series);
    // two objects over the in-memory download limit (4 MiB): a merged day over one part (8 MiB)
    objects = await generateDay(series, day(3), { exports: [0, 1], recordsPerFile: 200_000 });
    await world.put(objects);
    proxy = await startFaultProxy(world.s3.endpoint);
    const aws = { region: 'us-east-1', s3_endpoint: proxy.endpoint, s3_force_path_style: true, first_byte_timeout: 1, idle_timeout: 1 };
    await world.writeConfig({ timeseries_type: 'ALL', aws }, proxy.endpoint);
  });
  after(async () => {
    await proxy?.stop();
    await world?.stop();
  });

  it('a large GET never answered, a large body that stops, and a part never answered are cut off and retried; the day lands', async () => {
    assert.ok(objects.length >= 2 && objects.every((o) => o.body.length > 4 * 1024 * 1024), objects.map((o) => o.body.length).join(', '));
    const objectGet = (r: { method: string; path: string }) => r.method === 'GET' && r.path.startsWith(`/${world.cold}/raw/`) && r.path.includes('x-id=GetObject');
    proxy.stall = [
      { mode: 'no-answer', times: 1, match: objectGet },
      { mode: 'stop-body', times: 1, match: objectGet },
      { mode: 'no-answer', times: 1, match: (r) => r.method === 'PUT' && r.path.includes('partNumber=') },
    ];
    const r = await world.cli(['run', '--from', '2024-05-03', '--to', '2024-05-03'], { killAfterMs: 120_000 });
    assert.equal(r.signal, null, 'the run hung and was killed');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      proxy.stall.map((s) => s.times),
      [0, 0, 0],
      'every stall was met',
    );
    assert.ok(proxy.log.some((l) => l.path.includes('uploadId=') && l.path.includes('partNumber=2')), 'the merged file went up in parts');
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(objects)));
  });
});

describe('throttling slows the run instead of failing days', () => {
  // 2,000+ objects a day, as a plant of a few hundred series exports them
  const series = makeSeries({ associated: 300, disassociated: 220 }, 53);
  let world: World;
  let proxy: FaultProxy;
  const days: ColdObject[][] = [];
  before(async () => {
    world = await startWorld(series);
    for (const d of [1, 2]) days.push(await generateDay(series, day(d), { recordsPerFile: 3 }));
    await world.put(days.flat());
    proxy = await startFaultProxy(world.s3.endpoint, 9);
    await world.writeConfig({ timeseries_type: 'ALL' }, proxy.endpoint);
  });
  after(async () => {
    await proxy?.stop();
    await world?.stop();
  });

  it('a fifth of all requests answered 503 SlowDown: the day lands exactly, and the summary counts the throttling', async () => {
    assert.ok(days[0]!.length >= 2000, `${days[0]!.length} objects`);
    proxy.throttleRate = 0.2;
    const r = await world.cli(['run', '--from', '2024-05-01', '--to', '2024-05-01', '--concurrency', '32']);
    proxy.throttleRate = 0;
    assert.equal(r.code, 0, r.stderr);
    const throttled = Number(/(\d+) retries \((\d+) after throttling\)/.exec(r.stdout)?.[2]);
    assert.ok(throttled >= 300, r.stdout);
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(days[0]!)));
  });

  it('3 s in which every request is answered 503, at the listing, the ledger read, the downloads and the upload: the day lands exactly', async () => {
    const inDay2 = (r: { path: string }) => r.path.includes('startDay%3D2') || r.path.includes('startDay=2');
    proxy.outages = [
      { ms: 3000, trigger: (r) => r.method === 'GET' && r.path.startsWith(`/${world.cold}`) && r.path.includes('list-type=2') && !r.path.includes('max-keys=1') },
      { ms: 3000, trigger: (r) => r.method === 'GET' && r.path.includes('ledger.json') },
      { ms: 3000, trigger: (r) => r.method === 'GET' && r.path.startsWith(`/${world.cold}/raw/`) && inDay2(r) },
      { ms: 3000, trigger: (r) => r.method === 'PUT' && r.path.includes('merged_series_') },
    ];
    const r = await world.cli(['run', '--from', '2024-05-02', '--to', '2024-05-02', '--log-format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(proxy.outages.every((o) => o.until !== undefined), 'every outage happened');
    const end = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; retries?: number; throttled?: number })
      .find((e) => e.type === 'command-end');
    assert.ok(end && end.throttled! > 0 && end.retries! >= end.throttled!, JSON.stringify(end));
    proxy.outages = [];
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(days.flat())));
  });
});

describe('objects that change under us', () => {
  const series = makeSeries({ associated: 4, disassociated: 2 }, 54);
  let world: World;
  let proxy: FaultProxy;
  const all: ColdObject[] = [];
  const fileName = (key: string) => key.slice(key.lastIndexOf('/') + 1);
  const ledgerKeys = async (d: number) =>
    (JSON.parse((await world.get(world.dest, `index/startYear=2024/startMonth=5/startDay=${d}/ledger.json`)).toString()) as { batches: { objects: { key: string }[] }[] }).batches.flatMap((b) =>
      b.objects.map((o) => o.key),
    );
  before(async () => {
    world = await startWorld(series);
    for (const d of [1, 2]) all.push(...(await generateDay(series, day(d), { exports: [0, 1] })));
    await world.put(all);
    proxy = await startFaultProxy(world.s3.endpoint);
    await world.writeConfig({ timeseries_type: 'ALL' }, proxy.endpoint);
  });
  after(async () => {
    await proxy?.stop();
    await world?.stop();
  });

  it('an object deleted after the listing is named and left out of this run, not merged nor in the ledger; the day still lands', async () => {
    const gone = all.find((o) => o.key.includes('startDay=1/'))!;
    proxy.rules = [{ match: (r) => r.method === 'GET' && r.path.endsWith(fileName(gone.key)), status: 404, code: 'NoSuchKey' }];
    const r = await world.cli(['run', '--from', '2024-05-01', '--to', '2024-05-01']);
    proxy.rules = [];
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stderr.includes(`1 object(s) were deleted after the listing, left out of this run: ${gone.key}`), r.stderr);
    assert.ok(!(await ledgerKeys(1)).includes(gone.key));
    const day1 = all.filter((o) => o.key.includes('startDay=1/'));
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(day1.filter((o) => o !== gone))));
    // it is still there after all (the 404 was the proxy's): the next run takes it
    assert.equal((await world.cli(['run', '--from', '2024-05-01', '--to', '2024-05-01'])).code, 0);
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(day1)));
  });

  it('an object archived by a lifecycle rule fails its day with the restore hint before any download; other days go on', async () => {
    const frozen = all.find((o) => o.key.includes('startDay=2/'))!;
    proxy.archived = { match: (key) => key === frozen.key, storageClass: 'DEEP_ARCHIVE' };
    const r = await world.cli(['run', '--from', '2024-05-01', '--to', '2024-05-02']);
    assert.equal(r.code, 1);
    const line = r.stderr.split('\n').find((l) => l.startsWith('run 2024-05-02: FAILED:'));
    assert.ok(line?.includes(`${frozen.key} (DEEP_ARCHIVE)`) && line.includes('aws s3api restore-object'), r.stderr);
    assert.ok(!proxy.log.some((l) => l.fault === 'InvalidObjectState'), 'no GET of it was tried');
    assert.equal((await world.list(world.dest, 'consolidated/startYear=2024/startMonth=5/startDay=2/')).length, 0);
    // an archive tier of INTELLIGENT_TIERING shows in no listing: the GET's 403 InvalidObjectState says it, for that day only
    proxy.archived = { match: (key) => key === frozen.key, storageClass: 'INTELLIGENT_TIERING' };
    const tier = await world.cli(['run', '--from', '2024-05-02', '--to', '2024-05-02']);
    assert.equal(tier.code, 1);
    assert.match(tier.stderr, /run 2024-05-02: FAILED: s3:\/\/cold-[^ ]+ is archived .*restore it/);
    assert.doesNotMatch(tier.stderr, /access denied/);
    proxy.archived = undefined;
    assert.equal((await world.cli(['run', '--from', '2024-05-01', '--to', '2024-05-02'])).code, 0);
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(all)));
  });
});

describe('long runs: credentials that expire during the run are fetched again', () => {
  const series = makeSeries({ associated: 6, disassociated: 2 }, 55);
  let world: World;
  let proxy: FaultProxy;
  let objects: ColdObject[];
  before(async () => {
    world = await startWorld(series);
    objects = [...(await generateDay(series, day(1))), ...(await generateDay(series, day(2)))];
    await world.put(objects);
    proxy = await startFaultProxy(world.s3.endpoint);
    proxy.latencyMs = 40; // a run of several seconds
    await world.writeConfig({ timeseries_type: 'ALL', credentials: { profile: 'expiring' } }, proxy.endpoint);
  });
  after(async () => {
    await proxy?.stop();
    await world?.stop();
  });

  it('a credential_process profile whose credentials expire seconds after they are issued: the run fetches them again, the hand-signed GETs too, and finishes', async (t) => {
    const calls = path.join(world.dir, 'credential-calls');
    const script = path.join(world.dir, 'credentials.cjs');
    // The SDK refreshes credentials that expire within 5 minutes: these are stale 1 s after they are issued.
    await writeFile(
      script,
      `require('fs').appendFileSync(${JSON.stringify(calls)}, 'x');
const n = require('fs').readFileSync(${JSON.stringify(calls)}, 'utf8').length;
console.log(JSON.stringify({ Version: 1, AccessKeyId: ${JSON.stringify(world.s3.accessKeyId)}, SecretAccessKey: ${JSON.stringify(world.s3.secretAccessKey)}, SessionToken: 'session-' + n, Expiration: new Date(Date.now() + 301000).toISOString() }));`,
    );
    const configFile = path.join(world.dir, 'aws-config');
    await writeFile(configFile, `[profile expiring]\ncredential_process = ${process.execPath} ${script}\nregion = us-east-1\n`);
    const r = await world.cli(['run', ...DAYS, '--concurrency', '2'], { env: { AWS_CONFIG_FILE: configFile, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' } });
    assert.equal(r.code, 0, r.stderr);
    const fetched = (await readFile(calls, 'utf8')).length;
    assert.ok(fetched >= 2, `credentials were fetched ${fetched} time(s)`);
    t.diagnostic(`credentials fetched ${fetched} times`);
    // the hand-signed GETs of the objects (no query string) signed with more than one issue of them
    const gets = new Set(proxy.log.filter((l) => l.method === 'GET' && l.path.startsWith(`/${world.cold}/raw/`) && !l.path.includes('?')).map((l) => l.token));
    assert.ok(gets.size >= 2 && !gets.has(undefined), `object GETs carried ${[...gets].join(', ')}`);
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(objects)));
  });
});

describe('a versioned source bucket', () => {
  const series = makeSeries({ associated: 3, disassociated: 1 }, 56);
  let world: World;
  before(async () => {
    world = await startWorld(series);
    await world.writeConfig({ timeseries_type: 'ALL' });
  });
  after(async () => {
    await world?.stop();
  });

  it('the ledger records the version of each object it merged', async (t) => {
    const versioned = await world.s3.client
      .send(new PutBucketVersioningCommand({ Bucket: world.cold, VersioningConfiguration: { Status: 'Enabled' } }))
      .then(() => true, () => false);
    const objects = await generateDay(series, day(1), { exports: [0] });
    await world.put(objects);
    const head = await world.s3.client.send(new HeadObjectCommand({ Bucket: world.cold, Key: objects[0]!.key }));
    if (!versioned || !head.VersionId || head.VersionId === 'null') {
      t.skip(`this S3 server (${world.s3.kind}) keeps no versions; the Ceph RGW run of .ci/run covers it`);
      return;
    }
    assert.equal((await world.cli(['run', '--from', '2024-05-01', '--to', '2024-05-01'])).code, 0);
    const ledger = JSON.parse((await world.get(world.dest, 'index/startYear=2024/startMonth=5/startDay=1/ledger.json')).toString()) as { batches: { objects: { key: string; versionId?: string }[] }[] };
    const recorded = new Map(ledger.batches.flatMap((b) => b.objects.map((o) => [o.key, o.versionId] as const)));
    assert.equal(recorded.size, objects.length);
    for (const o of objects) {
      const { VersionId } = await world.s3.client.send(new HeadObjectCommand({ Bucket: world.cold, Key: o.key }));
      assert.equal(recorded.get(o.key), VersionId, o.key);
    }
  });
});
