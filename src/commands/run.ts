import { existsSync } from 'node:fs';
import { daysDescending } from '../partition/day.js';
import type { CommandSummary, DayOutcome } from '../shared/events.js';
import { mergedDayDir } from '../workdir/layout.js';
import type { RunDeps } from './deps.js';
import { compactDay } from './compact.js';
import { downloadDay, emptyRangeCheck, listingsAhead } from './download.js';
import { forEachDay, shardDays } from './for-each-day.js';
import { mergeDay } from './merge.js';
import { publishCatalog, uploadDay } from './upload.js';

/** Days processed at once by `run`: local disk holds only these days' files. */
export const DAYS_IN_FLIGHT = 2;

/** download, merge and upload day by day, so the work dir holds only the days in flight. */
export async function run(deps: RunDeps, daysInFlight = DAYS_IN_FLIGHT): Promise<CommandSummary> {
  const days = shardDays(deps, 'run', daysDescending(deps.range.from, deps.range.to));
  const empty = emptyRangeCheck(deps, 'run', days.length);
  const listing = listingsAhead(deps, days);
  const summary = await forEachDay(deps, 'run', days, daysInFlight, async (day) => {
    const waiting = existsSync(mergedDayDir(deps.config, day));
    // the whole day, download to commit, under one hold of the day
    const outcome = await downloadDay(deps, day, { holdEmpty: waiting, listing }, async (held, fetched): Promise<DayOutcome> => {
      const ctx = { ...deps, signal: held.signal, hold: held.hold };
      if (fetched.status !== 'done') {
        // a day an earlier run committed but was stopped before cleaning up
        if (existsSync(mergedDayDir(deps.config, day))) await uploadDay(ctx, day);
        return fetched;
      }
      const merged = await mergeDay(ctx, day);
      await uploadDay(ctx, day);
      // with dedupe, a day's keys are compared across the files of every run: one file a day
      if (deps.compact || deps.config.outputDedupe === 'latest') await compactDay(ctx, day);
      return { status: 'done', objects: fetched.objects, bytes: fetched.bytes, records: merged.records, path: merged.path, ...(merged.dropped !== undefined ? { dropped: merged.dropped } : {}) };
    });
    return empty.seen(outcome);
  });
  empty.report();
  const listed = await deps.series.asked()?.catch(() => undefined);
  if (listed) await publishCatalog(deps, 'run', listed);
  return summary;
}
