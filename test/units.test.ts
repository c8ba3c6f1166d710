import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError } from '../src/config/config-error.js';
import { loadConfig, parseDayExpression, resolveConfig } from '../src/config/load-config.js';
import { batchHash, mergedFileName } from '../src/destination/layout.js';
import { AVRO } from '../src/output/avro-output.js';
import { dayPrefix, daysDescending } from '../src/partition/day.js';
import { dayFolderName, localName, parseDayFolderName } from '../src/workdir/layout.js';
import { parseDataKey } from '../src/partition/parse-data-key.js';
import { selectObjects } from '../src/partition/select-objects.js';
import { isTransient, permanentFault, retryClass } from '../src/shared/aws-errors.js';
import { createRetryPolicy, DEFAULT_MAX_ATTEMPTS, retryPolicyFromEnv, THROTTLED_ATTEMPTS } from '../src/shared/retry-policy.js';
import { SendRate } from '../src/shared/send-rate.js';
import { atPriority, createLimiter } from '../src/shared/limit.js';
import { arrayOf, checkShape, count, object, optional, string } from '../src/shared/json-shape.js';
import { checksumOf, createChecksum } from '../src/shared/checksums.js';
import { ContentChecker, etagIsMd5, fullObjectChecksum, type IntegrityHeaders } from '../src/s3/content-check.js';
import { AvroFormatError } from '../src/avro/avro-format-error.js';
import { BlockCursor } from '../src/avro/flat-schema.js';
import { ColumnData } from '../src/output/avro-columns.js';
import { compressSnappyBlock, decompressBlock, decompressBlockInto, type Scratch } from '../src/avro/codec.js';
import { prng } from './support/generate-cold-tier.js';

const A = '7020c8e2-e6db-40fa-9845-ed0dddd4c77d';
const P = '95e63da7-d34e-43e1-bc6f-1b490154b07a';

describe('parseDataKey', () => {
  const cases: [string, ReturnType<typeof parseDataKey>][] = [
    [`raw/startYear=2021/startMonth=1/startDay=2/seriesBucket=3f/raw_${A}_${P}_1609577700_GOOD.avro`, { kind: 'raw', seriesId: `${A}_${P}`, startTimestamp: 1609577700, quality: 'GOOD' }],
    [`x/raw/startYear=2021/startMonth=1/startDay=2/seriesBucket=00/raw_${A}_1609577700_BAD.avro`, { kind: 'raw', seriesId: A, startTimestamp: 1609577700, quality: 'BAD' }],
    [`agg/startYear=2021/startMonth=1/startDay=2/seriesBucket=00/agg_${A}_1609577700_UNCERTAIN.avro`, { kind: 'agg', seriesId: A, startTimestamp: 1609577700, quality: 'UNCERTAIN' }],
    ['raw/startYear=2021/startMonth=1/startDay=2/seriesBucket=00/notes.txt', undefined],
    [`raw/startYear=2021/startMonth=1/startDay=2/seriesBucket=00/raw_${A}_GOOD.avro`, undefined],
    [`raw/startYear=2021/startMonth=1/startDay=2/seriesBucket=00/raw_${A}_16095_GOOD.avro.tmp`, undefined],
    ['asset_metadata/a.ndjson', undefined],
  ];
  for (const [key, expected] of cases) it(key.slice(key.lastIndexOf('/') + 1), () => assert.deepEqual(parseDataKey(key), expected));
});

