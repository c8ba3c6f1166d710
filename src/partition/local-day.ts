import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/load-config.js';
import type { SelectedObject } from './select-objects.js';
import { dayFolderName, type Day } from './day.js';

/**
 * Bumped when the merged output for the same inputs would differ, so that a
 * new version never reuses an old version's object name.
 */
export const FORMAT_VERSION = 1;

/** Written by download when every selected object is on disk: merge's input. */
export interface DownloadManifest {
  day: string;
  coldBucket: string;
  objects: (SelectedObject & { file: string })[];
  previousIds: string[];
  /** batchHash(objects) under FORMAT_VERSION `format`, so merge need not sort and hash them again (absent in older manifests). */
  hash?: { format: number; value: string };
}

/** Written by merge beside the merged file: upload's input and the ledger entry to commit. */
export interface MergedBatch {
  day: string;
  file: string;
  /**
   * The merged file's size. Merge does not fsync (the durable copy is the one
   * upload verifies in S3), so after a power cut upload checks the file is
   * still whole before sending it.
   */
  bytes?: number;
  records: number;
  path: string;
  objects: SelectedObject[];
  seriesIds: string[];
}

export const MANIFEST_FILE = 'manifest.json';
export const BATCH_FILE = 'batch.json';

export function rawDayDir(config: Config, day: Day): string {
  return path.join(config.rawDir, dayFolderName(day));
}

export function mergedDayDir(config: Config, day: Day): string {
  return path.join(config.mergedDir, dayFolderName(day));
}

/** The local file name for a key: the key below the day prefix, `/` encoded, so no key can point outside the folder. */
export function localName(key: string, dayPrefix: string): string {
  return encodeURIComponent(key.startsWith(dayPrefix) ? key.slice(dayPrefix.length) : key);
}

/** `merged_series_v<format>-<hash of the inputs>.avro` (hash: batchHash): a retried upload lands on the same name. */
export function mergedFileName(hash: string): string {
  return `merged_series_v${FORMAT_VERSION}-${hash.slice(0, 24)}.avro`;
}

export const MERGED_NAME = /^merged_series_v\d+-[0-9a-f]{24}\.avro$/;

/** The manifest's stored hash if it was made under this FORMAT_VERSION, else computed. */
export function manifestHash(manifest: DownloadManifest): string {
  return manifest.hash?.format === FORMAT_VERSION ? manifest.hash.value : batchHash(manifest.objects);
}

export function batchHash(objects: readonly SelectedObject[]): string {
  const lines = objects.map((o) => `${o.key}\t${o.etag}\t${o.size}`).sort();
  return createHash('sha256').update(`v${FORMAT_VERSION}\n${lines.join('\n')}`).digest('hex');
}

/** Writes through a temporary name, so a file under its final name is complete. */
export async function writeFileAtomic(file: string, data: string | Buffer): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}

export async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`${file}: not readable JSON (${(err as Error).message}); delete the day folder and run download again`);
  }
}
