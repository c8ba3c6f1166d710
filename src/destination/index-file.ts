/** The original's `timeseries.txt`: newline-separated series ids already processed for a day. */
import type { ObjectStore } from '../store/object-store.js';

/** The index's series ids and its ETag; undefined if the day has none. */
export async function readIndex(store: ObjectStore, key: string, signal?: AbortSignal): Promise<{ ids: string[]; etag: string } | undefined> {
  const read = await store.read(key, signal);
  return read && { ids: parseIndex(read.body.toString('utf8')), etag: read.etag };
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