describe('selectObjects', () => {
  const key = (id: string, ts: number) => `raw/startYear=2024/startMonth=3/startDay=1/seriesBucket=00/raw_${id}_${ts}_GOOD.avro`;
  const listed = [
    { key: key(`${A}_${P}`, 1), size: 10, etag: 'a' },
    { key: key(`${A}_${P}`, 2), size: 10, etag: 'b' },
    { key: key('other', 1), size: 10, etag: 'c' },
    { key: key('changed', 1), size: 11, etag: 'd2' },
    { key: 'raw/startYear=2024/startMonth=3/startDay=1/junk.json', size: 1, etag: 'e' },
    { key: `raw/startYear=2024/startMonth=3/startDay=1/../../../etc/${key('evil', 1).split('/').pop()!}`, size: 1, etag: 'f' },
  ];
  const merged = new Map([
    [key(`${A}_${P}`, 1), { key: key(`${A}_${P}`, 1), size: 10, etag: 'a' }],
    [key('changed', 1), { key: key('changed', 1), size: 10, etag: 'd1' }],
  ]);
  it('takes what is not in the ledger and known, and says why the rest is skipped', () => {
    const s = selectObjects(listed, merged, new Set([`${A}_${P}`, 'changed']));
    assert.deepEqual(s.selected.map((o) => o.key), [key(`${A}_${P}`, 2)]);
    assert.equal(s.selected[0]!.seriesId, `${A}_${P}`);
    assert.equal(s.alreadyMerged, 1);
    assert.deepEqual(s.changed.map((o) => o.key), [key('changed', 1)]);
    assert.deepEqual(s.notListed, [key('other', 1)]);
    assert.deepEqual(s.unparseable, ['raw/startYear=2024/startMonth=3/startDay=1/junk.json']);
    assert.equal(s.unsafe.length, 1);
  });
  it('takes every series when there is no ListTimeSeries filter', () => {
    assert.equal(selectObjects(listed, merged, undefined).selected.length, 2);
  });
});

describe('days and names', () => {
  it('walks from end back to start, across a month end', () => {
    const days = daysDescending({ year: 2024, month: 2, day: 28 }, { year: 2024, month: 3, day: 1 });
    assert.deepEqual(days.map(dayFolderName), ['2024-3-1', '2024-2-29', '2024-2-28']);
  });
  it('names partitions and folders without zero padding, as SiteWise and the original do', () => {
    assert.equal(dayPrefix('raw/', { year: 2023, month: 1, day: 7 }), 'raw/startYear=2023/startMonth=1/startDay=7/');
    assert.deepEqual(parseDayFolderName('2023-1-7'), { year: 2023, month: 1, day: 7 });
    assert.equal(parseDayFolderName('2023-01-07'), undefined);
    assert.equal(parseDayFolderName('2023-2-30'), undefined);
  });
  it('derives the merged name from the inputs only', () => {
    const objects = [
      { key: 'a', size: 1, etag: 'x', seriesId: 's' },
      { key: 'b', size: 2, etag: 'y', seriesId: 's' },
    ];
    const name = (o: typeof objects) => mergedFileName(batchHash(o), AVRO.extension);
    assert.equal(name(objects), name([...objects].reverse()));
    assert.notEqual(name(objects), name([objects[0]!]));
    assert.notEqual(name(objects), name([objects[0]!, { ...objects[1]!, etag: 'z' }]));
    assert.match(name(objects), /^merged_series_v1-[0-9a-f]{24}\.avro$/);
  });
  it('keeps local names inside the day folder', () => {
    assert.equal(localName('p/day/seriesBucket=0a/raw_x_1_GOOD.avro', 'p/day/'), 'seriesBucket%3D0a%2Fraw_x_1_GOOD.avro');
    assert.ok(!localName('p/day/../../x', 'p/day/').includes('/'));
  });
  it('reads relative days for cron', () => {
    const now = new Date(Date.UTC(2024, 2, 1, 23, 59));
    assert.deepEqual(parseDayExpression('today', now), { year: 2024, month: 3, day: 1 });
    assert.deepEqual(parseDayExpression('yesterday', now), { year: 2024, month: 2, day: 29 });
    assert.deepEqual(parseDayExpression('today-2', now), { year: 2024, month: 2, day: 28 });
    assert.equal(parseDayExpression('2024-13-01', now), undefined);
  });
});

describe('the bound on requests in flight', () => {
  it('starts the waiting tasks of the lowest priority first, in order of arrival among equals, and never more than its bound', async () => {
    const limit = createLimiter(2);
    const started: string[] = [];
    let [active, most] = [0, 0];
    const releases = new Map<string, () => void>();
    const task = (name: string) => () => {
      started.push(name);
      most = Math.max(most, ++active);
      return new Promise<string>((resolve) => releases.set(name, () => (active--, resolve(name))));
    };
    const tick = () => new Promise((resolve) => setImmediate(resolve));
    const all = [limit(task('a')), limit(task('b')), limit(task('day 2, first'), 2), atPriority(limit, 1)(task('day 1')), limit(task('day 2, second'), 2), limit(task('listing'))];
    await tick();
    assert.deepEqual(started, ['a', 'b']);
    for (const name of ['a', 'b', 'listing', 'day 1', 'day 2, first', 'day 2, second']) {
      releases.get(name)!();
      await tick();
    }
    assert.deepEqual(started, ['a', 'b', 'listing', 'day 1', 'day 2, first', 'day 2, second']);
    assert.equal(most, 2);
    assert.deepEqual(await Promise.all(all), ['a', 'b', 'day 2, first', 'day 1', 'day 2, second', 'listing']);
  });

  it("hands an ending task's place to the one waiting: a task that arrives in between waits too", async () => {
    const limit = createLimiter(1);
    let release!: () => void;
    const first = limit(() => new Promise<void>((resolve) => (release = resolve)));
    let [running, most] = [0, 0];
    const counted = async () => {
      most = Math.max(most, ++running);
      await new Promise((resolve) => setImmediate(resolve));
      running--;
    };
    const waiting = limit(counted);
    let late: Promise<void> | undefined;
    release();
    // runs right after the first task's end is handled, before the waiting task goes on
    queueMicrotask(() => {
      late = limit(counted);
    });
    await Promise.all([first, waiting]);
    await late;
    assert.equal(most, 1);
  });
});

