import { dayPrefix, isoDay, type Day } from '../partition/day.js';
import type { Bucket, ObjectInfo } from '../s3/bucket.js';
import { DayError } from '../errors.js';

/**
 * The per-day ledger kept in the destination beside timeseries.txt: every
 * source object merged for the day, by key, size and ETag, grouped by the
 * merged file that holds its records. Writing it is the day's commit.
 */
export interface LedgerBatch {
  /** Name of the merged file under the day's data prefix. */
  file: string;
  records: number;
  objects: ObjectInfo[];
  committedAt: string;
  /** Found in a destination written by the original sample, not merged by us. */
  adopted?: boolean;
}

export interface Ledger {
  version: 1;
  day: string;
  batches: LedgerBatch[];
}

export const LEDGER_FILE = 'ledger.json';
export const INDEX_FILE = 'timeseries.txt';

export function ledgerKey(indexPrefix: string, day: Day): string {
  return `${dayPrefix(indexPrefix, day)}${LEDGER_FILE}`;
}

export function indexKey(indexPrefix: string, day: Day): string {
  return `${dayPrefix(indexPrefix, day)}${INDEX_FILE}`;
}

export function emptyLedger(day: Day): Ledger {
  return { version: 1, day: isoDay(day), batches: [] };
}

export async function readLedger(dest: Bucket, indexPrefix: string, day: Day): Promise<Ledger | undefined> {
  const key = ledgerKey(indexPrefix, day);
  const body = await dest.getBuffer(key);
  if (body === undefined) return undefined;
  let ledger: Ledger;
  try {
    ledger = JSON.parse(body.toString('utf8')) as Ledger;
  } catch {
    throw new DayError(`s3://${dest.name}/${key}: the ledger is not valid JSON; restore it from a backup or version (nothing was changed)`);
  }
  if (ledger.version !== 1 || !Array.isArray(ledger.batches)) {
    throw new DayError(`s3://${dest.name}/${key}: ledger version ${String(ledger.version)} is not one this tool reads (1)`);
  }
  return ledger;
}

export async function writeLedger(dest: Bucket, indexPrefix: string, day: Day, ledger: Ledger): Promise<void> {
  await dest.putBuffer(ledgerKey(indexPrefix, day), `${JSON.stringify(ledger, null, 1)}\n`, 'application/json');
}

export function mergedObjects(ledger: Ledger | undefined): Map<string, ObjectInfo> {
  return new Map((ledger?.batches ?? []).flatMap((b) => b.objects.map((o) => [o.key, o] as const)));
}

export async function readIndex(dest: Bucket, indexPrefix: string, day: Day): Promise<string[] | undefined> {
  const body = await dest.getBuffer(indexKey(indexPrefix, day));
  return body === undefined ? undefined : parseIndex(body.toString('utf8'));
}

export function parseIndex(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/** Sorted, unique, newline-separated: what the original's readers expect. */
export function formatIndex(ids: Iterable<string>): string {
  const sorted = [...new Set(ids)].sort();
  return sorted.length ? `${sorted.join('\n')}\n` : '';
}
