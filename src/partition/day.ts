import { addDays, format, isValid, parse } from 'date-fns';

/** A calendar day of the cold tier's partitioning (UTC, as SiteWise writes it). */
export interface Day {
  year: number;
  month: number;
  day: number;
}

const ISO_DAY = 'yyyy-MM-dd';

export function parseIsoDay(text: string): Day | undefined {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return undefined;
  const date = parse(text, ISO_DAY, new Date(0));
  if (!isValid(date) || format(date, ISO_DAY) !== text) return undefined;
  return { year: date.getFullYear(), month: date.getMonth() + 1, day: date.getDate() };
}

export function isoDay(d: Day): string {
  return `${d.year}-${String(d.month).padStart(2, '0')}-${String(d.day).padStart(2, '0')}`;
}

/** The original's local folder name: `<Y>-<M>-<D>`, not zero-padded. */
export function dayFolderName(d: Day): string {
  return `${d.year}-${d.month}-${d.day}`;
}

export function parseDayFolderName(name: string): Day | undefined {
  const m = /^(\d{4})-(\d{1,2})-(\d{1,2})$/.exec(name);
  if (!m) return undefined;
  const day = { year: Number(m[1]), month: Number(m[2]), day: Number(m[3]) };
  return dayFolderName(day) === name && parseIsoDay(isoDay(day)) ? day : undefined;
}

/** `startYear=Y/startMonth=M/startDay=D/` under a prefix, as SiteWise and the original write it. */
export function dayPrefix(prefix: string, d: Day): string {
  return `${prefix}startYear=${d.year}/startMonth=${d.month}/startDay=${d.day}/`;
}

export function compareDays(a: Day, b: Day): number {
  return isoDay(a).localeCompare(isoDay(b));
}

/** Days from `to` back to `from`, the original's order. */
export function daysDescending(from: Day, to: Day): Day[] {
  const days: Day[] = [];
  const start = new Date(from.year, from.month - 1, from.day);
  for (let d = new Date(to.year, to.month - 1, to.day); d >= start; d = addDays(d, -1)) {
    days.push({ year: d.getFullYear(), month: d.getMonth() + 1, day: d.getDate() });
  }
  return days;
}