describe('fault classification', () => {
  const fault = (name: string, status?: number, message = '') => Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });
  it('names the operation, the target and the fix for permanent faults', () => {
    assert.match(permanentFault(fault('AccessDenied', 403), 'GetObject', 's3://b/k')!.message, /^GetObject on s3:\/\/b\/k: access denied; the role needs s3:GetObject there$/);
    assert.match(permanentFault(fault('NoSuchBucket', 404), 'ListObjectsV2', 's3://b')!.message, /no such bucket/);
    assert.match(permanentFault(fault('ExpiredToken', 400), 'PutObject', 's3://b/k')!.message, /credentials missing, invalid or expired \(ExpiredToken\)/);
    assert.match(permanentFault(fault('Error', undefined, 'Region is missing'), 'ListObjectsV2', 's3://b')!.message, /no AWS region; set aws\.region/);
    assert.equal(permanentFault(fault('InternalError', 500), 'GetObject', 's3://b/k'), undefined);
  });
  it('retries 5xx, throttling and resets, not client errors nor 501 NotImplemented', () => {
    assert.ok(isTransient(fault('InternalError', 500)));
    assert.ok(isTransient(fault('SlowDown', 503)));
    assert.ok(isTransient(fault('ThrottlingException', 429)));
    assert.ok(isTransient(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })));
    assert.ok(!isTransient(fault('NoSuchKey', 404)));
    assert.ok(!isTransient(fault('AccessDenied', 403)));
    // a store without an optional API (s3rver's ListMultipartUploads): asking again wastes seconds
    assert.ok(!isTransient(fault('NotImplemented', 501)));
  });
});

