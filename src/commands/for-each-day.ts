import { errorMessage, FatalError } from '../shared/errors.js';
import type { CommandSummary, DayOutcome, Stage } from '../shared/events.js';
import { mapLimit } from '../shared/limit.js';
import { isoDay, type Day } from '../partition/day.js';
import type { RunContext } from './deps.js';

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
 * a stop signal starts no further day.
 */
export async function forEachDay(ctx: RunContext, stage: Stage, days: Day[], parallel: number, work: (day: Day) => Promise<DayOutcome>): Promise<CommandSummary> {
  const summary: CommandSummary = { done: [], skipped: [], failed: [] };
  await mapLimit(days, parallel, async (day) => {
    ctx.signal.throwIfAborted();
    const t0 = Date.now();
    const name = isoDay(day);
    try {
      const outcome = await work(day);
      (outcome.status === 'done' ? summary.done : summary.skipped).push(name);
      ctx.emit({ type: 'day-end', stage, day: name, seconds: (Date.now() - t0) / 1000, ...outcome });
    } catch (err) {
      if (!isDayFailure(err, ctx.signal)) throw err;
      const error = describeFailure(err);
      summary.failed.push({ day: name, error });
      ctx.emit({ type: 'day-end', stage, day: name, status: 'failed', seconds: (Date.now() - t0) / 1000, error });
    }
  });
  summary.failed.sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0));
  return summary;
}

function describeFailure(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC') return `disk full (${errorMessage(err)}); free space in the work dir and run again`;
  return errorMessage(err);
}

export const seconds = (t0: number) => Math.round((Date.now() - t0) / 1000);
