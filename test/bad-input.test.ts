import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import avro from 'avsc';
import { breakFirstCrc, encodeAvro, generateDay, makeSeries, type ColdObject } from './support/generate-cold-tier.js';
import { recordSet, recordsOf, startWorld, type World } from './support/harness.js';

const day = (d: number) => ({ year: 2024, month: 4, day: d });

describe('bad input: a clear error per day, nothing lost, other days go on', () => {
  const series = makeSeries({ associated: 3, disassociated: 2 }, 41);
  let world: World;
  let good: ColdObject[];
  const bad = new Map<number, { key: string; why: RegExp }>();

  before(async () => {
    world = await startWorld(series);
    await world.writeConfig({ timeseries_type: 'ALL', date_range: { date_start: '2024-04-01', date_end: '2024-04-06' } });
    good = [];
    for (let d = 1; d <= 6; d++) good.push(...(await generateDay(series, day(d), { exports: [0, 1] })));
    const one = (d: number) => good.find((o) => o.key.includes(`startDay=${d}/`))!;
    const otherSchema = avro.Type.forSchema({ type: 'record', name: 'AggDatum', fields: [{ name: 'seriesId', type: 'string' }, { name: 'average', type: 'double' }] });
    const injected: { d: number; body: Buffer; why: RegExp }[] = [
      { d: 2, body: breakFirstCrc(one(2).body), why: /CRC32 does not match/ },
      { d: 3, body: one(3).body.subarray(0, Math.floor(one(3).body.length * 0.7)), why: /truncated/ },
      { d: 4, body: Buffer.from('{"this": "is not avro"}'), why: /not an Avro object-container file/ },
      { d: 5, body: await encodeAvro([{ seriesId: 'x', average: 1 }], 'snappy', otherSchema), why: /schema differs from the rest of its day.*fields average have no place in it/ },
      { d: 6, body: Buffer.alloc(0), why: /empty file \(0 bytes\)/ },
    ];
    const objects: { key: string; body: Buffer }[] = [...good];
    for (const { d, body, why } of injected) {
      const key = `raw/startYear=2024/startMonth=4/startDay=${d}/seriesBucket=ee/raw_bad-series-${d}_${Date.UTC(2024, 3, d) / 1000}_GOOD.avro`;
      objects.push({ key, body });
      bad.set(d, { key, why });
    }
    await world.put(objects);
  });
  after(async () => {
    await world?.stop();
  });

  it('fails each bad day naming the object and what is wrong; uploads the good day; keeps the bad days local', async () => {
    assert.equal((await world.cli(['download'])).code, 0);
    const merge = await world.cli(['merge', '--crc-check']);
    assert.equal(merge.code, 1);
    for (const [d, { key, why }] of bad) {
      const line = merge.stderr.split('\n').find((l) => l.startsWith(`merge 2024-04-0${d}: FAILED:`));
      assert.ok(line, `no failure line for day ${d}:\n${merge.stderr}`);
      assert.ok(line.includes(key), line);
      assert.match(line, why);
    }
    assert.match(merge.stdout, /merge: 1 days done, 0 skipped, 5 failed/);
    assert.doesNotMatch(merge.stderr, /\n\s+at /);
    // a failed day leaves no merged folder behind, only its downloads
    assert.deepEqual(await readdir(path.join(world.workDir, 'merged')), ['2024-4-1']);

    const upload = await world.cli(['upload']);
    assert.equal(upload.code, 0, upload.stderr);
    // the good day landed in full; the bad days did not land at all
    const goodDay = good.filter((o) => o.key.includes('startDay=1/'));
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(goodDay)));
    assert.deepEqual((await world.list(world.dest, 'index/')).map((o) => o.key.split('/')[3]), ['startDay=1', 'startDay=1']);
    // the bad days' downloads are kept for inspection
    const kept = await readdir(path.join(world.workDir, 'raw'));
    assert.deepEqual(kept.sort(), ['2024-4-2', '2024-4-3', '2024-4-4', '2024-4-5', '2024-4-6']);
  });

  it('a full disk fails the day with a clear message and loses nothing', async (t) => {
    const mnt = path.join(world.dir, 'tiny');
    await mkdir(mnt, { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs', mnt], { stdio: 'ignore' });
    } catch {
      t.skip('cannot mount a small tmpfs here (needs root)');
      return;
    }
    try {
      const r = await world.cli(['download', '--work-dir', mnt, '--from', '2024-04-02', '--to', '2024-04-02']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /download 2024-04-02: FAILED: disk full \(.*ENOSPC.*\); free space in the work dir and run again/);
      assert.ok(!existsSync(path.join(mnt, 'raw', '2024-4-2', 'manifest.json')), 'an incomplete day is not handed to merge');
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});

describe('a key that would point outside the work dir', () => {
  const series = makeSeries({ associated: 2, disassociated: 1 }, 42);
  let world: World;
  before(async () => {
    world = await startWorld(series);
    await world.writeConfig({ timeseries_type: 'ALL', date_range: { date_start: '2024-04-07', date_end: '2024-04-07' } });
    await world.put(await generateDay(series, day(7), { exports: [0] }));
  });
  after(async () => {
    await world?.stop();
  });

  it('refuses the day, naming the key, and writes nothing for it', async (t) => {
    const key = `raw/startYear=2024/startMonth=4/startDay=7/seriesBucket=00/../../../../../../etc/raw_evil_${Date.UTC(2024, 3, 7) / 1000}_GOOD.avro`;
    try {
      await world.put([{ key, body: 'x' }]);
      if (!(await world.list(world.cold, 'raw/startYear=2024/startMonth=4/startDay=7/')).some((o) => o.key === key)) throw new Error('not stored as given');
    } catch {
      t.skip(`this S3 server (${world.s3.kind}) does not store keys with '..' segments; the Ceph RGW run of .ci/run does`);
      return;
    }
    const r = await world.cli(['download']);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(`download 2024-04-07: FAILED: key(s) with '.' or '..' path segments could point outside the day folder; refusing the day (nothing was downloaded): ${key}`), r.stderr);
    assert.ok(!existsSync(path.join(world.workDir, 'raw', '2024-4-7')));
    assert.ok(!existsSync(path.join(world.dir, 'etc')));
  });
});

describe('a damaged or hand-edited hand-off file or ledger', () => {
  const series = makeSeries({ associated: 3, disassociated: 1 }, 43);
  let world: World;
  let objects: ColdObject[];
  const rawDay = () => path.join(world.workDir, 'raw', '2024-4-8');
  const mergedDay = () => path.join(world.workDir, 'merged', '2024-4-8');
  const edit = async (file: string, change: (doc: Record<string, unknown>) => void) => {
    const doc = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    change(doc);
    await writeFile(file, JSON.stringify(doc));
  };
  before(async () => {
    world = await startWorld(series);
    await world.writeConfig({ timeseries_type: 'ALL', date_range: { date_start: '2024-04-08', date_end: '2024-04-08' } });
    objects = await generateDay(series, day(8), { exports: [0] });
    await world.put(objects);
  });
  after(async () => {
    await world?.stop();
  });

  it('names the file, the field and the fix, fails only that day, and loses nothing once mended', async () => {
    assert.equal((await world.cli(['download'])).code, 0);
    const manifest = path.join(rawDay(), 'manifest.json');
    await edit(manifest, (m) => ((m.objects as { size: unknown }[])[1]!.size = '12'));
    const merge = await world.cli(['merge']);
    assert.equal(merge.code, 1);
    assert.ok(
      merge.stderr.includes(`merge 2024-04-08: FAILED: ${manifest}: field objects[1].size: expected a whole number of 0 or more, got "12"; delete the day folder and run download again`),
      merge.stderr,
    );
    assert.doesNotMatch(merge.stderr, /\n\s+at /);

    assert.equal((await world.cli(['download'])).code, 0);
    assert.equal((await world.cli(['merge'])).code, 0);
    const batch = path.join(mergedDay(), 'batch.json');
    await edit(batch, (b) => delete b.records);
    const upload = await world.cli(['upload']);
    assert.equal(upload.code, 1);
    assert.ok(upload.stderr.includes(`upload 2024-04-08: FAILED: ${batch}: field records: expected a whole number of 0 or more, got nothing; delete the merged day folder and run merge again`), upload.stderr);
    assert.deepEqual(await world.list(world.dest), [], 'nothing was uploaded');

    await rm(mergedDay(), { recursive: true });
    assert.equal((await world.cli(['merge'])).code, 0);
    assert.equal((await world.cli(['upload'])).code, 0);

    const ledgerKey = 'index/startYear=2024/startMonth=4/startDay=8/ledger.json';
    const ledger = await world.get(world.dest, ledgerKey);
    const damaged = JSON.parse(ledger.toString()) as { batches: { objects: { etag: unknown }[] }[] };
    damaged.batches[0]!.objects[0]!.etag = 5;
    await world.put([{ key: ledgerKey, body: JSON.stringify(damaged) }], world.dest);
    const again = await world.cli(['download']);
    assert.equal(again.code, 1);
    assert.ok(
      again.stderr.includes(`download 2024-04-08: FAILED: s3://${world.dest}/${ledgerKey}: the ledger's field batches[0].objects[0].etag: expected a string, got 5; restore it from a backup or version (nothing was changed)`),
      again.stderr,
    );
    assert.equal((await world.get(world.dest, ledgerKey)).toString(), JSON.stringify(damaged), 'the ledger was left as it was');

    await world.put([{ key: ledgerKey, body: ledger }], world.dest);
    assert.equal((await world.cli(['run'])).code, 0);
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(objects)));
  });
});

