/**
 * Many machines at once, sharing nothing but the buckets: each CLI process
 * has its own work dir, as separate hosts do. Leases and conditional
 * commits need a store that honours conditional writes: these tests run on
 * Ceph RGW (npm run test:rgw, in .ci/run); on s3rver, which ignores them,
 * the tool must say so once and keep its single-host behaviour.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DayCommit } from '../src/destination/day-commit.js';
import { leaseKey } from '../src/destination/layout.js';
import { daysDescending, isoDay, type Day } from '../src/partition/day.js';
import { createS3Client } from '../src/s3/create-s3-client.js';
import { S3Bucket } from '../src/s3/s3-bucket.js';
import { DayError } from '../src/shared/errors.js';
import { createLimiter } from '../src/shared/limit.js';
import { startFaultProxy } from './support/fault-proxy.js';
import { decodeAvro, generateDay, makeSeries, recordKey, type ColdObject, type SeriesSpec } from './support/generate-cold-tier.js';
import { recordSet, recordsOf, startWorld, type CliResult, type World } from './support/harness.js';
import { backendKind } from './support/s3-backend.js';

const honours = backendKind() === 'rgw';
const NEEDS_CONDITIONS = honours ? false : 's3rver ignores conditional writes: covered by the RGW pass';
const LAYOUT = { dataPrefix: 'consolidated/', indexPrefix: 'index/' };

const firstDay: Day = { year: 2024, month: 5, day: 1 };
function range(days: number): { days: Day[]; args: string[] } {
  const last = { ...firstDay, day: firstDay.day + days - 1 };
  return { days: daysDescending(firstDay, last).reverse(), args: ['--from', isoDay(firstDay), '--to', isoDay(last)] };
}

/** A late export of `round`: new keys (start time shifted by the round) and new records. */
async function lateExport(series: SeriesSpec[], day: Day, round: number): Promise<ColdObject[]> {
  const objects = await generateDay(series, day, { exports: [1 + (round % 3)], recordsPerFile: 10, seed: 1000 + round });
  return objects.map((o) => ({ ...o, key: o.key.replace(/_(\d+)_([A-Z]+)\.avro$/, (_m, t: string, q: string) => `_${Number(t) + round}_${q}.avro`) }));
}

/** The data files under the destination's day folders, by day folder. */
function byDay(keys: string[]): Map<string, string[]> {
  const days = new Map<string, string[]>();
  for (const k of keys) {
    const folder = k.slice(0, k.lastIndexOf('/'));
    days.set(folder, [...(days.get(folder) ?? []), k]);
  }
  return days;
}

function events(r: CliResult): { type: string; stage: string; day?: string; status?: string; reason?: string; busy?: number; level?: string; message?: string }[] {
  return (r.stdout + r.stderr)
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as ReturnType<typeof events>[number]);
}

