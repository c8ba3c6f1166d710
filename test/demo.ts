/**
 * `npm run demo`: the whole job on an embedded default, no AWS account needed.
 * Starts a local S3 server (s3rver) and a local ListTimeSeries endpoint,
 * generates two days of realistic cold-tier data, runs download, merge and
 * upload as a user would, and prints what landed in the destination.
 */
import { copyFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { generateDay, makeSeries } from './support/generate-cold-tier.js';
import { recordsOf, startWorld } from './support/harness.js';

const series = makeSeries({ associated: 12, disassociated: 3 }, 5);
const world = await startWorld(series);
try {
  const days = [
    { year: 2024, month: 3, day: 1 },
    { year: 2024, month: 3, day: 2 },
  ];
  const objects = (await Promise.all(days.map((d) => generateDay(series, d, { recordsPerFile: 40 })))).flat();
  await world.put(objects);
  await world.writeConfig({ timeseries_type: 'ALL', date_range: { date_start: '2024-03-01', date_end: '2024-03-02' } });
  console.log(`Local S3 at ${world.s3.endpoint}: bucket ${world.cold} holds ${objects.length} cold-tier objects (${recordsOf(objects).length} records).\n`);
  for (const command of ['download', 'merge', 'upload']) {
    console.log(`$ npx sitewise-repartition ${command} --config ${world.configFile}`);
    const result = await world.cli([command]);
    process.stdout.write(result.stdout + result.stderr);
    if (result.code !== 0) throw new Error(`${command} exited with ${result.code}`);
    console.log('');
  }
  console.log(`What landed in s3://${world.dest}:`);
  for (const o of await world.list(world.dest)) console.log(`  ${o.key}  (${o.size} bytes)`);
  const landed = await world.destinationRecords();
  console.log(`\n${landed.length} records in the merged files; ${recordsOf(objects).length} records in the cold tier.`);
  // kept past the demo, so the user can read the config that did it (its local servers stop now)
  const kept = path.join(os.tmpdir(), 'sitewise-repartition-demo', 'config.yml');
  await mkdir(path.dirname(kept), { recursive: true });
  await copyFile(world.configFile, kept);
  console.log(`The demo's config: ${kept} (copy config.yml from the project for your own, README "First real run")`);
} finally {
  await world.stop();
}
