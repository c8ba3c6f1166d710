import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { mapLimit } from '../../src/shared/limit.js';
import { datum, parquetRows } from './parquet-read.js';
import { decodeAvro, recordKey, type ColdObject, type RawDatum } from './generate-cold-tier.js';
import { startS3, type S3Backend } from './s3-backend.js';
import { startSiteWise, type SiteWiseServer } from './sitewise-server.js';
import type { SeriesSpec } from './generate-cold-tier.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The bin as installed: the bundle npm runs. */
export const CLI = path.resolve(here, '../../bin/sitewise-repartition.cjs');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Loopback S3 and SiteWise, a cold and a destination bucket, a config file and a work dir. */
export interface World {
  s3: S3Backend;
  sitewise: SiteWiseServer;
  cold: string;
  dest: string;
  dir: string;
  workDir: string;
  configFile: string;
  env: Record<string, string>;
  writeConfig(extra?: Record<string, unknown>, endpoint?: string): Promise<void>;
  put(objects: { key: string; body: Buffer | string }[], bucket?: string): Promise<void>;
  /** killWhen: on the CLI's stdout; killWhenSeen: polled, for what the test itself observes (a proxy's log). */
  cli(
    args: string[],
    options?: { killAfterMs?: number; killWhen?: (out: string) => boolean; killWhenSeen?: () => boolean; killSignal?: NodeJS.Signals; env?: Record<string, string> },
  ): Promise<CliResult>;
  list(bucket: string, prefix?: string): Promise<{ key: string; size: number }[]>;
  get(bucket: string, key: string): Promise<Buffer>;
  destinationRecords(dataPrefix?: string): Promise<RawDatum[]>;
  stop(): Promise<void>;
}

export async function startWorld(series: SeriesSpec[]): Promise<World> {
  const s3 = await startS3();
  const sitewise = await startSiteWise(series);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'swr-test-'));
  const cold = await s3.createBucket('cold');
  const dest = await s3.createBucket('dest');
  const world: World = {
    s3,
    sitewise,
    cold,
    dest,
    dir,
    workDir: path.join(dir, 'work'),
    configFile: path.join(dir, 'config.yml'),
    env: s3.env,
    async writeConfig(extra = {}, endpoint = s3.endpoint) {
      const config = {
        timeseries_type: 'ASSOCIATED',
        s3_buckets: { cold_tier_bucket_name: cold, repartitioned_bucket_name: dest },
        local_dirs: { work_dir: world.workDir },
        date_range: { date_start: '2024-03-01', date_end: '2024-03-03' },
        ...extra,
        aws: {
          region: 'us-east-1',
          s3_endpoint: endpoint,
          s3_force_path_style: true,
          sitewise_endpoint: sitewise.endpoint,
          // RGW honours conditional writes: every test there runs with leases and conditional commits.
          // s3rver ignores them: tests of that case ask for auto themselves.
          conditional_writes: s3.kind === 'rgw' ? 'auto' : 'off',
          ...(extra.aws as object | undefined),
        },
      };
      await writeFile(world.configFile, JSON.stringify(config, null, 2));
    },
    async put(objects, bucket = cold) {
      await mapLimit(objects, 16, (o) => s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: o.key, Body: o.body })));
    },
    cli(args, options = {}) {
      return new Promise((resolve) => {
        const child = spawn(process.execPath, [CLI, ...args, '--config', world.configFile], {
          cwd: dir,
          // leases of 10 s on RGW: a test's uncommitted files reach the lease length soon (see DayCommit.removeOrphans)
          env: { PATH: process.env.PATH ?? '', HOME: dir, ...s3.env, ...(s3.kind === 'rgw' ? { SITEWISE_REPARTITION_LEASE_SECONDS: '10' } : {}), ...options.env },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        let killed = false;
        const kill = () => {
          if (!killed) child.kill(options.killSignal ?? 'SIGKILL');
          killed = true;
        };
        child.stdout.on('data', (c: Buffer) => {
          stdout += c.toString();
          if (options.killWhen?.(stdout)) kill();
        });
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        const timer = options.killAfterMs ? setTimeout(kill, options.killAfterMs) : undefined;
        const poll = options.killWhenSeen ? setInterval(() => options.killWhenSeen!() && kill(), 20) : undefined;
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          clearInterval(poll);
          resolve({ code, signal, stdout, stderr });
        });
      });
    },
    async list(bucket, prefix = '') {
      const out: { key: string; size: number }[] = [];
      let token: string | undefined;
      do {
        const page = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
        for (const o of page.Contents ?? []) out.push({ key: o.Key!, size: o.Size ?? 0 });
        token = page.NextContinuationToken;
      } while (token);
      return out;
    },
    async get(bucket, key) {
      const r = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return Buffer.from(await r.Body!.transformToByteArray());
    },
    async destinationRecords(dataPrefix = 'consolidated/') {
      const listed = await world.list(dest, dataPrefix);
      const all: RawDatum[] = [];
      // one by one: spreading a large day's records into push() overflows the stack
      for (const k of listed.filter((o) => o.key.endsWith('.avro'))) for (const r of (await decodeAvro(await world.get(dest, k.key))).records) all.push(r);
      const parquet = await Promise.all(listed.filter((o) => o.key.endsWith('.parquet')).map((o) => world.get(dest, o.key)));
      for (const row of await parquetRows(parquet)) all.push(datum(row));
      return all;
    },
    async stop() {
      await sitewise.stop();
      await s3.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  await world.writeConfig();
  return world;
}

/** Sorted record keys, for multiset equality with a readable diff. */
export function recordSet(records: RawDatum[]): string[] {
  return records.map(recordKey).sort();
}

export function recordsOf(objects: ColdObject[]): RawDatum[] {
  return objects.flatMap((o) => o.records);
}