describe('many machines at once', () => {
  const series = makeSeries({ associated: 10, disassociated: 2 }, 61);
  let world: World;
  let scratch: string;
  before(async () => {
    world = await startWorld(series);
    scratch = await mkdtemp(path.join(os.tmpdir(), 'hosts-'));
  });
  after(async () => {
    await world?.stop();
    await rm(scratch, { recursive: true, force: true });
  });
  const workDir = (name: string) => ['--work-dir', path.join(scratch, name)];

  it('on a store that ignores conditional writes: one warning, and runs land every record once as before; required refuses to start', { skip: honours ? 'RGW honours conditional writes' : false }, async () => {
    await world.writeConfig({ timeseries_type: 'ALL', aws: { conditional_writes: 'auto' } });
    const { days, args } = range(2);
    const landed = (await Promise.all(days.map((d) => generateDay(series, d, { exports: [0, 1] })))).flat();
    await world.put(landed);
    const first = await world.cli(['run', ...args, ...workDir('single')]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stderr.match(/ignores conditional writes/g)?.length, 1, first.stderr);
    assert.match(first.stderr, /WARNING: s3:\/\/dest-\S+ ignores conditional writes \(If-None-Match and If-Match on PUT\): no per-day leases; run one host at a time/);
    const late = await lateExport(series, days[0]!, 1);
    await world.put(late);
    assert.equal((await world.cli(['run', ...args, ...workDir('single')])).code, 0);
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf([...landed, ...late])));
    assert.deepEqual((await world.list(world.dest, 'index/')).filter((o) => o.key.includes('lease') || o.key.includes('probe')), [], 'no lease or probe object left');

    await world.writeConfig({ timeseries_type: 'ALL', aws: { conditional_writes: 'required' } });
    const refused = await world.cli(['run', ...args, ...workDir('single')]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /aws\.conditional_writes is required, but s3:\/\/dest-\S+ ignores conditional writes/);
  });

  it('two commits on one day never overwrite each other: a disjoint batch is committed on top, an overlapping one is dropped with its data file', { skip: NEEDS_CONDITIONS }, async () => {
    const client = createS3Client({ endpoint: world.s3.endpoint, region: world.s3.region, forcePathStyle: true, maxSockets: 4 });
    const store = new S3Bucket(client, world.dest);
    try {
      assert.deepEqual(await store.probeConditionalWrites('commit-test-index/probe.tmp'), { createIfAbsent: true, updateIfMatch: true });
      const day = { year: 2023, month: 7, day: 9 };
      const options = { signal: undefined, conditional: true };
      const file = path.join(scratch, 'batch.avro');
      await writeFile(file, 'not read: only uploaded');
      const object = (key: string) => ({ key, size: 1, etag: '0'.repeat(32) });
      const batch = (name: string, keys: string[]) => ({ file: `merged_series_v1-${name.repeat(24).slice(0, 24)}.avro`, records: keys.length, objects: keys.map(object), seriesIds: [] });
      const upload = { contentType: 'application/octet-stream', transfers: createLimiter(2) };
      // three runs plan the day before any of them commits
      // a layout of its own: its data files are stand-ins, not Avro
      const layout = { dataPrefix: 'commit-test/', indexPrefix: 'commit-test-index/' };
      const [a, b, c] = await Promise.all([1, 2, 3].map(() => DayCommit.open(store, layout, day, options)));
      await a!.commit(batch('a', ['k1', 'k2']), file, upload);
      await b!.commit(batch('b', ['k3']), file, upload);
      await assert.rejects(c!.commit(batch('c', ['k2', 'k4']), file, upload), (err: Error) => err instanceof DayError && /another run committed 1 of this batch's objects \(e\.g\. k2\) first; dropped this batch/.test(err.message));
      const ledger = (await DayCommit.open(store, layout, day, options)).ledger;
      assert.deepEqual(
        ledger.batches.map((x) => x.objects.map((o) => o.key)),
        [['k1', 'k2'], ['k3']],
      );
      const files = (await store.list('commit-test/')).map((o) => o.key.slice(o.key.lastIndexOf('/') + 1));
      assert.deepEqual(files.sort(), [batch('a', []).file, batch('b', []).file].sort(), 'the dropped batch left no data file');
    } finally {
      await store.destroy();
      client.destroy();
    }
  });

  it('4 hosts over the same 6 days for 10 rounds with late exports: every record once, and never a record in two data files at any moment', { skip: NEEDS_CONDITIONS, timeout: 900_000 }, async () => {
    await world.writeConfig({ timeseries_type: 'ALL' });
    const { days, args } = range(6);
    const landed = (await Promise.all(days.map((d) => generateDay(series, d, { exports: [0], recordsPerFile: 10 })))).flat();
    await world.put(landed);

    // the sampler: lists the data files again and again while the hosts run, keeping a copy of each file it sees
    const copies = new Map<string, string[]>();
    let samples = 0;
    let running = true;
    const duplicates: string[] = [];
    const sampler = (async () => {
      while (running) {
        const keys = (await world.list(world.dest, 'consolidated/')).map((o) => o.key);
        for (const [folder, files] of byDay(keys)) {
          const seen = new Map<string, string>();
          for (const key of files) {
            if (!copies.has(key)) {
              const body = await world.get(world.dest, key).catch(() => undefined);
              if (!body) continue; // removed since the listing
              copies.set(key, (await decodeAvro(body)).records.map(recordKey));
            }
            for (const record of copies.get(key)!) {
              const other = seen.get(record);
              if (other && other !== key) duplicates.push(`${folder}: a record in ${other} and ${key}`);
              seen.set(record, key);
            }
          }
        }
        samples++;
      }
    })();

    const busyDays: string[] = [];
    try {
      for (let round = 0; round < 10; round++) {
        if (round > 0) {
          const late = (await Promise.all(days.filter((_, i) => (i + round) % 2 === 0).map((d) => lateExport(series, d, round)))).flat();
          await world.put(late);
          landed.push(...late);
        }
        const runs = await Promise.all([0, 1, 2, 3].map((host) => world.cli(['run', ...args, ...workDir(`host${host}`), '--log-format', 'json', '--concurrency', '4'])));
        for (const r of runs) {
          assert.equal(r.code, 0, r.stderr);
          for (const e of events(r)) if (e.type === 'day-end' && e.status === 'busy') busyDays.push(e.day!);
        }
      }
      const last = await world.cli(['run', ...args, ...workDir('host0')]);
      assert.equal(last.code, 0, last.stderr);
    } finally {
      running = false;
      await sampler;
    }
    assert.deepEqual(duplicates.slice(0, 5), [], `over ${samples} samples`);
    assert.ok(samples > 10, `the sampler looked ${samples} times`);
    assert.ok(busyDays.length > 0, 'hosts met busy days (leases were taken)');
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(landed)));
  });

  it('a day another run holds is busy: skipped with the holder and expiry named, counted, and not a failure', { skip: NEEDS_CONDITIONS }, async () => {
    await world.writeConfig({ timeseries_type: 'ALL' });
    const day = { year: 2024, month: 6, day: 1 };
    const other = { year: 2024, month: 6, day: 2 };
    const objects = [...(await generateDay(series, day, { exports: [0] })), ...(await generateDay(series, other, { exports: [0] }))];
    await world.put(objects);
    const expiresAt = new Date(Date.now() + 600_000).toISOString();
    const lease = { version: 1, day: isoDay(day), holder: { host: 'batch-node-7', pid: 4242, runId: 'feedbeef', command: 'run' }, takenAt: new Date().toISOString(), expiresAt };
    await world.put([{ key: leaseKey(LAYOUT, day), body: JSON.stringify(lease) }], world.dest);
    const args = ['--from', isoDay(day), '--to', isoDay(other)];
    const text = await world.cli(['run', ...args, ...workDir('busy')]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`busy: leased by run on batch-node-7 \\(pid 4242, run feedbeef\\) until ${expiresAt.replace(/\./g, '\\.')}`));
    assert.match(text.stdout, /run \S+: 1 days done, 0 skipped, 1 busy \(another run holds them\), 0 failed/);
    await world.put([{ key: leaseKey(LAYOUT, day), body: JSON.stringify({ ...lease, expiresAt: new Date(Date.now() + 600_000).toISOString() }) }], world.dest);
    const json = events(await world.cli(['run', ...args, ...workDir('busy'), '--log-format', 'json']));
    assert.deepEqual(json.filter((e) => e.type === 'day-end').map((e) => [e.day, e.status]).sort(), [[isoDay(day), 'busy'], [isoDay(other), 'skipped']]);
    assert.equal(json.find((e) => e.type === 'command-end')!.busy, 1);
    // released by its holder: the next run does the day
    await world.put([{ key: leaseKey(LAYOUT, day), body: JSON.stringify({ ...lease, released: true }) }], world.dest);
    assert.equal((await world.cli(['run', ...args, ...workDir('busy')])).code, 0);
    const records = recordSet(await world.destinationRecords('consolidated/startYear=2024/startMonth=6/'));
    assert.deepEqual(records, recordSet(recordsOf(objects)));
  });

  it('a holder killed with SIGKILL keeps the day busy until its lease expires, then the lease is taken over and nothing is lost', { skip: NEEDS_CONDITIONS }, async () => {
    await world.writeConfig({ timeseries_type: 'ALL' });
    const day = { year: 2024, month: 7, day: 1 };
    const objects = await generateDay(series, day, { recordsPerFile: 200 });
    await world.put(objects);
    const args = ['--from', isoDay(day), '--to', isoDay(day)];
    const env = { SITEWISE_REPARTITION_LEASE_SECONDS: '4' };
    const killed = await world.cli(['run', ...args, ...workDir('killed'), '--concurrency', '1'], { env, killWhen: (out) => out.includes('Downloading S3 objects') });
    assert.equal(killed.signal, 'SIGKILL');
    const blocked = await world.cli(['run', ...args, ...workDir('taker')], { env });
    assert.equal(blocked.code, 0, blocked.stderr);
    assert.match(blocked.stdout, /busy: leased by run on /);
    await new Promise((resolve) => setTimeout(resolve, 4500));
    const taker = await world.cli(['run', ...args, ...workDir('taker')], { env });
    assert.equal(taker.code, 0, taker.stderr);
    assert.match(taker.stderr, /WARNING: took over the lease of run on .*: it expired without release/);
    assert.match(taker.stdout, /run 2024-07-01: done/);
    assert.deepEqual(recordSet(await world.destinationRecords('consolidated/startYear=2024/startMonth=7/')), recordSet(recordsOf(objects)));
  });

  it('a run that loses its lease stops work on the day and never commits it', { skip: NEEDS_CONDITIONS }, async () => {
    const proxy = await startFaultProxy(world.s3.endpoint, 5);
    try {
      await world.writeConfig({ timeseries_type: 'ALL' }, proxy.endpoint);
      const day = { year: 2024, month: 8, day: 1 };
      await world.put(await generateDay(series, day, { recordsPerFile: 50 }));
      proxy.latencyMs = 150;
      const args = ['--from', isoDay(day), '--to', isoDay(day)];
      const running = world.cli(['run', ...args, ...workDir('loser'), '--concurrency', '1', '--log-format', 'json'], { env: { SITEWISE_REPARTITION_LEASE_SECONDS: '2' } });
      // another run takes the day over (as one would after an expiry it saw)
      let taken = false;
      for (let i = 0; i < 100 && !taken; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        const current = await world.get(world.dest, leaseKey(LAYOUT, day)).catch(() => undefined);
        if (current) {
          const lease = JSON.parse(current.toString()) as { holder: object };
          await world.put([{ key: leaseKey(LAYOUT, day), body: JSON.stringify({ ...lease, holder: { host: 'other', pid: 1, runId: 'other', command: 'run' }, expiresAt: new Date(Date.now() + 600_000).toISOString() }) }], world.dest);
          taken = true;
        }
      }
      assert.ok(taken, 'the run took the lease');
      const r = await running;
      assert.equal(r.code, 1, r.stderr);
      const end = events(r).find((e) => e.type === 'day-end')!;
      assert.equal(end.status, 'failed');
      assert.match(end.reason ?? (end as { error?: string }).error ?? '', /lease .* was taken over by another run; this run stopped work on the day and did not commit it/);
      assert.deepEqual(await world.list(world.dest, 'index/startYear=2024/startMonth=8/startDay=1/ledger.json'), [], 'no commit');
    } finally {
      await proxy.stop();
    }
  });
});

