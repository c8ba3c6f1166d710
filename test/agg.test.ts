/**
 * agg/ data (metrics, transforms, aggregates: another schema than raw/)
 * merges in both formats with every field, and athena-ddl prints the columns
 * read from the destination's data rather than the raw schema's.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AGG_SCHEMA, decodeAvro, generateAggDay, makeSeries } from './support/generate-cold-tier.js';
import { startWorld, type World } from './support/harness.js';
import { parquetRows } from './support/parquet-read.js';

const DATES = ['--from', '2024-03-01', '--to', '2024-03-01'];
const DAY = { year: 2024, month: 3, day: 1 };

/** A record as plain values (DuckDB's BIGINTs as numbers), fields in schema order, for multiset comparison. */
const text = (r: Record<string, unknown>) => JSON.stringify(AGG_SCHEMA.fields.map((f) => (typeof r[f.name] === 'bigint' ? Number(r[f.name]) : r[f.name])));

for (const format of ['avro', 'parquet'] as const)
  describe(`agg/ data (${format})`, () => {
    const series = makeSeries({ associated: 4, disassociated: 2 }, 33);
    let world: World;
    let objects: Awaited<ReturnType<typeof generateAggDay>>;
    before(async () => {
      world = await startWorld(series);
      await world.writeConfig({ timeseries_type: 'ALL', s3_buckets: { cold_tier_bucket_name: world.cold, cold_tier_bucket_data_prefix: 'agg/', repartitioned_bucket_name: world.dest }, output: { format } });
      objects = await generateAggDay(series, DAY);
    });
    after(async () => world?.stop());

    it('before any data, athena-ddl says it prints the raw schema, and why', async () => {
      const r = await world.cli(['athena-ddl', '--table', 'plant_agg']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /WARNING: no \w+ data file under s3:\/\/\S+\/consolidated\/ yet: the columns are the documented raw schema's/);
      assert.match(r.stdout, /`doublevalue` double/);
    });

    it('merges every record with every field, and athena-ddl prints the columns of the data it finds', async () => {
      await world.put(objects);
      const r = await world.cli(['run', ...DATES]);
      assert.equal(r.code, 0, r.stderr);
      const keys = (await world.list(world.dest, 'consolidated/')).map((o) => o.key);
      assert.equal(keys.length, 1);
      const body = await world.get(world.dest, keys[0]!);
      const got = format === 'avro' ? (await decodeAvro(body)).records : await parquetRows([body]);
      assert.deepEqual(got.map((g) => text(g as Record<string, unknown>)).sort(), objects.flatMap((o) => o.records).map(text).sort());

      const ddl = await world.cli(['athena-ddl', '--table', 'plant_agg', '--database', 'iot']);
      assert.equal(ddl.code, 0, ddl.stderr);
      assert.match(ddl.stderr, new RegExp(`columns read from s3://\\S+/${keys[0]!.replace(/[.]/g, '\\.')}`));
      const columns = [...ddl.stdout.split('PARTITIONED BY')[0]!.matchAll(/^ {2}`(\w+)` (\w+),?$/gm)].map((m) => `${m[1]} ${m[2]}`);
      assert.deepEqual(columns, ['seriesid string', 'timeinseconds bigint', 'offsetinnanos bigint', 'resolution string', 'quality string', 'count bigint', 'average double', 'minimum double', 'maximum double', 'sum double']);
      if (format === 'avro') assert.match(ddl.stdout, /'avro\.schema\.literal'='\{[^']*AggregatedDatum[^']*"resolution"/, 'the Avro table names the schema of the files');
      else assert.match(ddl.stdout, /STORED AS PARQUET/);
      // --raw-schema: no AWS access, the documented raw columns
      const raw = await world.cli(['athena-ddl', '--raw-schema']);
      assert.match(raw.stdout, /`doublevalue` double/);
      assert.equal(raw.stderr, '');
    });
  });
