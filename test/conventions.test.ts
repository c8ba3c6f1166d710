/**
 * AWS CLI conventions and "say what happened": global options before or
 * after the command, SITEWISE_REPARTITION_CONFIG, --region and
 * --endpoint-url, a named profile that does not exist, the nothing-to-do
 * messages, usage errors with their rule, and a completion script bash takes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { generateDay, makeSeries } from './support/generate-cold-tier.js';
import { CLI, startWorld, type World } from './support/harness.js';

/** Every file under `dir` with its size and modification time ('' when the folder is absent). */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return Promise.all(
    entries
      .filter((e) => e.isFile())
      .map(async (e) => {
        const file = path.join(e.parentPath, e.name);
        const s = await stat(file);
        return `${file} ${s.size} ${s.mtimeMs}`;
      }),
  ).then((l) => l.sort());
}

describe('CLI conventions', () => {
  const series = makeSeries({ associated: 3, disassociated: 1 }, 17);
  let world: World;
  /** The CLI as a user types it: no --config added, run from `cwd`, the world's keys in the environment. */
  const bare = async (args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) => {
    try {
      const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], { cwd: options.cwd ?? world.dir, env: { PATH: process.env.PATH ?? '', HOME: world.dir, ...world.env, ...options.env } });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };
  before(async () => {
    world = await startWorld(series);
    await world.writeConfig({ timeseries_type: 'ALL' });
  });
  after(async () => world?.stop());

  it('global options go before or after the command, and say what there was to do', async () => {
    for (const args of [['--config', world.configFile, '--quiet', 'merge'], ['merge', '--config', world.configFile], ['--config', world.configFile, 'merge', '--verbose']]) {
      const r = await bare(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      if (!args.includes('--quiet')) assert.match(r.stdout, /no downloaded day in \S+\/work\/raw: run download first\n[\s\S]*Script execution successfully completed!!/, args.join(' '));
    }
    const up = await bare(['--config', world.configFile, 'upload']);
    assert.match(up.stdout, /no merged day in \S+\/work\/merged: run merge first/);
    // after the command wins over before it
    const both = await bare(['--work-dir', '/nonexistent/x', 'merge', '--config', world.configFile, '--work-dir', path.join(world.dir, 'w2')]);
    assert.match(both.stdout, /no downloaded day in \S+\/w2\/raw/);
  });

  it('SITEWISE_REPARTITION_CONFIG names the config when --config does not, from any folder', async () => {
    const elsewhere = path.join(world.dir, 'elsewhere');
    await mkdir(elsewhere, { recursive: true });
    const r = await bare(['merge'], { cwd: elsewhere, env: { SITEWISE_REPARTITION_CONFIG: world.configFile } });
    assert.equal(r.code, 0, r.stderr);
    const missing = await bare(['merge'], { cwd: elsewhere, env: { SITEWISE_REPARTITION_CONFIG: path.join(elsewhere, 'none.yml') } });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /none\.yml: no such file \(from SITEWISE_REPARTITION_CONFIG\)/);
  });

  it('--endpoint-url and --region override the config, as the AWS CLI flags do; a cold prefix with no key in the range is a warning naming it', async () => {
    const wrong = path.join(world.dir, 'wrong-endpoint.yml');
    const text = await readFile(world.configFile, 'utf8');
    const doc = JSON.parse(text) as { aws: Record<string, unknown> };
    await writeFile(wrong, JSON.stringify({ ...doc, aws: { ...doc.aws, s3_endpoint: 'http://127.0.0.1:9' } }));
    const refused = await bare(['download', '--dry-run', '--config', wrong]);
    assert.notEqual(refused.code, 0);
    const r = await bare(['download', '--dry-run', '--config', wrong, '--endpoint-url', world.s3.endpoint, '--region', 'eu-west-1', '--from', '2024-03-01', '--to', '2024-03-02']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /WARNING: no key under s3:\/\/\S+\/raw\/ for any day from 2024-03-01 to 2024-03-02: check s3_buckets\.cold_tier_bucket_data_prefix \('raw\/'\)/);
    assert.ok(r.stdout.indexOf('Script execution successfully completed!!') > 0);
    // with data there, no warning
    await world.put(await generateDay(series, { year: 2024, month: 3, day: 2 }));
    const some = await bare(['download', '--dry-run', '--config', wrong, '--endpoint-url', world.s3.endpoint, '--from', '2024-03-01', '--to', '2024-03-02']);
    assert.equal(some.code, 0, some.stderr);
    assert.doesNotMatch(some.stderr, /no key under/);
  });

  it('upload --dry-run and run --dry-run say what they would do and write nothing, locally or in S3', async () => {
    const day = { year: 2024, month: 3, day: 4 };
    await world.put(await generateDay(series, day, { seed: 31 }));
    // days as the cold tier's keys write them are taken too
    const dates = ['--from', '2024-3-4', '--to', '2024-3-4'];
    for (const step of [['download', ...dates], ['merge']]) assert.equal((await world.cli(step)).code, 0);
    const snapshot = async () => ({ dest: await world.list(world.dest), cold: await world.list(world.cold), work: await filesUnder(world.workDir) });
    const before = await snapshot();
    const up = await world.cli(['upload', '--dry-run']);
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, /2024-03-04: would upload merged_series_v1-[0-9a-f]{24}\.avro \([\d.]+ MB, \d+ records of \d+ objects\) to s3:\/\/\S+\/consolidated\/startYear=2024\/startMonth=3\/startDay=4\/merged_series_v1-[0-9a-f]{24}\.avro and commit it beside 0 earlier file\(s\)/);
    assert.match(up.stdout, /upload 2024-03-04: done \(\d+ objects, [\d.]+ MB, \d+ records, dry run\)/);
    const run = await world.cli(['run', '--dry-run', ...dates]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /run --dry-run: each day with objects to download would then be merged and uploaded; nothing was written/);
    // run works on days at once: every line of a day starts with it
    assert.match(run.stdout, /^2024-03-04 {2}Reviewing --> year: 2024, month: 3, day: 4$/m);
    assert.match(run.stdout, /^2024-03-04 {2}would download \d+ objects of \d+ series, [\d.]+ MB$/m);
    assert.deepEqual(await snapshot(), before, 'nothing written anywhere');
    // and then for real
    assert.equal((await world.cli(['upload'])).code, 0);
    assert.ok((await world.list(world.dest)).length > before.dest.length);
  });

  it("--profile that no file names says so, naming the files; not the generic credentials line", async () => {
    await mkdir(path.join(world.dir, '.aws'), { recursive: true });
    await writeFile(path.join(world.dir, '.aws', 'config'), '[default]\nregion = us-east-1\n\n[profile plant]\nregion = eu-west-1\n');
    const env = Object.fromEntries(Object.entries(world.env).filter(([k]) => !k.startsWith('AWS_ACCESS_KEY') && !k.startsWith('AWS_SECRET')));
    const r = await promisify(execFile)(process.execPath, [CLI, 'download', '--dry-run', '--config', world.configFile, '--profile', 'nosuch'], { cwd: world.dir, env: { PATH: process.env.PATH ?? '', HOME: world.dir, ...env } }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /profile 'nosuch' not found in \S+\/\.aws\/config, \S+\/\.aws\/credentials; check --profile or credentials\.profile \(profiles there: default, plant\)/);
  });

  it('a usage error states the rule and exits 2, never "internal error"', async () => {
    const r = await bare(['athena-ddl', '--config', world.configFile, '--table', 'plant-data']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /'plant-data' is not an Athena name: use letters, digits and '_', not starting with a digit \(e\.g\. plant_data\)/);
    assert.doesNotMatch(r.stderr, /internal error/);
    const shell = await bare(['completion', 'fish']);
    assert.equal(shell.code, 2);
    assert.match(shell.stderr, /'fish' is not one of bash, zsh/);
  });

  it('completion bash|zsh prints a script bash accepts, which completes commands and their options', async () => {
    for (const shell of ['bash', 'zsh']) {
      const r = await bare(['completion', shell]);
      assert.equal(r.code, 0, r.stderr);
      const file = path.join(world.dir, `completion.${shell}`);
      await writeFile(file, r.stdout);
      if (shell === 'bash') {
        await promisify(execFile)('bash', ['-n', file]);
        const complete = async (...words: string[]) =>
          (await promisify(execFile)('bash', ['-c', `source ${file}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _sitewise_repartition; printf '%s\\n' "\${COMPREPLY[@]}"`])).stdout.trim().split('\n');
        assert.deepEqual((await complete('sitewise-repartition', 'r')).sort(), ['repartition', 'run']);
        assert.ok((await complete('sitewise-repartition', 'run', '--co')).includes('--compact'));
        assert.ok((await complete('sitewise-repartition', 'completion', '')).includes('zsh'));
      } else assert.match(r.stdout, /bashcompinit/);
    }
  });
});
