/**
 * The files one stage leaves for the next in a day folder: download's
 * manifest (merge's input) and merge's batch (upload's input); and in the
 * work dir, the series download listed (upload's series catalog). Each is
 * written atomically and checked field by field when read, so a damaged or
 * hand-edited file is named with the field that is wrong and what to do.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DayError } from '../shared/errors.js';
import { arrayOf, checkShape, count, object, optional, ShapeError, string, type Shape } from '../shared/json-shape.js';
import type { SelectedObject } from '../partition/select-objects.js';
import { CHECKSUM_ALGORITHMS } from '../shared/checksums.js';
import type { ContentCheck, ObjectInfo } from '../store/object-store.js';
import type { SeriesSummary } from '../sitewise/list-time-series.js';
import { BATCH_FILE, MANIFEST_FILE, SERIES_CATALOG_FILE } from './layout.js';

export interface DownloadManifest {
  /** The day folder's name. */
  day: string;
  coldBucket: string;
  /** `file`: the local name in the day folder (one path segment); `check`: what the download was checked against ('none': merge checks its blocks; absent in older manifests). */
  objects: (SelectedObject & { file: string; check?: ContentCheck })[];
  previousIds: string[];
  /** The inputs' batch hash under the destination's format version `format`, so merge need not sort and hash them again (absent in older manifests). */
  hash?: { format: number; value: string };
}

export interface MergedBatch {
  day: string;
  /** The merged file's name, in the day folder and in the destination. */
  file: string;
  /**
   * The merged file's size. Merge does not fsync (the durable copy is the one
   * upload verifies in S3), so after a power cut upload checks the file is
   * still whole before sending it.
   */
  bytes?: number;
  records: number;
  /** The merge path taken (block-copy, transcode, decode). */
  path: string;
  objects: SelectedObject[];
  seriesIds: string[];
  /** Inputs left out as bad (merge --skip-bad-objects), with why; upload records them in the ledger. */
  skipped?: (ObjectInfo & { reason: string })[];
}

/** A local file name: one path segment, so no entry can point outside its folder. */
const segment: Shape<string> = (value, at) => {
  const name = string(value, at);
  if (name === '' || name.includes('/') || name === '.' || name === '..') throw new ShapeError(at, `'${name}' is not a plain file name`);
  return name;
};

const contentCheck: Shape<ContentCheck> = (value, at) => {
  const check = string(value, at);
  if (check !== 'MD5' && check !== 'none' && !(CHECKSUM_ALGORITHMS as readonly string[]).includes(check)) throw new ShapeError(at, `'${check}' is not a content check this tool makes`);
  return check as ContentCheck;
};

const selectedObject = { key: string, size: count, etag: string, storageClass: optional(string), versionId: optional(string), seriesId: string };

const MANIFEST: Shape<DownloadManifest> = object<DownloadManifest>({
  day: string,
  coldBucket: string,
  objects: arrayOf(object<SelectedObject & { file: string; check?: ContentCheck }>({ ...selectedObject, file: segment, check: optional(contentCheck) })),
  previousIds: arrayOf(string),
  hash: optional(object({ format: count, value: string })),
});

const BATCH: Shape<MergedBatch> = object<MergedBatch>({
  day: string,
  file: segment,
  bytes: optional(count),
  records: count,
  path: string,
  objects: arrayOf(object<SelectedObject>(selectedObject)),
  seriesIds: arrayOf(string),
  skipped: optional(arrayOf(object<ObjectInfo & { reason: string }>({ key: string, size: count, etag: string, storageClass: optional(string), versionId: optional(string), reason: string }))),
});

const SERIES: Shape<SeriesSummary[]> = arrayOf(
  object<SeriesSummary>({ timeSeriesId: string, fileId: string, alias: optional(string), assetId: optional(string), propertyId: optional(string), dataType: optional(string) }),
);

export const manifestFile = (dayDir: string) => path.join(dayDir, MANIFEST_FILE);
export const batchFile = (dayDir: string) => path.join(dayDir, BATCH_FILE);

/** The day's manifest, or undefined if download has not finished the day. */
export function readManifest(rawDayDir: string): Promise<DownloadManifest | undefined> {
  return readChecked(manifestFile(rawDayDir), MANIFEST, 'delete the day folder and run download again');
}

export function writeManifest(rawDayDir: string, manifest: DownloadManifest): Promise<void> {
  return writeFileAtomic(manifestFile(rawDayDir), JSON.stringify(manifest));
}

/** Removed before a day is downloaded again, so merge never takes a day that is half new. */
export function removeManifest(rawDayDir: string): Promise<void> {
  return rm(manifestFile(rawDayDir), { force: true });
}

/** The day's batch, or undefined if merge has not finished the day. */
export function readBatch(mergedDayDir: string): Promise<MergedBatch | undefined> {
  return readChecked(batchFile(mergedDayDir), BATCH, 'delete the merged day folder and run merge again');
}

export function writeBatch(mergedDayDir: string, batch: MergedBatch): Promise<void> {
  return writeFileAtomic(batchFile(mergedDayDir), JSON.stringify(batch));
}

/** The ListTimeSeries summaries download left for upload's series catalog (work dir), or undefined. */
export function readSeriesCatalog(workDir: string): Promise<SeriesSummary[] | undefined> {
  return readChecked(path.join(workDir, SERIES_CATALOG_FILE), SERIES, 'delete it; the next download writes it again');
}

export function writeSeriesCatalog(workDir: string, series: SeriesSummary[]): Promise<void> {
  return writeFileAtomic(path.join(workDir, SERIES_CATALOG_FILE), JSON.stringify(series));
}

export function removeSeriesCatalog(workDir: string): Promise<void> {
  return rm(path.join(workDir, SERIES_CATALOG_FILE), { force: true });
}

/** Writes through a temporary name, so a file under its final name is complete. */
export async function writeFileAtomic(file: string, data: string | Buffer): Promise<void> {
  const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}

async function readChecked<T>(file: string, shape: Shape<T>, fix: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new DayError(`${file}: not readable JSON (${(err as Error).message}); ${fix}`);
  }
  try {
    return checkShape(shape, doc);
  } catch (err) {
    if (err instanceof ShapeError) throw new DayError(`${file}: ${err.message}; ${fix}`);
    throw err;
  }
}
