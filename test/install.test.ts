/**
 * Installed as a user installs it: `npm pack`, then `npm install -g` of the
 * tarball into a fresh prefix, and the installed bin run from another folder
 * (its config named by SITEWISE_REPARTITION_CONFIG, as a cron job would).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

describe('install from npm pack', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'install-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('the packed tarball installs into a fresh prefix, with its LICENSE, and its bin runs from any folder', { timeout: 300_000 }, async () => {
    // --ignore-scripts: dist is already built by the test run (prepare would build it again under the running tests)
    const { stdout } = await exec('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: root });
    const [packed] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
    const files = packed!.files.map((f) => f.path);
    for (const f of ['LICENSE', 'README.md', 'config.yml', 'package.json', 'dist/bin/sitewise-repartition.cjs']) assert.ok(files.includes(f), `${f} is in the package`);
    assert.ok(!files.some((f) => f.startsWith('src/') || f.startsWith('test/')), 'no sources or tests in the package');
    const prefix = path.join(dir, 'prefix');
    await exec('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', path.join(dir, packed!.filename)], { cwd: dir });
    const bin = path.join(prefix, 'bin', 'sitewise-repartition');
    const elsewhere = path.join(dir, 'elsewhere');
    await mkdir(elsewhere);
    const version = await exec(bin, ['--version'], { cwd: elsewhere });
    assert.match(version.stdout, /^\d+\.\d+\.\d+/);
    const config = path.join(dir, 'sitewise.yml');
    await writeFile(config, `s3_buckets:\n  cold_tier_bucket_name: my-cold\n  repartitioned_bucket_name: my-dest\nlocal_dirs:\n  work_dir: ${path.join(dir, 'work')}\n`);
    const merge = await exec(bin, ['merge'], { cwd: elsewhere, env: { ...process.env, SITEWISE_REPARTITION_CONFIG: config } });
    assert.match(merge.stdout, /no downloaded day in \S+\/work\/raw: run download first/);
    assert.match(merge.stdout, /Script execution successfully completed!!/);
    const completion = await exec(bin, ['completion', 'bash'], { cwd: elsewhere });
    assert.match(completion.stdout, /complete -o default -F _sitewise_repartition sitewise-repartition/);
    assert.ok((await readdir(path.join(prefix, 'lib', 'node_modules', 'sitewise-repartition'))).includes('LICENSE'));
  });
});
