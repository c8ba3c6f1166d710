import { existsSync } from 'node:fs';
import type { CommandSummary, DayOutcome } from '../events.js';
import { mergedDayDir } from '../partition/local-day.js';
import { daysDescending } from '../partition/day.js';
import { forEachDay, need, type Context } from './context.js';
import { downloadDay } from './download.js';
import { mergeDay, type MergeCommandOptions } from './merge.js';
import { uploadDay } from './upload.js';

/** Days processed at once by `run`: local disk holds only these days' files. */
export const DAYS_IN_FLIGHT = 2;

/** download, merge and upload day by day, so the work dir holds only the days in flight. */
export async function run(ctx: Context, options: MergeCommandOptions = {}, daysInFlight = DAYS_IN_FLIGHT): Promise<CommandSummary> {
  const days = daysDescending(need(ctx.config.from, 'date_start'), need(ctx.config.to, 'date_end'));
  return forEachDay(ctx, 'run', days, daysInFlight, async (day): Promise<DayOutcome> => {
    const fetched = await downloadDay(ctx, day);
    if (fetched.status !== 'done') {
      // a day an earlier run committed but was stopped before cleaning up
      if (existsSync(mergedDayDir(ctx.config, day))) await uploadDay(ctx, day);
      return fetched;
    }
    const merged = await mergeDay(ctx, day, options);
    await uploadDay(ctx, day);
    return { status: 'done', objects: fetched.objects, bytes: fetched.bytes, records: merged.records, path: merged.path };
  });
}
