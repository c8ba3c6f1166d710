/**
 * How far the destination can be trusted with several runs at once, found
 * once per run: where it honours conditional puts, each day is worked on
 * under a lease (day-lease.ts) and committed with a conditional ledger PUT;
 * where it does not (s3rver, some S3-compatible stores) or
 * aws.conditional_writes is off, the local work-dir lock is the only guard,
 * as before: one host per destination.
 */
import type { ConditionalWrites } from '../config/load-config.js';
import { isoDay, type Day } from '../partition/day.js';
import { FatalError } from '../shared/errors.js';
import type { ObjectStore } from '../store/object-store.js';
import { BusyDay, DayLease, type LeaseHolder } from './day-lease.js';
import { leaseKey, probeKey, type DestinationLayout } from './layout.js';

/** What a day's work holds while it runs. */
export interface DayHold {
  /** Aborted when the day must stop (its lease was lost). */
  readonly signal: AbortSignal;
  /** Throws unless the day is still this run's: called right before the commit. */
  confirm(): Promise<void>;
  release(): Promise<void>;
  /** Stops renewing without releasing (the run is stopping, or failed the day). */
  stop(): void;
}

export interface DestinationGuard {
  /** Leases and conditional commits are on. */
  readonly conditional: boolean;
  /** Uncommitted data files younger than this may be another run's upload about to commit: left alone. */
  readonly orphanMinAgeMs: number;
  take(day: Day): Promise<DayHold | BusyDay>;
}

const never = new AbortController().signal;

/** The local lock is the guard: every day is this run's. */
export const SINGLE_HOST: DestinationGuard = {
  conditional: false,
  orphanMinAgeMs: 0,
  take: () => Promise.resolve({ signal: never, confirm: () => Promise.resolve(), release: () => Promise.resolve(), stop: () => {} }),
};

export interface GuardSettings {
  dest: ObjectStore;
  layout: DestinationLayout;
  mode: ConditionalWrites;
  holder: LeaseHolder;
  leaseSeconds: number;
  signal: AbortSignal;
  log: (level: 'info' | 'warn', message: string, day?: string) => void;
}

/** Probes the destination (unless off) and returns the guard it allows. */
export async function destinationGuard(settings: GuardSettings): Promise<DestinationGuard> {
  const { dest, layout, mode, holder, signal } = settings;
  if (mode === 'off') return SINGLE_HOST;
  const scratch = probeKey(layout, holder.runId);
  const support = await dest.probeConditionalWrites(scratch, signal).catch((err: unknown) => {
    if (!(err instanceof FatalError)) throw err;
    throw new FatalError(`aws.conditional_writes: ${mode}: the probe of s3://${dest.name} with a scratch object failed: ${err.message}; allow s3:PutObject and s3:DeleteObject on ${layout.indexPrefix}*, or set aws.conditional_writes: off (one host per destination)`, { cause: err });
  });
  if (!support.createIfAbsent || !support.updateIfMatch) {
    const missing = [!support.createIfAbsent && 'If-None-Match', !support.updateIfMatch && 'If-Match'].filter(Boolean).join(' and ');
    const what = `s3://${dest.name} ignores conditional writes (${missing} on PUT)`;
    if (mode === 'required') throw new FatalError(`aws.conditional_writes is required, but ${what}; use a store that honours them (AWS S3, Ceph RGW), or set aws.conditional_writes: auto`);
    settings.log('warn', `${what}: no per-day leases; run one host at a time per destination (the local work-dir lock guards only this machine). Set aws.conditional_writes: off to silence this`);
    return SINGLE_HOST;
  }
  /** A holder of this host and work dir whose pid is not running: the work-dir lock this run holds rules out a live one. */
  const isGone = (other: LeaseHolder) => other.host === holder.host && other.workDir !== undefined && other.workDir === holder.workDir && other.runId !== holder.runId && !processAlive(other.pid);
  return {
    conditional: true,
    orphanMinAgeMs: settings.leaseSeconds * 1000,
    take: (day) => DayLease.take({ dest, holder, seconds: settings.leaseSeconds, signal, isGone, log: (level, message) => settings.log(level, message, isoDay(day)) }, leaseKey(layout, day), day),
  };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
