/**
 * Names beside ids: upload writes the series catalog from ListTimeSeries
 * into the destination, and athena-ddl's tables over it and over SiteWise's
 * asset_metadata/ export, joined by its view, give each data row its asset
 * and property names. DuckDB runs the view as printed (Athena's SQL and
 * DuckDB's agree on it) over the files the tool wrote.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { athenaCatalogDdl, ASSET_METADATA_COLUMNS } from '../src/commands/athena-ddl.js';
import { loadConfig } from '../src/config/load-config.js';
import { assetMetadataObjects, generateDay, makeSeries, namesOf, type ColdObject } from './support/generate-cold-tier.js';
import { recordsOf, startWorld, type World } from './support/harness.js';

const golden = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/golden');
const DATES = ['--from', '2024-03-01', '--to', '2024-03-01'];
const DAY = { year: 2024, month: 3, day: 1 };
const CATALOG = 'catalog/series/series.ndjson';

type Line = Record<string, string>;

describe('series catalog', () => {
  const series = makeSeries({ associated: 7, disassociated: 3 }, 61);
  let world: World;
  let objects: ColdObject[];
  const catalog = async (): Promise<Line[]> => (await world.get(world.dest, CATALOG)).toString().trim().split('\n').map((l) => JSON.parse(l) as Line);
  before(async () => {
    world = await startWorld(series);
    await world.writeConfig({ output: { format: 'parquet' } });
    objects = await generateDay(series, DAY, { recordsPerFile: 30 });
    await world.put([...objects, ...assetMetadataObjects(series)]);
  });
  after(async () => world?.stop());

  it('run writes one line per listed series: timeSeriesId, the id file names carry, assetId, propertyId, dataType', async () => {
    const r = await world.cli(['run', ...DATES]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /series catalog s3:\/\/\S+\/catalog\/series\/series\.ndjson: 7 series/);
    const want = series
      .filter((s) => s.associated)
      .map((s) => ({ timeSeriesId: `ts-${s.id.slice(0, 8)}`, fileId: s.id, assetId: s.assetId!, propertyId: s.propertyId!, dataType: s.dataType }))
      .sort((a, b) => (a.fileId < b.fileId ? -1 : 1));
    assert.deepEqual(await catalog(), want);
  });

  it('download leaves the series for upload, which merges them into the catalog (lines of series no longer listed stay) and removes the hand-off', async () => {
    const kept = { timeSeriesId: 'ts-gone', fileId: 'gone-series', dataType: 'DOUBLE' };
    const lines = await catalog();
    await world.put([{ key: CATALOG, body: [...lines, kept].map((l) => `${JSON.stringify(l)}\n`).join('') }], world.dest);
    const late = (await generateDay(series, DAY, { exports: [3], recordsPerFile: 30, seed: 12 })).map((o) => ({ ...o, key: o.key.replace(/_(\d+)_/, (_m, t: string) => `_${Number(t) + 7}_`) }));
    await world.put(late);
    for (const step of [['download', ...DATES], ['merge']]) assert.equal((await world.cli(step)).code, 0);
    const handOff = path.join(world.workDir, 'series-catalog.json');
    assert.ok(await stat(handOff));
    const up = await world.cli(['upload']);
    assert.equal(up.code, 0, up.stderr);
    await assert.rejects(stat(handOff));
    const after = await catalog();
    assert.equal(after.length, lines.length + 1);
    assert.deepEqual(after.find((l) => l.fileId === 'gone-series'), kept);
  });

  it('a damaged catalog is left as it is, with a warning naming its key and line; the data is still committed', async () => {
    const damaged = `${(await world.get(world.dest, CATALOG)).toString()}{not json\n`;
    await world.put([{ key: CATALOG, body: damaged }], world.dest);
    const late = (await generateDay(series, DAY, { exports: [2], recordsPerFile: 30, seed: 13 })).map((o) => ({ ...o, key: o.key.replace(/_(\d+)_/, (_m, t: string) => `_${Number(t) + 9}_`) }));
    await world.put(late);
    const r = await world.cli(['run', ...DATES]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /series catalog s3:\/\/\S+\/catalog\/series\/series\.ndjson not written \(s3:\/\/\S+\/catalog\/series\/series\.ndjson line 9: not valid JSON\)/);
    assert.equal((await world.get(world.dest, CATALOG)).toString(), damaged);
    assert.match(r.stdout, /run 2024-03-01: done/);
    // repaired for the next test
    await world.put([{ key: CATALOG, body: damaged.replace('{not json\n', '') }], world.dest);
  });

  it("athena-ddl's view, run by DuckDB over the data, the catalog and asset_metadata/, gives every row its asset and property names and keeps the row count", async () => {
    const config = await loadConfig({ config: world.configFile }, ['dest-bucket'], {}, new Date());
    const ddl = athenaCatalogDdl(config, { table: 'plant_data', database: 'iot' });
    const view = ddl.slice(ddl.indexOf('CREATE OR REPLACE VIEW'));
    const dir = await mkdtemp(path.join(os.tmpdir(), 'catalog-'));
    const local = async (bucket: string, key: string) => {
      const file = path.join(dir, key.replace(/\//g, '_'));
      await writeFile(file, await world.get(bucket, key));
      return `'${file}'`;
    };
    const data = await Promise.all((await world.list(world.dest, 'consolidated/')).map((o) => local(world.dest, o.key)));
    const assets = await Promise.all((await world.list(world.cold, 'asset_metadata/')).map((o) => local(world.cold, o.key)));
    const columns = (names: string[]) => `{${names.map((n) => `'${n}': 'VARCHAR'`).join(', ')}}`;
    const camel = ['assetId', 'assetName', 'assetModelId', 'assetPropertyId', 'assetPropertyName', 'assetPropertyDataType', 'assetPropertyUnit', 'assetPropertyAlias', 'timeSeriesId', 'timeSeriesBucket'];
    assert.deepEqual(camel.map((c) => c.toLowerCase()), ASSET_METADATA_COLUMNS);
    const db = await (await DuckDBInstance.create(':memory:')).connect();
    try {
      await db.run('create schema iot');
      await db.run(`create view iot.plant_data as select * from read_parquet([${data.join(', ')}])`);
      await db.run(`create view iot.plant_data_series as select * from read_json(${await local(world.dest, CATALOG)}, format = 'newline_delimited', columns = ${columns(['timeSeriesId', 'fileId', 'alias', 'assetId', 'propertyId', 'dataType'])})`);
      await db.run(`create view iot.plant_data_asset_metadata as select * from read_json([${assets.join(', ')}], format = 'newline_delimited', columns = ${columns(camel)})`);
      await db.run(view);
      const rows = (await db.runAndReadAll('select seriesid as sid, assetname as asset, assetpropertyname as property, count(*) as n from iot.plant_data_named group by 1, 2, 3')).getRowObjects();
      const total = (await db.runAndReadAll('select count(*) as n from iot.plant_data')).getRowObjects()[0]!.n;
      assert.equal(rows.reduce((n, r) => n + Number(r.n as bigint), 0), Number(total as bigint), 'the view has exactly the data\'s rows');
      const names = namesOf(series);
      assert.equal(rows.length, names.size, 'ASSOCIATED: only associated series were merged');
      for (const r of rows) assert.deepEqual([r.asset, r.property], [names.get(r.sid as string)?.assetName, names.get(r.sid as string)?.propertyName]);
      // the README's query: one property of one asset, by name
      const one = names.get(series[2]!.id)!;
      const got = (await db.runAndReadAll(`select count(*) as n from iot.plant_data_named where assetname = '${one.assetName}' and assetpropertyname = '${one.propertyName}'`)).getRowObjects()[0]!.n;
      assert.equal(Number(got as bigint), (await world.destinationRecords()).filter((d) => d.seriesId === series[2]!.id).length);
      assert.ok(recordsOf(objects).length > 0);
    } finally {
      db.closeSync();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('matches the golden DDL: the catalog table, the asset_metadata table beside raw/, and the view', async () => {
    const file = path.join(world.dir, 'ddl.yml');
    await writeFile(file, JSON.stringify({ s3_buckets: { cold_tier_bucket_name: 'plant-cold', cold_tier_bucket_data_prefix: 'site-a/raw/', repartitioned_bucket_name: 'plant-repartitioned' } }));
    const ddl = athenaCatalogDdl(await loadConfig({ config: file }, ['dest-bucket'], {}, new Date()), { table: 'plant_data', database: 'iot' });
    if (process.env.UPDATE_GOLDEN) await writeFile(path.join(golden, 'athena-ddl-catalog.sql'), ddl);
    assert.equal(ddl, await readFile(path.join(golden, 'athena-ddl-catalog.sql'), 'utf8'));
  });
});
