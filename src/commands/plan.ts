/**
 * `plan`: the range's days with what a run would download for each, as one
 * JSON array, for an orchestrator to fan out: a Step Functions Distributed
 * Map reads it from S3 (ItemReader, InputType JSON) and runs
 * `run --from DAY --to DAY` per item. Reads only: nothing is written but the
 * plan itself.
 */
import { dayPrefix, daysDescending, isoDay, type Day } from '../partition/day.js';
import type { CommandSummary } from '../shared/events.js';
import type { DownloadDeps } from './deps.js';
import { planDay } from './download.js';
import { forEachDay, shardDays } from './for-each-day.js';

export interface PlanItem {
  /** YYYY-MM-DD: the item's `run --from DAY --to DAY`. */
  day: string;
  /** Cold-tier objects listed for the day. */
  listedObjects: number;
  /** Of those, the ones a run would download now (not merged yet), and their bytes. */
  newObjects: number;
  newBytes: number;
  /** New objects in an archive storage class: the day's run fails until they are restored. */
  archivedObjects: number;
}

export interface PlanOptions {
  /** Also list days with nothing new (by default they are left out: a task per idle day costs money and does nothing). */
  allDays?: boolean;
}

export async function plan(deps: DownloadDeps, options: PlanOptions = {}): Promise<{ summary: CommandSummary; items: PlanItem[] }> {
  const days = shardDays(deps, 'plan', daysDescending(deps.range.from, deps.range.to));
  const items: PlanItem[] = [];
  const summary = await forEachDay(deps, 'plan', days, deps.config.concurrency, async (day: Day) => {
    const listed = await deps.cold.list(dayPrefix(deps.config.coldPrefix, day), deps.signal);
    const selection = await planDay(deps, day, listed, { dryRun: true });
    const selected = selection?.selected ?? [];
    const item = {
      day: isoDay(day),
      listedObjects: listed.length,
      newObjects: selected.length,
      newBytes: selected.reduce((n, o) => n + o.size, 0),
      archivedObjects: selection?.archived.length ?? 0,
    };
    if (item.newObjects + item.archivedObjects > 0 || options.allDays) items.push(item);
    return { status: item.newObjects > 0 ? 'done' : 'skipped', objects: item.newObjects, bytes: item.newBytes, reason: item.newObjects > 0 ? 'planned' : 'nothing new' };
  });
  items.sort((a, b) => (a.day < b.day ? -1 : 1));
  return { summary, items };
}