describe('the retry policy', () => {
  const quick = { baseDelayMs: 1, throttleBaseMs: 1, maxDelayMs: 2 };
  const failing = (err: Error) => {
    const calls: number[] = [];
    return { calls, fn: async (attempt: number): Promise<string> => (calls.push(attempt), Promise.reject(err)) };
  };
  const fault = (name: string, status: number) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });

  it('tries a transient fault maxAttempts times in all, a throttled one THROTTLED_ATTEMPTS times, a permanent one once', async () => {
    const policy = createRetryPolicy({ maxAttempts: 3, ...quick });
    for (const [err, tries] of [[fault('InternalError', 500), 3], [fault('SlowDown', 503), THROTTLED_ATTEMPTS], [fault('AccessDenied', 403), 1]] as const) {
      const { calls, fn } = failing(err);
      await assert.rejects(policy.run(fn, retryClass), (e: Error) => e === err);
      assert.deepEqual(calls, Array.from({ length: tries }, (_, i) => i + 1), err.name);
    }
    let calls = 0;
    assert.equal(await policy.run(async (attempt) => (calls++, attempt < 3 ? Promise.reject(fault('InternalError', 500)) : 'ok'), retryClass), 'ok');
    assert.equal(calls, 3);
  });

  it('stops at once when the run is stopped, without another try', async () => {
    const stop = new AbortController();
    const policy = createRetryPolicy({ maxAttempts: 5, ...quick });
    let calls = 0;
    const run = policy.run(
      () => {
        calls++;
        stop.abort();
        return Promise.reject(fault('InternalError', 500));
      },
      retryClass,
      stop.signal,
    );
    await assert.rejects(run);
    assert.equal(calls, 1);
  });

  it('adaptive mode lowers one send rate for the run while requests are throttled, and lifts it once they are not', async () => {
    const rate = new SendRate({ windowMs: 20, minRate: 5 });
    const pause = () => new Promise((resolve) => setTimeout(resolve, 25));
    assert.equal(rate.limit, Infinity);
    for (let i = 0; i < 10; i++) rate.record(true);
    await pause();
    rate.record(true);
    assert.ok(rate.limit >= 5 && rate.limit < Infinity, `limit ${rate.limit}`);
    // throttled window after window, down to its floor
    for (let window = 0; window < 30 && rate.limit > 5; window++) {
      await pause();
      rate.record(true);
    }
    assert.equal(rate.limit, 5);
    // limited: every caller waits for a token (5 a second here; the first is at hand)
    const t0 = Date.now();
    for (let i = 0; i < 3; i++) await rate.acquire();
    assert.ok(Date.now() - t0 >= 300, `3 tokens at 5/s took ${Date.now() - t0} ms`);
    for (let window = 0; window < 60 && rate.limit !== Infinity; window++) {
      await pause();
      rate.record(false);
    }
    assert.equal(rate.limit, Infinity);
    // the policy applies it: throttled attempts lower it, in adaptive mode only
    const adaptive = createRetryPolicy({ mode: 'adaptive', baseDelayMs: 1, throttleBaseMs: 1, maxDelayMs: 1, rate: { windowMs: 20, minRate: 5 } });
    const standard = createRetryPolicy({ mode: 'standard', baseDelayMs: 1, throttleBaseMs: 1, maxDelayMs: 1 });
    for (const policy of [adaptive, standard]) {
      const until = Date.now() + 60;
      while (Date.now() < until) await policy.run((attempt) => (attempt < 3 ? Promise.reject(fault('SlowDown', 503)) : Promise.resolve()), retryClass);
    }
    assert.ok(adaptive.sendRate() < Infinity);
    assert.equal(standard.sendRate(), Infinity);
  });

  it('reads AWS_MAX_ATTEMPTS and AWS_RETRY_MODE as the AWS CLI does, and names a bad value', () => {
    assert.deepEqual([retryPolicyFromEnv({}).maxAttempts, retryPolicyFromEnv({}).mode], [DEFAULT_MAX_ATTEMPTS, 'adaptive']);
    assert.equal(retryPolicyFromEnv({ AWS_RETRY_MODE: 'standard' }).mode, 'standard');
    assert.equal(retryPolicyFromEnv({ AWS_MAX_ATTEMPTS: '2' }).maxAttempts, 2);
    assert.equal(retryPolicyFromEnv({ AWS_RETRY_MODE: 'adaptive' }).mode, 'adaptive');
    assert.equal(retryPolicyFromEnv({ AWS_RETRY_MODE: 'legacy' }).mode, 'standard');
    assert.throws(() => retryPolicyFromEnv({ AWS_MAX_ATTEMPTS: '0' }), /^RangeError: AWS_MAX_ATTEMPTS: '0' must be a whole number of 1 or more$/);
    assert.throws(() => retryPolicyFromEnv({ AWS_RETRY_MODE: 'fast' }), /AWS_RETRY_MODE: 'fast' is not one of standard, adaptive, legacy/);
  });
});

