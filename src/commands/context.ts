import { readFileSync } from 'node:fs';
import type { Config } from '../config/load-config.js';
import { errorMessage, FatalError } from '../errors.js';
import type { CommandSummary, DayOutcome, Emit, Stage } from '../events.js';
import { mapLimit } from '../limit.js';
import { isoDay, type Day } from '../partition/day.js';
import type { Bucket } from '../s3/bucket.js';

/** What every command gets: its settings, its clients and where to report. */
export interface Context {
  config: Config;
  emit: Emit;
  cold?: Bucket;
  dest?: Bucket;
  /** Known series ids; undefined means every series (timeseries_type ALL). Cached for the run. */
  knownSeries?: () => Promise<Set<string> | undefined>;
  /** Shared bound on S3 transfers in flight. */
  transfers: <T>(task: () => Promise<T>) => Promise<T>;
}

export function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`internal: ${what} not set up for this command`);
  return value;
}

/**
 * A day's failure is reported and the run goes on; a FatalError stops the
 * command, and a programming error (TypeError and kin) is a bug that should
 * show its stack.
 */
function isDayFailure(err: unknown): boolean {
  return !(err instanceof FatalError || err instanceof TypeError || err instanceof ReferenceError);
}

/**
 * Runs one stage over days, `parallel` at a time: a day that fails is
 * reported and counted, the others go on; a FatalError stops everything.
 */
export async function forEachDay(
  ctx: Context,
  stage: Stage,
  days: Day[],
  parallel: number,
  work: (day: Day) => Promise<DayOutcome>,
): Promise<CommandSummary> {
  const summary: CommandSummary = { done: [], skipped: [], failed: [] };
  const started = Date.now();
  await mapLimit(days, parallel, async (day) => {
    const t0 = Date.now();
    const name = isoDay(day);
    try {
      const outcome = await work(day);
      (outcome.status === 'done' ? summary.done : summary.skipped).push(name);
      ctx.emit({ type: 'day-end', stage, day: name, seconds: (Date.now() - t0) / 1000, ...outcome });
    } catch (err) {
      if (!isDayFailure(err)) throw err;
      const error = describeFailure(err);
      summary.failed.push({ day: name, error });
      ctx.emit({ type: 'day-end', stage, day: name, status: 'failed', seconds: (Date.now() - t0) / 1000, error });
    }
  });
  summary.failed.sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0));
  ctx.emit({
    type: 'command-end',
    stage,
    done: summary.done.length,
    skipped: summary.skipped.length,
    failed: summary.failed.length,
    seconds: (Date.now() - started) / 1000,
    failedDays: summary.failed,
    peakRssMb: peakRssMb(),
  });
  return summary;
}

function describeFailure(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC') return `disk full (${errorMessage(err)}); free space in the work dir and run again`;
  return errorMessage(err);
}

/**
 * The process's peak resident memory so far, worker threads included. On
 * Linux from /proc (VmHWM): getrusage's maxrss also counts the memory of the
 * parent that spawned us, as it was when it forked (a bench or a cron wrapper).
 */
function peakRssMb(): number {
  try {
    const hwm = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (hwm) return Math.round(Number(hwm[1]) / 1024);
  } catch {
    // not Linux
  }
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

export const seconds = (t0: number) => Math.round((Date.now() - t0) / 1000);
