import { ARCHIVE_CLASSES, type ObjectInfo } from '../store/object-store.js';
import { parseDataKey } from './parse-data-key.js';

export interface SelectedObject extends ObjectInfo {
  seriesId: string;
}

export interface Selection {
  selected: SelectedObject[];
  alreadyMerged: number;
  /** Merged before, but the source now has another size or ETag: reported, not merged again. */
  changed: ObjectInfo[];
  notListed: string[];
  unparseable: string[];
  /** Keys with `.` or `..` path segments: never written locally. */
  unsafe: string[];
  /** New objects in an archive storage class: they cannot be read until restored. */
  archived: ObjectInfo[];
  /** Skipped as bad by an earlier merge (--skip-bad-objects) and unchanged since: not tried again. */
  skippedBad: number;
}

/**
 * Which of a day's listed objects to merge: the data objects not yet in the
 * ledger whose series is known (every series when `known` is undefined), and
 * not skipped as bad before unless they have changed since.
 */
export function selectObjects(listed: ObjectInfo[], merged: Map<string, ObjectInfo>, known: Set<string> | undefined, skipped: Map<string, ObjectInfo> = new Map()): Selection {
  const s = emptySelection();
  for (const o of listed) {
    if (o.key.endsWith('/')) continue;
    const parsed = parseDataKey(o.key);
    if (!parsed) {
      s.unparseable.push(o.key);
      continue;
    }
    if (o.key.split('/').some((seg) => seg === '..' || seg === '.') || o.key.startsWith('/')) {
      s.unsafe.push(o.key);
      continue;
    }
    const before = merged.get(o.key);
    if (before) {
      if (before.etag === o.etag && before.size === o.size) s.alreadyMerged++;
      else s.changed.push(o);
      continue;
    }
    const bad = skipped.get(o.key);
    if (bad && bad.etag === o.etag && bad.size === o.size) {
      s.skippedBad++;
      continue;
    }
    if (known && !known.has(parsed.seriesId)) {
      s.notListed.push(o.key);
      continue;
    }
    if (o.storageClass && ARCHIVE_CLASSES.includes(o.storageClass)) {
      s.archived.push(o);
      continue;
    }
    s.selected.push({ key: o.key, size: o.size, etag: o.etag, seriesId: parsed.seriesId });
  }
  return s;
}

export const emptySelection = (): Selection => ({ selected: [], alreadyMerged: 0, changed: [], notListed: [], unparseable: [], unsafe: [], archived: [], skippedBad: 0 });

/** Adds the selection of more keys (the next page of a listing) to `into`. */
export function addTo(into: Selection, more: Selection): void {
  into.selected.push(...more.selected);
  into.changed.push(...more.changed);
  into.notListed.push(...more.notListed);
  into.unparseable.push(...more.unparseable);
  into.unsafe.push(...more.unsafe);
  into.archived.push(...more.archived);
  into.alreadyMerged += more.alreadyMerged;
  into.skippedBad += more.skippedBad;
}
