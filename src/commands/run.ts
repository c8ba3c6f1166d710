import { existsSync } from 'node:fs';
import { daysDescending } from '../partition/day.js';
import type { CommandSummary, DayOutcome } from '../shared/events.js';
import { createLimiter } from '../shared/limit.js';
import { mergedDayDir } from '../workdir/layout.js';
import type { RunDeps } from './deps.js';
import { compactDay } from './compact.js';
import { daysAhead, downloadDay, emptyRangeCheck, dayPriority } from './download.js';
import { forEachDay, shardDays } from './for-each-day.js';
import { mergeDay } from './merge.js';
import { publishCatalog, uploadDay } from './upload.js';

/**
 * Days `run` works on at once. Local disk holds at most these days: each
 * one's downloaded objects, and once it is merged its merged file too (about
 * 2 x DAYS_IN_FLIGHT x the largest day). While one day merges, the next days
 * download and the one before uploads.
 */
export const DAYS_IN_FLIGHT = 4;
/** Merges (and compactions) at once: they use both cores, and memory is bounded per merge. */
const MERGES_AT_ONCE = 1;
/** Uploads at once: one holds 2 parts of 8 MiB, and its parts in flight keep the connection to S3 busy. */
const UPLOADS_AT_ONCE = 1;

/**
 * download, merge and upload day by day, several days at once: downloads of
 * the next days overlap the merge and upload of the current ones, each stage
 * bounded, and the work dir holds only the days in flight.
 */
export async function run(deps: RunDeps, daysInFlight = DAYS_IN_FLIGHT): Promise<CommandSummary> {
  const days = shardDays(deps, 'run', daysDescending(deps.range.from, deps.range.to));
  const empty = emptyRangeCheck(deps, 'run', days.length);
  const ahead = deps.ahead ?? daysAhead(deps, days);
  const merges = createLimiter(MERGES_AT_ONCE);
  // a format whose day takes most of the memory bound (Parquet) is written with no upload beside it
  const uploads = deps.format.daysAtOnce > 1 ? createLimiter(UPLOADS_AT_ONCE) : merges;
  const summary = await forEachDay(deps, 'run', days, daysInFlight, async (day, _, i) => {
    const waiting = existsSync(mergedDayDir(deps.config, day));
    // the whole day, download to commit, under one hold of the day
    const outcome = await downloadDay(dayPriority(deps, i), day, { holdEmpty: waiting, ahead }, async (held, fetched): Promise<DayOutcome> => {
      const ctx = { ...deps, signal: held.signal, hold: held.hold };
      if (fetched.status !== 'done') {
        // a day an earlier run committed but was stopped before cleaning up
        if (existsSync(mergedDayDir(deps.config, day))) await uploads(() => uploadDay(ctx, day));
        return fetched;
      }
      const merged = await merges(() => mergeDay(ctx, day));
      await uploads(() => uploadDay(ctx, day));
      // with dedupe, a day's keys are compared across the files of every run: one file a day
      if (deps.compact || deps.config.outputDedupe === 'latest') await merges(() => compactDay(ctx, day));
      return { status: 'done', objects: fetched.objects, bytes: fetched.bytes, records: merged.records, path: merged.path, ...(merged.dropped !== undefined ? { dropped: merged.dropped } : {}) };
    });
    return empty.seen(outcome);
  });
  empty.report();
  const listed = await deps.series.asked()?.catch(() => undefined);
  if (listed) await publishCatalog(deps, 'run', listed);
  return summary;
}