describe('shards', () => {
  const series = makeSeries({ associated: 4, disassociated: 1 }, 62);
  let world: World;
  let scratch: string;
  before(async () => {
    world = await startWorld(series);
    scratch = await mkdtemp(path.join(os.tmpdir(), 'shards-'));
    await world.writeConfig({ timeseries_type: 'ALL' });
  });
  after(async () => {
    await world?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('shards 0..3 over 12 days: each day is processed by exactly one shard, and together they land every record once', async () => {
    const { days, args } = range(12);
    const objects = (await Promise.all(days.map((d) => generateDay(series, d, { exports: [0, 2] })))).flat();
    await world.put(objects);
    const shardArgs = [['--shard', '0/4'], ['--shard', '1/4'], ['--shard-count', '4'], ['--shard-count', '4']];
    const env: Record<string, string>[] = [{}, {}, { JOB_COMPLETION_INDEX: '2' }, { AWS_BATCH_JOB_ARRAY_INDEX: '3' }];
    const runs = await Promise.all(shardArgs.map((s, i) => world.cli(['run', ...args, ...s, '--work-dir', path.join(scratch, `s${i}`), '--log-format', 'json'], { env: env[i] })));
    const doneBy = new Map<string, number[]>();
    for (const [i, r] of runs.entries()) {
      assert.equal(r.code, 0, r.stderr);
      assert.ok(events(r).some((e) => e.message === `shard ${i}/4: 3 of 12 days`), `shard ${i} says its share`);
      for (const e of events(r)) if (e.type === 'day-end' && e.status === 'done') doneBy.set(e.day!, [...(doneBy.get(e.day!) ?? []), i]);
    }
    assert.deepEqual([...doneBy.keys()].sort(), days.map(isoDay).sort());
    assert.ok([...doneBy.values()].every((shards) => shards.length === 1), JSON.stringify([...doneBy]));
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(objects)));
  });

  it('a shard over many days calls ListTimeSeries once for the run, not once per day', async () => {
    await world.writeConfig({ timeseries_type: 'ASSOCIATED' });
    const late = (await Promise.all(range(12).days.map((d, i) => (i % 4 === 1 ? lateExport(series, d, 7) : Promise.resolve([]))))).flat();
    await world.put(late);
    world.sitewise.requests.length = 0;
    const r = await world.cli(['run', ...range(12).args, '--shard', '1/4', '--work-dir', path.join(scratch, 'sitewise')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /run \S+: 3 days done/);
    assert.equal(world.sitewise.requests.length, 1, JSON.stringify(world.sitewise.requests));
    await world.writeConfig({ timeseries_type: 'ALL' });
  });

  it('a bad shard is a usage error naming the flag or the variable', async () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [['--shard', '4/4'], {}, /--shard: '4\/4' must be INDEX\/COUNT with 0 <= INDEX < COUNT/],
      [['--shard-count', '4'], {}, /--shard-count 4: no shard index in JOB_COMPLETION_INDEX or AWS_BATCH_JOB_ARRAY_INDEX/],
      [['--shard-count', '4'], { AWS_BATCH_JOB_ARRAY_INDEX: '9' }, /AWS_BATCH_JOB_ARRAY_INDEX: '9' must be a whole number from 0 to 3 for --shard-count 4/],
    ];
    for (const [flags, env, message] of cases) {
      const r = await world.cli(['run', '--from', '2024-05-01', '--to', '2024-05-02', ...flags], { env });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
    }
  });
});

