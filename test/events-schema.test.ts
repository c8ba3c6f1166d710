/**
 * The JSON events hold to docs/events.schema.json: real output of a run
 * with every kind of event, of a day that fails, and of a fatal error.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { breakFirstCrc, generateDay, makeSeries } from './support/generate-cold-tier.js';
import { startWorld, type World } from './support/harness.js';
import { validate } from './support/json-schema.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

describe('JSON events against their schema', () => {
  const series = makeSeries({ associated: 3, disassociated: 1 }, 23);
  let world: World;
  let schema: Record<string, unknown>;
  const lines = (out: string) => out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  before(async () => {
    world = await startWorld(series);
    await world.writeConfig({ timeseries_type: 'ALL' });
    schema = JSON.parse(await readFile(path.join(root, 'docs/events.schema.json'), 'utf8')) as Record<string, unknown>;
    const good = await generateDay(series, { year: 2024, month: 3, day: 1 });
    const bad = await generateDay(series, { year: 2024, month: 3, day: 2 });
    await world.put([...good, ...bad.map((o, i) => (i === 0 ? { ...o, body: breakFirstCrc(o.body) } : o))]);
  });
  after(async () => world?.stop());

  it('every event of a run (log, progress, day-end done and failed, command-end) and of a fatal error validates', async () => {
    const run = await world.cli(['run', '--log-format', 'json', '--verbose', '--crc-check']);
    const fatal = await world.cli(['download', '--log-format', 'json', '--endpoint-url', 'http://127.0.0.1:9']);
    assert.notEqual(fatal.code, 0);
    const events = [...lines(run.stdout), ...lines(fatal.stdout)];
    const types = new Set(events.map((e) => e.type));
    for (const t of ['command-start', 'log', 'progress', 'day-end', 'command-end', 'error']) assert.ok(types.has(t), `a ${t} event was written`);
    assert.ok(events.some((e) => e.type === 'day-end' && e.status === 'failed'), 'a failed day');
    for (const e of events) assert.deepEqual(validate(schema, e), [], JSON.stringify(e));
    // the checker is not lenient: an event without its run id, or with a field the schema lacks, fails
    const { runId: _r, ...noRun } = events[0]!;
    assert.ok(validate(schema, noRun).length > 0);
    assert.ok(validate(schema, { ...events[0], extra: 1 }).length > 0);
  });

  it('without --verbose, progress events come at a bounded rate: a few per day, where --verbose gives one per object', async () => {
    await world.writeConfig({ timeseries_type: 'ALL', local_dirs: { work_dir: `${world.workDir}-rate` }, s3_buckets: { cold_tier_bucket_name: world.cold, repartitioned_bucket_name: await world.s3.createBucket('rate') } });
    const quiet = lines((await world.cli(['download', '--log-format', 'json', '--from', '2024-3-1', '--to', '2024-3-1'])).stdout);
    const verbose = lines((await world.cli(['download', '--log-format', 'json', '--verbose', '--dry-run', '--from', '2024-03-01', '--to', '2024-03-01'])).stdout);
    const progress = quiet.filter((e) => e.type === 'progress');
    const objects = quiet.find((e) => e.type === 'day-end')!.objects as number;
    assert.ok(objects > 10, `${objects} objects`);
    assert.ok(progress.length >= 1 && progress.length <= 2, `${progress.length} progress events for ${objects} objects`);
    assert.equal(progress.at(-1)!.doneObjects, objects, 'the last says the day is complete');
    assert.ok(verbose.length > 0);
  });
});
