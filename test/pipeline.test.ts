import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { coldKey, dayStartSeconds, generateDay, makeSeries, type ColdObject } from './support/generate-cold-tier.js';
import { recordSet, recordsOf, startWorld, type World } from './support/harness.js';
import { batchHash, mergedFileName } from '../src/destination/layout.js';
import { AVRO } from '../src/output/avro-output.js';
import type { DownloadManifest, MergedBatch } from '../src/workdir/hand-off.js';

const DAY1 = { year: 2024, month: 3, day: 1 };
const DAY2 = { year: 2024, month: 3, day: 2 };

describe('download, merge, upload end to end', () => {
  // 260 associated series x 4 exports (+ BAD/UNCERTAIN files) puts > 1,000 keys in day 1: listing pages.
  const series = makeSeries({ associated: 260, disassociated: 5 }, 11);
  const known = series.slice(0, 252).concat(series.slice(260));
  const unknown = series.slice(252, 260);
  let world: World;
  let day1: ColdObject[];
  let day2: ColdObject[];

  before(async () => {
    world = await startWorld(known);
    day1 = await generateDay(series, DAY1, { recordsPerFile: 8 });
    day2 = await generateDay(series.slice(0, 20).concat(series.slice(260)), DAY2, { recordsPerFile: 30 });
    const junk = [
      { key: 'raw/startYear=2024/startMonth=3/startDay=1/seriesBucket=00/notes.txt', body: 'not data' },
      { key: `raw/startYear=2024/startMonth=3/startDay=1/seriesBucket=01/raw_only-two_${dayStartSeconds(DAY1)}.avro`, body: 'x' },
    ];
    await world.put([...day1, ...day2, ...junk]);
  });
  after(async () => {
    await world?.stop();
  });

  it('selects the associated series known to ListTimeSeries and lands each record once', async () => {
    const dl = await world.cli(['download']);
    assert.equal(dl.code, 0, dl.stderr);
    assert.match(dl.stdout, /Reviewing --> year: 2024, month: 3, day: 3\n\tNo Cold tier data! Skipping this day/);
    assert.match(dl.stdout, /Reviewing --> year: 2024, month: 3, day: 1/);
    assert.match(dl.stdout, /# of new timeseries detected: 252/);
    assert.match(dl.stdout, /\*\* Download time: \d+ secs \*\*/);
    assert.match(dl.stderr, /2 keys are not cold-tier data files, skipped: .*notes\.txt/);
    assert.ok(day1.length > 1000, `day 1 has ${day1.length} keys`);
    // ListTimeSeries was paged (250 a page) through the SDK against the stand-in.
    assert.ok(world.sitewise.requests.length >= 2);
    assert.ok(world.sitewise.requests.every((r) => r.type === 'ASSOCIATED' && r.maxResults === 250));
    const raw1 = await readdir(path.join(world.workDir, 'raw', '2024-3-1'));
    assert.ok(raw1.includes('manifest.json') && raw1.includes('timeseries-new.txt'));
    // The manifest carries its inputs' hash; day 2's is taken out, as in a manifest of an older download:
    // merge names both days' files after the hash of their inputs either way.
    const manifestFile = (day: string) => path.join(world.workDir, 'raw', day, 'manifest.json');
    const manifests = await Promise.all(['2024-3-1', '2024-3-2'].map(async (d) => JSON.parse(await readFile(manifestFile(d), 'utf8')) as DownloadManifest));
    for (const m of manifests) assert.deepEqual(m.hash, { format: 1, value: batchHash(m.objects) });
    await writeFile(manifestFile('2024-3-2'), JSON.stringify({ ...manifests[1], hash: undefined }));

    const mg = await world.cli(['merge']);
    assert.equal(mg.code, 0, mg.stderr);
    assert.match(mg.stdout, /2024-03-01: \*\* Merge Time: \d+ secs \*\*/);
    assert.match(mg.stdout, /2024-03-02: \*\* Merge Time: \d+ secs \*\*/);
    for (const [i, d] of ['2024-3-1', '2024-3-2'].entries()) {
      const batch = JSON.parse(await readFile(path.join(world.workDir, 'merged', d, 'batch.json'), 'utf8')) as MergedBatch;
      assert.equal(batch.file, mergedFileName(batchHash(manifests[i]!.objects), AVRO.extension));
    }

    const up = await world.cli(['upload']);
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, /2024-03-01: \*\* Upload Time: \d+ secs \*\*/);
    assert.match(up.stdout, /Script execution successfully completed!!/);

    const knownIds = new Set(known.filter((s) => s.associated).map((s) => s.id));
    const expected = recordsOf([...day1, ...day2].filter((o) => knownIds.has(o.seriesId)));
    assert.deepEqual(recordSet(await world.destinationRecords()), recordSet(expected));
    assert.ok(!recordsOf(day1).some((r) => unknown.some((s) => s.id === r.seriesId) && expected.includes(r)));

    const dataKeys = (await world.list(world.dest, 'consolidated/')).map((o) => o.key);
    assert.equal(dataKeys.length, 2);
    assert.ok(dataKeys.every((k) => /^consolidated\/startYear=2024\/startMonth=3\/startDay=[12]\/merged_series_v1-[0-9a-f]{24}\.avro$/.test(k)), dataKeys.join());
    const index = (await world.get(world.dest, 'index/startYear=2024/startMonth=3/startDay=1/timeseries.txt')).toString();
    assert.deepEqual(index.trim().split('\n'), [...knownIds].sort());
    const ledger = JSON.parse((await world.get(world.dest, 'index/startYear=2024/startMonth=3/startDay=1/ledger.json')).toString()) as { batches: { objects: unknown[] }[] };
    assert.equal(ledger.batches[0]!.objects.length, day1.filter((o) => knownIds.has(o.seriesId)).length);
    // local folders are gone after the commit
    assert.deepEqual(await readdir(path.join(world.workDir, 'raw')), []);
    assert.deepEqual(await readdir(path.join(world.workDir, 'merged')), []);
  });

  it('a dry run says why objects are left out: not in ListTimeSeries, unparseable', async () => {
    const dry = await world.cli(['download', '--dry-run', '--from', '2024-03-01', '--to', '2024-03-01']);
    assert.equal(dry.code, 0, dry.stderr);
    const knownIds = new Set(known.filter((s) => s.associated).map((s) => s.id));
    const notListed = day1.filter((o) => !knownIds.has(o.seriesId)).length;
    assert.match(dry.stdout, new RegExp(`\\t${notListed} objects of series ListTimeSeries does not list as ASSOCIATED \\(timeseries_type\\), skipped: raw/`));
    assert.match(dry.stdout, new RegExp(`download 2024-03-01: skipped \\(0 objects, 0\\.0 MB, dry run, skipped \\d+ already merged, ${notListed} not ASSOCIATED, 2 not data files\\)`));
    // under --quiet too, since some were left out for another reason than being merged
    const quiet = await world.cli(['download', '--dry-run', '--quiet', '--from', '2024-03-01', '--to', '2024-03-01']);
    assert.match(quiet.stdout, new RegExp(`download 2024-03-01: skipped \\(.*${notListed} not ASSOCIATED[,)]`));
    assert.match(dry.stdout, /would download 0 objects of 0 series, 0\.0 MB/);
    assert.match(dry.stderr, /2 keys are not cold-tier data files, skipped/);
  });

  it('a second run finds nothing new and changes nothing', async () => {
    const before = await world.list(world.dest);
    const dl = await world.cli(['download']);
    assert.equal(dl.code, 0, dl.stderr);
    assert.equal((dl.stdout.match(/Skip, no new data/g) ?? []).length, 2, dl.stdout);
    assert.equal((await world.cli(['merge'])).code, 0);
    assert.equal((await world.cli(['upload'])).code, 0);
    assert.deepEqual(await world.list(world.dest), before);
  });

  it('merged files decode with an independent Avro reader (python3-avro)', async (t) => {
    const hasPythonAvro = (() => {
      try {
        execFileSync('/usr/bin/python3', ['-c', 'import avro.datafile'], { stdio: 'ignore' });
        return true;
      } catch {
        return false;
      }
    })();
    if (!hasPythonAvro) {
      t.skip('python3-avro not installed (apt-get install python3-avro); .ci/run installs it');
      return;
    }
    const key = (await world.list(world.dest, 'consolidated/startYear=2024/startMonth=3/startDay=2/'))[0]!.key;
    const file = path.join(world.dir, 'check.avro');
    await writeFile(file, await world.get(world.dest, key));
    const script = 'import sys, avro.datafile, avro.io\nr = avro.datafile.DataFileReader(open(sys.argv[1], "rb"), avro.io.DatumReader())\nprint(sum(1 for _ in r), r.meta["avro.codec"].decode())';
    const out = execFileSync('/usr/bin/python3', ['-c', script, file]).toString().trim();
    const knownIds = new Set(known.map((s) => s.id));
    assert.equal(out, `${recordsOf(day2.filter((o) => knownIds.has(o.seriesId) && known.find((s) => s.id === o.seriesId)?.associated)).length} snappy`);
    if (existsSync('/usr/bin/avrocat')) {
      const lines = execFileSync('avrocat', [file], { maxBuffer: 64 * 1024 * 1024 }).toString().trim().split('\n');
      assert.equal(String(lines.length), out.split(' ')[0]);
    }
  });

  it('the key helper writes the documented layout', () => {
    assert.equal(coldKey('raw/', DAY1, 'a_b', 1709251200, 'GOOD'), `raw/startYear=2024/startMonth=3/startDay=1/seriesBucket=${coldKey('raw/', DAY1, 'a_b', 1, 'G').split('seriesBucket=')[1]!.slice(0, 2)}/raw_a_b_1709251200_GOOD.avro`);
  });
});