describe('plan, for a Step Functions Distributed Map', () => {
  const series = makeSeries({ associated: 3, disassociated: 1 }, 63);
  let world: World;
  before(async () => {
    world = await startWorld(series);
    await world.writeConfig({ timeseries_type: 'ALL' });
  });
  after(async () => {
    await world?.stop();
  });

  it('writes one item per day with something new (its listed and new objects and bytes), to stdout, a file or S3, and writes nothing else', async () => {
    const { days, args } = range(4);
    const byDayObjects = await Promise.all(days.map((d) => generateDay(series, d, { exports: [0, 1] })));
    // day 1 has no data; day 2 is merged already, then gets one late export
    await world.put([...byDayObjects[1]!, ...byDayObjects[2]!, ...byDayObjects[3]!]);
    assert.equal((await world.cli(['run', '--from', isoDay(days[1]!), '--to', isoDay(days[1]!)])).code, 0);
    const late = await lateExport(series, days[1]!, 1);
    await world.put(late);
    const before = await world.list(world.dest);

    const r = await world.cli(['plan', ...args]);
    assert.equal(r.code, 0, r.stderr);
    const items = JSON.parse(r.stdout) as { day: string; listedObjects: number; newObjects: number; newBytes: number; archivedObjects: number }[];
    const bytes = (objects: ColdObject[]) => objects.reduce((n, o) => n + o.body.length, 0);
    assert.deepEqual(items, [
      { day: isoDay(days[1]!), listedObjects: byDayObjects[1]!.length + late.length, newObjects: late.length, newBytes: bytes(late), archivedObjects: 0 },
      { day: isoDay(days[2]!), listedObjects: byDayObjects[2]!.length, newObjects: byDayObjects[2]!.length, newBytes: bytes(byDayObjects[2]!), archivedObjects: 0 },
      { day: isoDay(days[3]!), listedObjects: byDayObjects[3]!.length, newObjects: byDayObjects[3]!.length, newBytes: bytes(byDayObjects[3]!), archivedObjects: 0 },
    ]);
    assert.match(r.stderr, /plan \S+: 3 days done, 1 skipped/, 'the summary goes to stderr, the plan alone to stdout');

    const all = await world.cli(['plan', ...args, '--all-days', '--output', 'plan.json']);
    assert.equal(all.code, 0, all.stderr);
    const written = JSON.parse(await import('node:fs/promises').then((fs) => fs.readFile(path.join(world.dir, 'plan.json'), 'utf8'))) as { day: string; newObjects: number }[];
    assert.deepEqual(written.map((i) => [i.day, i.newObjects]), [[isoDay(days[0]!), 0], ...items.map((i) => [i.day, i.newObjects])]);

    const toS3 = await world.cli(['plan', ...args, '--output', `s3://${world.cold}/plans/range.json`]);
    assert.equal(toS3.code, 0, toS3.stderr);
    assert.deepEqual(JSON.parse((await world.get(world.cold, 'plans/range.json')).toString()), items);
    assert.deepEqual(await world.list(world.dest), before, 'plan wrote nothing to the destination');
  });
});