describe('checksums and content checks', () => {
  const hex = (b64: string) => Buffer.from(b64, 'base64').toString('hex');
  it('gives the published check values of "123456789", in one piece or many', () => {
    const check = Buffer.from('123456789');
    const expected = { CRC32: 'cbf43926', CRC32C: 'e3069283', CRC64NVME: 'ae8b14860a799888', SHA1: 'f7c3bc1d808e04732adf679965ccc34ca7ae3441' } as const;
    for (const [algorithm, value] of Object.entries(expected) as [keyof typeof expected, string][]) {
      assert.equal(hex(checksumOf(algorithm, check)), value, algorithm);
      const pieces = createChecksum(algorithm);
      for (const piece of [check.subarray(0, 2), check.subarray(2, 7), check.subarray(7)]) pieces.update(piece);
      assert.equal(hex(pieces.digest()), value, `${algorithm} in pieces`);
    }
  });
  const headers = (h: Partial<IntegrityHeaders>): IntegrityHeaders => ({ etag: '0cc175b9c0f1b6a831c399e269772661', checksums: {}, ...h });
  it('takes an ETag for an MD5 only when single part, without SSE-KMS or SSE-C', () => {
    assert.ok(etagIsMd5(headers({})));
    assert.ok(etagIsMd5(headers({ sse: 'AES256' })));
    assert.ok(!etagIsMd5(headers({ sse: 'aws:kms' })));
    assert.ok(!etagIsMd5(headers({ sse: 'aws:kms:dsse' })));
    assert.ok(!etagIsMd5(headers({ sseCustomerAlgorithm: 'AES256' })));
    assert.ok(!etagIsMd5(headers({ etag: '0cc175b9c0f1b6a831c399e269772661-3' })));
  });
  it('prefers a full-object checksum, ignores a checksum of part checksums, and says which check it made', () => {
    const body = Buffer.from('a');
    const crc = checksumOf('CRC32', body);
    assert.deepEqual(fullObjectChecksum(headers({ checksums: { CRC32: crc } })), { algorithm: 'CRC32', value: crc });
    assert.equal(fullObjectChecksum(headers({ checksums: { CRC32: `${crc}-3` } })), undefined);
    assert.equal(fullObjectChecksum(headers({ checksums: { CRC32: crc }, checksumType: 'COMPOSITE' })), undefined);
    for (const [h, check] of [[headers({ checksums: { CRC32: crc }, sse: 'aws:kms' }), 'CRC32'], [headers({}), 'MD5'], [headers({ sse: 'aws:kms' }), 'none']] as const) {
      const checker = new ContentChecker(h);
      checker.update(body);
      checker.verify('a');
      assert.equal(checker.check, check);
    }
    const wrong = new ContentChecker(headers({ checksums: { CRC32: crc } }));
    wrong.update(Buffer.from('b'));
    assert.throws(() => wrong.verify('download of k'), /^MismatchError: download of k does not match its CRC32 checksum$/);
  });
});

describe('json shapes', () => {
  const shape = object<{ name: string; items: { size: number; note?: string }[] }>({ name: string, items: arrayOf(object({ size: count, note: optional(string) })) });
  it('returns the value as parsed, other fields kept', () => {
    const doc = { name: 'a', items: [{ size: 1 }, { size: 2, note: 'n', extra: true }] };
    assert.equal(checkShape(shape, doc), doc);
  });
  it('names the first field that is wrong', () => {
    assert.throws(() => checkShape(shape, { name: 'a', items: [{ size: 1 }, { size: -1 }] }), /^ShapeError: field items\[1\]\.size: expected a whole number of 0 or more, got -1$/);
    assert.throws(() => checkShape(shape, { items: [] }), /field name: expected a string, got nothing/);
    assert.throws(() => checkShape(shape, [1]), /the document: expected an object, got \[1\]/);
    assert.throws(() => checkShape(shape, { name: 'a', items: [{ size: 1, note: 3 }] }), /field items\[0\]\.note: expected a string, got 3/);
  });
});

