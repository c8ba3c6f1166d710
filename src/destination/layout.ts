/**
 * Where things live in the destination bucket, under the original's layout:
 * merged files at `{data prefix}startYear=Y/startMonth=M/startDay=D/<name>`,
 * and beside the original's `timeseries.txt` under the index prefix, the
 * ledger that makes a day's commit. Prefixes are given as values.
 */
import { createHash } from 'node:crypto';
import { dayPrefix, type Day } from '../partition/day.js';
import type { ObjectInfo } from '../store/object-store.js';

export interface DestinationLayout {
  dataPrefix: string;
  indexPrefix: string;
}

/**
 * Bumped when the merged output for the same inputs would differ, so that a
 * new version never reuses an old version's object name.
 */
export const FORMAT_VERSION = 1;

export const LEDGER_FILE = 'ledger.json';
export const INDEX_FILE = 'timeseries.txt';
export const LEASE_FILE = 'lease.json';

export const dataDayPrefix = (layout: DestinationLayout, day: Day) => dayPrefix(layout.dataPrefix, day);
export const dataKey = (layout: DestinationLayout, day: Day, file: string) => `${dataDayPrefix(layout, day)}${file}`;
export const ledgerKey = (layout: DestinationLayout, day: Day) => `${dayPrefix(layout.indexPrefix, day)}${LEDGER_FILE}`;
export const indexKey = (layout: DestinationLayout, day: Day) => `${dayPrefix(layout.indexPrefix, day)}${INDEX_FILE}`;
export const leaseKey = (layout: DestinationLayout, day: Day) => `${dayPrefix(layout.indexPrefix, day)}${LEASE_FILE}`;
/** Where the conditional-write probe writes (and deletes) its scratch object: one key per run. */
export const probeKey = (layout: DestinationLayout, runId: string) => `${layout.indexPrefix}conditional-write-probe-${runId}.tmp`;

/** `merged_series_v<format>-<hash of the inputs><extension>` (hash: batchHash): a retried upload lands on the same name. */
export function mergedFileName(hash: string, extension: string): string {
  return `merged_series_v${FORMAT_VERSION}-${hash.slice(0, 24)}${extension}`;
}

const MERGED_NAME = /^merged_series_v\d+-[0-9a-f]{24}\.[a-z0-9]+$/;

/** Whether the last segment of `key` is a merged file's name, of any version and format. */
export function isMergedFile(key: string): boolean {
  return MERGED_NAME.test(key.slice(key.lastIndexOf('/') + 1));
}

/** What names a batch: its inputs' keys, ETags and sizes, in any order, under FORMAT_VERSION. */
export function batchHash(objects: readonly ObjectInfo[]): string {
  const lines = objects.map((o) => `${o.key}\t${o.etag}\t${o.size}`).sort();
  return createHash('sha256').update(`v${FORMAT_VERSION}\n${lines.join('\n')}`).digest('hex');
}

/** A hash stored with the inputs (by download) if it was made under this FORMAT_VERSION, else computed. */
export function storedOrBatchHash(stored: { format: number; value: string } | undefined, objects: readonly ObjectInfo[]): string {
  return stored?.format === FORMAT_VERSION ? stored.value : batchHash(objects);
}
