import { setMaxListeners } from 'node:events';
import { errorMessage, FatalError } from '../shared/errors.js';
import type { CommandSummary, DayOutcome, Emit, ProgressEvent, Stage } from '../shared/events.js';
import { mapLimit } from '../shared/limit.js';
import { isoDay, type Day } from '../partition/day.js';
import { inShard } from '../partition/shards.js';
import type { CommitOptions } from '../destination/day-commit.js';
import { BusyDay } from '../destination/day-lease.js';
import type { Guarded, RunContext } from './deps.js';

/**
 * A day's failure is reported and the run goes on; a FatalError or a stop
 * (SIGINT, SIGTERM) ends the command, and a programming error (TypeError and
 * kin) is a bug that should show its stack.
 */
function isDayFailure(err: unknown, signal: AbortSignal): boolean {
  return !(signal.aborted || err instanceof FatalError || err instanceof TypeError || err instanceof ReferenceError);
}

/**
 * Runs one stage over days, `parallel` at a time: a day that fails is
 * reported and counted, the others go on; a FatalError stops everything, and
 * a stop signal starts no further day. Each day's work gets the context with
 * its own `emit`: with `ordered`, the lines of a day are held back until the
 * days before it have ended, so days worked on at once still print one after
 * another (progress goes to the live line at once).
 */
export async function forEachDay<C extends RunContext>(ctx: C, stage: Stage, days: Day[], parallel: number, work: (day: Day, dayCtx: C, index: number) => Promise<DayOutcome>, options: { ordered?: boolean } = {}): Promise<CommandSummary> {
  const summary: CommandSummary = { done: [], skipped: [], busy: [], failed: [] };
  ctx.emit({ type: 'command-start', stage, days: days.length });
  const order = options.ordered && parallel > 1 ? inDayOrder(ctx.emit, days.length) : undefined;
  try {
    await mapLimit(days, parallel, async (day, i) => {
      ctx.signal.throwIfAborted();
      const emit = order ? order.emitFor(i) : ctx.emit;
      const t0 = Date.now();
      const name = isoDay(day);
      try {
        const outcome = await work(day, order ? { ...ctx, emit } : ctx, i);
        (outcome.status === 'done' ? summary.done : outcome.status === 'busy' ? summary.busy : summary.skipped).push(name);
        emit({ type: 'day-end', stage, day: name, seconds: (Date.now() - t0) / 1000, ...outcome });
      } catch (err) {
        if (!isDayFailure(err, ctx.signal)) throw err;
        const error = describeFailure(err);
        summary.failed.push({ day: name, error });
        emit({ type: 'day-end', stage, day: name, status: 'failed', seconds: (Date.now() - t0) / 1000, error });
      } finally {
        order?.ended(i);
      }
    });
  } finally {
    order?.flush();
  }
  summary.failed.sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0));
  return summary;
}

/**
 * Passes on the events of the first day not yet ended as they come, and
 * holds those of later days until every day before them has ended. Memory:
 * the held lines of the days in flight.
 */
function inDayOrder(emit: Emit, count: number) {
  const held: ProgressEvent[][] = Array.from({ length: count }, () => []);
  const ended: boolean[] = [];
  let head = 0;
  const release = (i: number) => {
    for (const e of held[i] ?? []) emit(e);
    held[i] = [];
  };
  return {
    emitFor: (i: number): Emit => (e) => (i === head || e.type === 'progress' ? emit(e) : held[i]!.push(e)),
    ended: (i: number) => {
      ended[i] = true;
      while (head < count && ended[head]) release(++head);
    },
    /** What a stopped command still holds, in day order. */
    flush: () => held.forEach((_, i) => release(i)),
  };
}

function describeFailure(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC') return `disk full (${errorMessage(err)}); free space in the work dir and run again`;
  return errorMessage(err);
}

export const seconds = (t0: number) => Math.round((Date.now() - t0) / 1000);

/**
 * Runs a day's work under the destination's guard: a day another run holds
 * is `busy` (named, not a failure); the work gets a signal that also stops
 * it if the day's lease is lost, and the lease is released when it ends.
 */
export async function underHold<D extends Guarded & RunContext>(deps: D, stage: Stage, day: Day, work: (held: D) => Promise<DayOutcome>): Promise<DayOutcome> {
  const hold = await deps.guard.take(day);
  if (hold instanceof BusyDay) {
    deps.emit({ type: 'log', stage, day: isoDay(day), level: 'info', message: `\t${hold.reason}; skipped (not a failure: that run does the day)` });
    return { status: 'busy', reason: hold.reason };
  }
  const signal = AbortSignal.any([deps.signal, hold.signal]);
  setMaxListeners(0, signal); // one listener per request in flight, as on the run's signal
  let outcome: DayOutcome;
  try {
    outcome = await work({ ...deps, signal, hold });
  } catch (err) {
    hold.stop();
    if (hold.signal.aborted) throw hold.signal.reason;
    if (!deps.signal.aborted) await hold.release().catch(() => undefined);
    throw err;
  }
  await hold.release();
  return outcome;
}

/** How DayCommit is to write for this day: conditionally where the guard allows, and only while the day is still held. */
export function commitOptions(ctx: Guarded & RunContext): CommitOptions {
  const { guard, hold, signal } = ctx;
  return { signal, conditional: guard.conditional, orphanMinAgeMs: guard.orphanMinAgeMs, confirm: hold && (() => hold.confirm()) };
}

/** The days of `days` dealt to the run's shard, said in one line when sharded. */
export function shardDays(ctx: Guarded & RunContext, stage: Stage, days: Day[]): Day[] {
  const { shard } = ctx;
  if (!shard) return days;
  const mine = days.filter((d) => inShard(d, shard));
  ctx.emit({ type: 'log', stage, level: 'info', message: `shard ${shard.index}/${shard.count}: ${mine.length} of ${days.length} days` });
  return mine;
}