describe('config loader', () => {
  const base = {
    s3_buckets: { cold_tier_bucket_name: 'cold-bucket', repartitioned_bucket_name: 'dest-bucket' },
    date_range: { date_start: '2023-01-01', date_end: '2023-01-31' },
  };
  const resolve = (doc: unknown, flags = {}) => resolveConfig('/c.yml', doc, flags, ['cold-bucket', 'dest-bucket', 'dates'], {}, new Date());
  const problems = (doc: unknown, flags = {}): string[] => {
    try {
      resolve(doc, flags);
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
    assert.fail('expected a ConfigError');
  };

  it('reads the original nested layout with its defaults', () => {
    const c = resolve({ credentials: { profile: 'default' }, timeseries_type: 'DISASSOCIATED', ...base });
    assert.equal(c.coldPrefix, 'raw/');
    assert.equal(c.dataPrefix, 'consolidated/');
    assert.equal(c.indexPrefix, 'index/');
    assert.equal(c.rawDir, '/tmp/sitewise/raw');
    assert.equal(c.mergedDir, '/tmp/sitewise/merged');
    assert.equal(c.timeseriesType, 'DISASSOCIATED');
    assert.equal(c.profile, undefined);
    assert.equal(c.concurrency, 64);
  });
  it('reads the flat names of the original README', () => {
    const c = resolve({
      cold_tier_bucket_name: 'cold-bucket',
      repartitioned_data_bucket_name: 'dest-bucket',
      local_tmp_raw_dir_name: 'r',
      local_tmp_merged_dir_name: 'm',
      date_start: '2023-01-01',
      date_end: '2023-01-02',
    });
    assert.equal(c.destBucket, 'dest-bucket');
    assert.equal(c.rawDir, '/tmp/sitewise/r');
  });
  it('lets flags override the file', () => {
    const c = resolve({ ...base, credentials: { profile: 'ops' } }, { from: '2023-01-05', to: '2023-01-06', workDir: '/w', concurrency: '4', profile: 'cli' });
    assert.deepEqual([c.from, c.to], [{ year: 2023, month: 1, day: 5 }, { year: 2023, month: 1, day: 6 }]);
    assert.deepEqual([c.workDir, c.concurrency, c.profile], ['/w', 4, 'cli']);
  });
  it('names the key, the value and what is expected', () => {
    const p = problems({
      s3_buckets: { cold_tier_bucket_name: 'cold-bucket', cold_tier_bucket_data_prefix: '/raw/' },
      date_range: { date_start: '2023-02-30', date_end: '2023-01-01' },
      timeseries_typ: 'ALL',
      local_dirz: { work_dir: '/w' },
    });
    assert.ok(p.some((m) => /s3_buckets\.repartitioned_bucket_name: missing/.test(m)), p.join('\n'));
    assert.ok(p.some((m) => /date_range\.date_start: '2023-02-30' is not a day; expected YYYY-MM-DD/.test(m)));
    assert.ok(p.some((m) => /cold_tier_bucket_data_prefix: '\/raw\/' starts with '\/'/.test(m)));
    assert.ok(p.some((m) => /timeseries_typ: unknown key; did you mean 'timeseries_type'\?/.test(m)));
    assert.ok(p.some((m) => /local_dirz: unknown key; did you mean 'local_dirs'\?/.test(m)), p.join('\n'));
    assert.ok(p.every((m) => m.startsWith('/c.yml: ')));
  });
  it('rejects a start after the end', () => {
    assert.ok(problems({ ...base, date_range: { date_start: '2023-02-01', date_end: '2023-01-01' } }).some((m) => /start 2023-02-01 is after end 2023-01-31|start 2023-02-01 is after end 2023-01-01/.test(m)));
    assert.ok(problems({ ...base, date_range: { date_start: '2023-02-01', date_end: '2023-01-01' } }).includes('/c.yml: date_range.date_start: start 2023-02-01 is after end 2023-01-01 (date_range.date_end)'));
  });
  it('says which file is missing or malformed', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cfg-'));
    await assert.rejects(loadConfig({ config: path.join(dir, 'nope.yml') }, [], {}), /nope\.yml: no such file/);
    await writeFile(path.join(dir, 'bad.yml'), 's3_buckets:\n  cold_tier_bucket_name: [unclosed\n');
    await assert.rejects(loadConfig({ config: path.join(dir, 'bad.yml') }, [], {}), /bad\.yml line \d+: not valid YAML/);
    await rm(dir, { recursive: true, force: true });
  });
});

describe('snappy blocks decoded into a reused buffer', () => {
  const block = (raw: Buffer) => compressSnappyBlock(raw);
  const rand = prng(11);
  const patterns: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['one byte', Buffer.from([7])],
    ['zeros', Buffer.alloc(100_000)],
    ['random', Buffer.from(Array.from({ length: 70_000 }, () => Math.floor(rand() * 256)))],
    ['a short run repeated (overlapping copies)', Buffer.from('abcab'.repeat(20_000))],
    ['text with long literals and far copies', Buffer.from(Array.from({ length: 3000 }, (_, i) => `series-${i % 97} value ${Math.floor(rand() * 1e6)};`).join(''))],
  ];

  it('gives the bytes the native decoder gives, for every pattern, the buffer reused and grown', () => {
    const scratch: Scratch = { buffer: Buffer.alloc(16) };
    for (const [what, raw] of [...patterns, ...[...patterns].reverse()]) {
      const got = decompressBlockInto('snappy', block(raw), 'f.avro', 0, scratch);
      assert.ok(got.equals(raw), what);
      assert.ok(got.equals(decompressBlock('snappy', block(raw), 'f.avro', 0)), `${what}: as decompressBlock`);
    }
  });

  it('a damaged block is an error naming the file and block, never wrong bytes', () => {
    const raw = patterns[5]![1];
    const good = block(raw);
    const scratch: Scratch = { buffer: Buffer.alloc(0) };
    let caught = 0;
    for (let i = 0; i < 300; i++) {
      const bad = Buffer.from(good);
      const at = Math.floor(rand() * (bad.length - 4));
      bad[at]! ^= 1 + Math.floor(rand() * 255);
      const cut = i % 3 === 0 ? bad.subarray(0, Math.floor(rand() * bad.length)) : bad;
      try {
        const got = decompressBlockInto('snappy', cut, 'f.avro', 3, scratch);
        assert.ok(got.equals(raw), 'a damage the decoder did not see must still give the bytes');
      } catch (err) {
        assert.ok(err instanceof AvroFormatError && /^f\.avro: block 3 is corrupt: /.test(err.message), (err as Error).message);
        caught++;
      }
    }
    assert.ok(caught > 290, `${caught} of 300 damaged blocks refused`);
  });
});