describe('a day with several bad objects', () => {
  const series = makeSeries({ associated: 3, disassociated: 1 }, 44);
  let world: World;
  const badKeys: string[] = [];
  before(async () => {
    world = await startWorld(series);
    await world.writeConfig({ timeseries_type: 'ALL', date_range: { date_start: '2024-04-09', date_end: '2024-04-09' } });
    const objects: { key: string; body: Buffer }[] = await generateDay(series, day(9), { exports: [0] });
    const ts = Date.UTC(2024, 3, 9) / 1000;
    for (const [i, body] of [breakFirstCrc(objects[0]!.body), Buffer.from('not avro at all'), objects[1]!.body.subarray(0, objects[1]!.body.length - 30)].entries()) {
      const key = `raw/startYear=2024/startMonth=4/startDay=9/seriesBucket=ee/raw_bad-${i}_${ts}_GOOD.avro`;
      objects.push({ key, body });
      badKeys.push(key);
    }
    await world.put(objects);
  });
  after(async () => {
    await world?.stop();
  });

  it('names every one of them in the day\'s message, not only the first', async () => {
    assert.equal((await world.cli(['download'])).code, 0);
    const merge = await world.cli(['merge', '--crc-check']);
    assert.equal(merge.code, 1);
    const line = merge.stderr.split('\n').find((l) => l.startsWith('merge 2024-04-09: FAILED: 3 bad objects:'));
    assert.ok(line, merge.stderr);
    for (const key of badKeys) assert.ok(line.includes(key), `${key} in ${line}`);
  });

  it('--skip-bad-objects merges the rest, records each bad one in the ledger with why, and tries it again only once it has changed', async () => {
    const merge = await world.cli(['merge', '--crc-check', '--skip-bad-objects']);
    assert.equal(merge.code, 0, merge.stderr);
    for (const key of badKeys) assert.ok(merge.stderr.includes(`skipping s3://${world.cold}/${key} (--skip-bad-objects):`), merge.stderr);
    assert.equal((await world.cli(['upload'])).code, 0);
    const ledger = JSON.parse((await world.get(world.dest, 'index/startYear=2024/startMonth=4/startDay=9/ledger.json')).toString()) as {
      batches: { objects: { key: string }[]; skipped?: { key: string; reason: string }[] }[];
    };
    assert.deepEqual(ledger.batches[0]!.skipped!.map((o) => o.key), badKeys);
    assert.ok(ledger.batches[0]!.skipped!.every((o) => o.reason.length > 0));
    assert.ok(!ledger.batches[0]!.objects.some((o) => badKeys.includes(o.key)));
    const good = (await generateDay(series, day(9), { exports: [0] }));
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(recordsOf(good)));
    // unchanged: not downloaded again
    const again = await world.cli(['download']);
    assert.match(again.stderr, /3 objects skipped as bad by an earlier merge/);
    assert.match(again.stdout, /Skip, no new data/);
    // one is replaced by a good body (another ETag): it is taken again, and lands
    const mended = await encodeAvro(good[0]!.records.map((r) => ({ ...r, seriesId: 'mended' })), 'snappy');
    await world.put([{ key: badKeys[1]!, body: mended }]);
    assert.equal((await world.cli(['run', '--from', '2024-04-09', '--to', '2024-04-09'])).code, 0);
    const landed = await world.destinationRecords();
    assert.equal(landed.filter((r) => r.seriesId === 'mended').length, good[0]!.records.length);
    assert.equal(landed.length, recordsOf(good).length + good[0]!.records.length);
  });
});
