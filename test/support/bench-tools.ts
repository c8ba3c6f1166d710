/** What the benches share: timing a whole command, medians, rclone, and a generated cold tier put into the loopback server. */
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, rename } from 'node:fs/promises';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { Day } from '../../src/partition/day.js';
import { createLimiter } from '../../src/shared/limit.js';
import { generateObjects, type SeriesSpec } from './generate-cold-tier.js';
import type { World } from './harness.js';

export interface Measure {
  seconds: number;
  peakRssMb: number;
  code: number | null;
  stderr: string;
  /** Every run's seconds, when repeated (seconds is their median). */
  runs?: number[];
}

/** The run with the median time, carrying every run's time; peak RSS is the highest seen. */
export function median(measures: Measure[]): Measure {
  const sorted = [...measures].sort((a, b) => a.seconds - b.seconds);
  const mid = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return { ...mid, peakRssMb: Math.max(...measures.map((m) => m.peakRssMb)), runs: measures.map((m) => m.seconds) };
}

/**
 * Runs a command and times it. Nothing polls it meanwhile (that costs the
 * measured process time): our CLI reports its own peak RSS in its summary
 * line, which `peakRssMb` reads; other commands get 0.
 */
export function measure(cmd: string, args: string[], env: Record<string, string>, cwd: string): Promise<Measure> {
  execFileSync('sync');
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    // Nothing here uses TLS (the servers are plain HTTP on loopback), so no CA bundle is passed on:
    // rclone fails on AWS_CA_BUNDLE with a plain-http endpoint, and Node reads NODE_EXTRA_CA_CERTS
    // at every start (a 220 KB bundle cost 80 ms of each run on the machine the README's figures
    // come from, where it is set for a proxy; a host without one does not pay that).
    const { AWS_CA_BUNDLE: _ca, NODE_EXTRA_CA_CERTS: _nodeCa, ...inherited } = process.env;
    const child = spawn(cmd, args, { cwd, env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const peak = /peak memory (\d+) MB/.exec(stdout) ?? /"peakRssMb":(\d+)/.exec(stdout);
      resolve({ seconds, peakRssMb: peak ? Number(peak[1]) : 0, code, stderr });
    });
  });
}

let setAsideCount = 0;

/**
 * Moves a folder a measured run wrote into `trash` (on the same file system;
 * deleted with the world) instead of deleting it before the next run. On an
 * ext4 without a journal, as on the VM of the README's figures, a new inode
 * skips every inode of its group deleted in the last 60 s (360 s while that
 * inode's block is not yet written back), checking them one by one (ext4's
 * recently_deleted), so each file created soon after many deletes costs up to
 * 0.6 ms of kernel time, charged to whichever tool runs next: 2,108 files
 * cost 1.0-1.3 s of system time right after a delete, 0.35 s otherwise. A
 * journalled ext4 (the default) reuses such inodes at once.
 */
export async function setAside(dir: string, trash: string): Promise<void> {
  await mkdir(trash, { recursive: true });
  await rename(dir, path.join(trash, `${++setAsideCount}`)).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

export const seconds = (m: Measure) => `${m.seconds.toFixed(2)} s${m.runs && m.runs.length > 1 ? ` (median of ${runs(m)})` : ''}`;
export const runs = (m: Measure) => (m.runs ?? [m.seconds]).map((s) => s.toFixed(2)).join(', ');

export function hasCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function ensureRclone(): boolean {
  if (hasCommand('rclone')) return true;
  try {
    console.error('installing rclone (apt-get) for the side-by-side download figure...');
    execFileSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rclone'], { stdio: 'ignore' });
    return hasCommand('rclone');
  } catch {
    return false;
  }
}

/** Generates the days' objects and puts them into the world's cold bucket, `concurrency` at a time; returns what it put. */
export async function putColdTier(world: World, series: SeriesSpec[], dayList: Day[], recordsPerFile: number, concurrency: number): Promise<{ objects: number; records: number; bytes: number }> {
  const days = dayList.length;
  const seriesCount = series.length;
  console.error(`generating ${days} day(s) x ${seriesCount} series x 4 exports, ${recordsPerFile} records per GOOD file...`);
  const limit = createLimiter(concurrency);
  let objects = 0;
  let records = 0;
  let bytes = 0;
  const pending = new Set<Promise<unknown>>();
  for (const d of dayList) {
    for await (const o of generateObjects(series, d, { recordsPerFile })) {
      objects++;
      records += o.records.length;
      bytes += o.body.length;
      const p = limit(() => world.s3.client.send(new PutObjectCommand({ Bucket: world.cold, Key: o.key, Body: o.body })));
      pending.add(p);
      void p.finally(() => pending.delete(p));
      if (pending.size >= concurrency * 4) await Promise.race(pending);
    }
  }
  await Promise.all(pending);
  return { objects, records, bytes };
}
