/** The original's `timeseries.txt`: newline-separated series ids already processed for a day. */
import type { ObjectStore } from '../store/object-store.js';

export async function readIndex(store: ObjectStore, key: string, signal?: AbortSignal): Promise<string[] | undefined> {
  const body = await store.getBuffer(key, signal);
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
