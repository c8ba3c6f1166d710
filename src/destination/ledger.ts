import { isoDay, type Day } from '../partition/day.js';
import { DayError } from '../shared/errors.js';
import { arrayOf, boolean, checkShape, count, literal, object, optional, ShapeError, string, type Shape } from '../shared/json-shape.js';
import type { ObjectInfo, ObjectStore, PutCondition } from '../store/object-store.js';

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
  /** Source objects left out as bad (--skip-bad-objects), with why: not tried again until their ETag changes. */
  skipped?: SkippedObject[];
  /** Written by compact: the files whose batches this one replaced. */
  compactedFrom?: string[];
}

export interface SkippedObject extends ObjectInfo {
  reason: string;
}

export interface Ledger {
  version: 1;
  day: string;
  batches: LedgerBatch[];
}

const LEDGER: Shape<Ledger> = object<Ledger>({
  version: literal(1),
  day: string,
  batches: arrayOf(
    object<LedgerBatch>({
      file: string,
      records: count,
      objects: arrayOf(object<ObjectInfo>({ key: string, size: count, etag: string, storageClass: optional(string), versionId: optional(string) })),
      committedAt: string,
      adopted: optional(boolean),
      skipped: optional(arrayOf(object<SkippedObject>({ key: string, size: count, etag: string, storageClass: optional(string), versionId: optional(string), reason: string }))),
      compactedFrom: optional(arrayOf(string)),
    }),
  ),
});

export function emptyLedger(day: Day): Ledger {
  return { version: 1, day: isoDay(day), batches: [] };
}

/** A ledger as read, with the ETag a conditional commit names. */
export interface LedgerRead {
  ledger: Ledger;
  etag: string;
}

/** The ledger at `key`, checked field by field; undefined if the day has none. */
export async function readLedger(store: ObjectStore, key: string, signal?: AbortSignal): Promise<LedgerRead | undefined> {
  const read = await store.read(key, signal);
  if (read === undefined) return undefined;
  return { ledger: parseLedger(read.body, `s3://${store.name}/${key}`), etag: read.etag };
}

function parseLedger(body: Buffer, where: string): Ledger {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw new DayError(`${where}: the ledger is not valid JSON; restore it from a backup or version (nothing was changed)`);
  }
  const version = (doc as { version?: unknown } | null)?.version;
  if (typeof doc === 'object' && doc !== null && version !== 1) {
    throw new DayError(`${where}: ledger version ${String(version)} is not one this tool reads (1)`);
  }
  try {
    return checkShape(LEDGER, doc);
  } catch (err) {
    if (err instanceof ShapeError) throw new DayError(`${where}: the ledger's ${err.message}; restore it from a backup or version (nothing was changed)`);
    throw err;
  }
}

/** Writes the ledger, under `condition` when given (a conditional commit); returns its new ETag. */
export async function writeLedger(store: ObjectStore, key: string, ledger: Ledger, condition: PutCondition, signal?: AbortSignal): Promise<string> {
  return (await store.put(key, `${JSON.stringify(ledger, null, 1)}\n`, { contentType: 'application/json', ...condition }, signal)).etag;
}

/** The objects skipped as bad, by key (the latest skip of a key counts). */
export function skippedObjects(ledger: Ledger | undefined): Map<string, SkippedObject> {
  return new Map((ledger?.batches ?? []).flatMap((b) => (b.skipped ?? []).map((o) => [o.key, o] as const)));
}

/** Every source object the ledger names, by key. */
export function mergedObjects(ledger: Ledger | undefined): Map<string, ObjectInfo> {
  return new Map((ledger?.batches ?? []).flatMap((b) => b.objects.map((o) => [o.key, o] as const)));
}
