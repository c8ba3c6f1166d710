/**
 * The local work folder, as the original laid it out: `<raw dir>/<Y>-<M>-<D>/`
 * holds a day's downloaded objects and the download manifest, `<merged
 * dir>/<Y>-<M>-<D>/` its merged file and batch. Folders are given as values;
 * nothing here reads the config.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { compareDays, isoDay, parseIsoDay, type Day } from '../partition/day.js';

export interface WorkDirs {
  rawDir: string;
  mergedDir: string;
}

/** Written by download when every selected object is on disk: merge's input. */
export const MANIFEST_FILE = 'manifest.json';
/** Written by merge beside the merged file: upload's input. */
export const BATCH_FILE = 'batch.json';
/** The original's index files: series already processed, series new in this download, and the merged day's. */
export const PREVIOUS_INDEX_FILE = 'timeseries-previous.txt';
export const NEW_INDEX_FILE = 'timeseries-new.txt';
export const MERGED_INDEX_FILE = 'timeseries.txt';
/** In the work dir: the ListTimeSeries summaries download found, for upload's series catalog. */
export const SERIES_CATALOG_FILE = 'series-catalog.json';

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

export function rawDayDir(dirs: WorkDirs, day: Day): string {
  return path.join(dirs.rawDir, dayFolderName(day));
}

export function mergedDayDir(dirs: WorkDirs, day: Day): string {
  return path.join(dirs.mergedDir, dayFolderName(day));
}

/** Where compact gathers a day's data files and writes the one that replaces them. */
export function compactDayDir(workDir: string, day: Day): string {
  return path.join(workDir, 'compact', dayFolderName(day));
}

/** The local file name for a key: the key below the day prefix, `/` encoded, so no key can point outside the folder. */
export function localName(key: string, dayPrefix: string): string {
  return encodeURIComponent(key.startsWith(dayPrefix) ? key.slice(dayPrefix.length) : key);
}

/** Day folders under `dir`, oldest first; other entries are left alone. */
export async function listDayFolders(dir: string): Promise<Day[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  return entries
    .filter((e) => e.isDirectory())
    .map((e) => parseDayFolderName(e.name))
    .filter((d): d is Day => d !== undefined)
    .sort(compareDays);
}