describe('decoded columns (the Parquet path)', () => {
  it('reads every long exactly, past 2^53 and below -2^52 too', () => {
    // Avro's long: zig-zag, then 7 bits a byte, low bits first
    const varint = (v: bigint) => {
      let u = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
      const out: number[] = [];
      do {
        out.push(Number(u & 0x7fn) | (u > 0x7fn ? 0x80 : 0));
        u >>= 7n;
      } while (u > 0n);
      return out;
    };
    const edges = [0n, 1n, -1n, 63n, -64n, 2n ** 31n - 1n, -(2n ** 31n), 2n ** 32n, 2n ** 52n - 1n, -(2n ** 52n), 2n ** 53n + 1n, -(2n ** 53n) - 1n, 1733011200123456789n, 2n ** 63n - 1n, -(2n ** 63n)];
    const rand = prng(17);
    const values = [...edges, ...Array.from({ length: 500 }, () => BigInt.asIntN(64, (BigInt(Math.floor(rand() * 2 ** 32)) << 32n) | BigInt(Math.floor(rand() * 2 ** 32))))];
    const raw = Uint8Array.from(values.flatMap(varint));
    const [exact, words] = [new BlockCursor(raw), new BlockCursor(raw)];
    const column = new ColumnData('long', values.length);
    for (const [i, v] of values.entries()) {
      assert.equal(BigInt(exact.exactLong()), v, `exactLong ${v}`);
      words.longInto(column.words, i);
      column.length++;
      assert.equal(BigInt(column.longAt(i)), v, `longInto ${v}`);
    }
    assert.equal(exact.pos, raw.length);
    assert.equal(words.pos, raw.length);
    assert.throws(() => new BlockCursor(Uint8Array.from([0x80, 0x80])).longInto(column.words, 0), /past the end/);
    assert.throws(() => new BlockCursor(Uint8Array.from(Array(11).fill(0x80).concat([1]))).longInto(column.words, 0), /longer than 10 bytes/);
  });

  it('keeps every value when one block holds more rows than twice what the column had room for', () => {
    // the room grew to exactly 3,001 values while the validity bits, whole bytes, counted 3,008: rows 3,001-3,007 were lost
    for (const type of ['long', 'double', 'string'] as const) {
      const c = new ColumnData(type);
      c.ensure(3001);
      for (let i = 0; i < 3005; i++) c.appendValue(type === 'string' ? `s${i}` : i * 1000);
      for (let i = 0; i < 3005; i++) {
        if (type === 'string') assert.equal(Buffer.from(c.values[c.codes[i]!]!).toString(), `s${i}`, `${type} row ${i}`);
        else assert.equal(c.numberAt(i), i * 1000, `${type} row ${i}`);
      }
    }
  });

  it('gathers values and nulls in the order given, at any column size', () => {
    for (const pattern of [(_: number) => true, (_: number) => false, (i: number) => i % 3 !== 0]) {
      for (const rows of [5, 8, 21, 64]) {
        const from = new ColumnData('double', 4);
        for (let i = 0; i < rows; i++) from.appendValue(pattern(i) ? i : null);
        const into = new ColumnData('double', 4);
        into.appendValue(null);
        const order = Array.from({ length: rows }, (_, i) => rows - 1 - i);
        into.gather(from, order);
        assert.equal(into.length, rows + 1);
        assert.equal(into.has(0), false);
        for (let k = 0; k < rows; k++) {
          assert.equal(into.has(1 + k), pattern(order[k]!), `${rows} rows, row ${k}`);
          if (pattern(order[k]!)) assert.equal(into.numberAt(1 + k), order[k]);
        }
      }
    }
  });
});
