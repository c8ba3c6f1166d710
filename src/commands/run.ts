import { existsSync } from 'node:fs';
import { daysDescending } from '../partition/day.js';
import type { CommandSummary, DayOutcome } from '../shared/events.js';
import { mergedDayDir } from '../workdir/layout.js';
import type { RunDeps } from './deps.js';
import { downloadDay } from './download.js';
import { forEachDay } from './for-each-day.js';
import { mergeDay } from './merge.js';
import { uploadDay } from './upload.js';

/** Days processed at once by `run`: local disk holds only these days' files. */
export const DAYS_IN_FLIGHT = 2;

/** download, merge and upload day by day, so the work dir holds only the days in flight. */
export async function run(deps: RunDeps, daysInFlight = DAYS_IN_FLIGHT): Promise<CommandSummary> {
  const days = daysDescending(deps.range.from, deps.range.to);
  return forEachDay(deps, 'run', days, daysInFlight, async (day): Promise<DayOutcome> => {
    const fetched = await downloadDay(deps, day);
    if (fetched.status !== 'done') {
      // a day an earlier run committed but was stopped before cleaning up
      if (existsSync(mergedDayDir(deps.config, day))) await uploadDay(deps, day);
      return fetched;
    }
    const merged = await mergeDay(deps, day);
    await uploadDay(deps, day);
    return { status: 'done', objects: fetched.objects, bytes: fetched.bytes, records: merged.records, path: merged.path };
  });
}
