import { createHash } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { mergeFiles } from '../avro/merge-files.js';
import { DayError } from '../errors.js';
import type { CommandSummary, DayOutcome } from '../events.js';
import { formatIndex } from '../ledger/ledger.js';
import { compareDays, isoDay, parseDayFolderName, type Day } from '../partition/day.js';
import {
  BATCH_FILE,
  MANIFEST_FILE,
  manifestHash,
  mergedDayDir,
  mergedFileName,
  rawDayDir,
  readJson,
  writeFileAtomic,
  type DownloadManifest,
  type MergedBatch,
} from '../partition/local-day.js';
import { forEachDay, seconds, type Context } from './context.js';

/** Local day folders under `dir`, oldest first; other entries are left alone. */
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

/** Two days at once keep the disk busy while the other day's blocks are checked. */
const DAYS_MERGED_AT_ONCE = 2;

export async function merge(ctx: Context, options: MergeCommandOptions = {}): Promise<CommandSummary> {
  ctx.emit({ type: 'log', stage: 'merge', level: 'info', message: 'Started merging AVRO data files and index files for each day' });
  const days = await listDayFolders(ctx.config.rawDir);
  return forEachDay(ctx, 'merge', days, DAYS_MERGED_AT_ONCE, (day) => mergeDay(ctx, day, options));
}

export interface MergeCommandOptions {
  /** true: also decompress every snappy block and check its CRC (structure is always checked). */
  checkCrc?: boolean;
}

/**
 * Merges a downloaded day into one snappy Avro file named after its inputs,
 * plus timeseries.txt and batch.json. Redone only when the output is missing or
 * was made from another set of inputs.
 */
export async function mergeDay(ctx: Context, day: Day, options: MergeCommandOptions = {}): Promise<DayOutcome> {
  const { config, emit } = ctx;
  const name = isoDay(day);
  const rawDir = rawDayDir(config, day);
  const manifest = await readJson<DownloadManifest>(path.join(rawDir, MANIFEST_FILE));
  if (!manifest) {
    emit({ type: 'log', stage: 'merge', day: name, level: 'warn', message: `${rawDir}: download did not finish (no ${MANIFEST_FILE}); run download again` });
    return { status: 'skipped', reason: 'download incomplete' };
  }
  const outDir = mergedDayDir(config, day);
  const hash = manifestHash(manifest);
  const file = mergedFileName(hash);
  const existing = await readJson<MergedBatch>(path.join(outDir, BATCH_FILE));
  if (existing?.file === file && (await stat(path.join(outDir, file)).catch(() => undefined))) {
    emit({ type: 'log', stage: 'merge', day: name, level: 'detail', message: `${manifest.day}: already merged into ${file}` });
    return { status: 'skipped', reason: 'already merged' };
  }
  const t0 = Date.now();
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  const part = path.join(outDir, `${file}.part`);
  const totalBytes = manifest.objects.reduce((n, o) => n + o.size, 0);
  let doneBytes = 0;
  let doneObjects = 0;
  // o.file is one encoded path segment (localName); a template costs less than path.join per object
  const result = await mergeFiles(
    manifest.objects.map((o) => ({ file: `${rawDir}${path.sep}${o.file}`, name: `s3://${manifest.coldBucket}/${o.key}`, size: o.size })),
    part,
    {
      // Derived from the inputs, so the same inputs give the same bytes and ETag.
      sync: createHash('sha256').update(`sync:${hash}`).digest().subarray(0, 16),
      checkCrc: options.checkCrc,
      onInput: (_records, bytes) => {
        doneBytes += bytes;
        doneObjects++;
        emit({ type: 'progress', stage: 'merge', day: name, doneObjects, totalObjects: manifest.objects.length, doneBytes, totalBytes });
      },
    },
  ).catch(async (err: unknown) => {
    // nothing half-made stays behind: an empty day folder would send upload and run looking for a batch
    await rm(outDir, { recursive: true, force: true });
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DayError(`${rawDir}: a downloaded file is missing (${(err as Error).message}); run download again`);
    }
    throw err;
  });
  await rename(part, path.join(outDir, file));
  const seriesIds = [...new Set(manifest.objects.map((o) => o.seriesId))].sort();
  await writeFileAtomic(path.join(outDir, 'timeseries.txt'), formatIndex([...manifest.previousIds, ...seriesIds]));
  const objects = manifest.objects.map(({ file: _f, ...o }) => o);
  const batch: MergedBatch = { day: manifest.day, file, bytes: result.bytesOut, records: result.records, path: result.path, objects, seriesIds };
  await writeFileAtomic(path.join(outDir, BATCH_FILE), JSON.stringify(batch));
  emit({ type: 'log', stage: 'merge', day: name, level: 'info', message: `${manifest.day}: ** Merge Time: ${seconds(t0)} secs **` });
  return { status: 'done', objects: manifest.objects.length, bytes: result.bytesIn, records: result.records, path: result.path };
}
