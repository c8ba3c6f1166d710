import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { formatIndex } from '../destination/index-file.js';
import { mergedFileName, storedOrBatchHash } from '../destination/layout.js';
import { isoDay, type Day } from '../partition/day.js';
import { DayError } from '../shared/errors.js';
import type { CommandSummary, DayOutcome } from '../shared/events.js';
import { readBatch, readManifest, writeBatch, writeFileAtomic } from '../workdir/hand-off.js';
import { listDayFolders, MANIFEST_FILE, MERGED_INDEX_FILE, mergedDayDir, rawDayDir } from '../workdir/layout.js';
import type { MergeDeps } from './deps.js';
import { forEachDay, seconds } from './for-each-day.js';

/** Two days at once keep the disk busy while the other day's blocks are checked. */
const DAYS_MERGED_AT_ONCE = 2;

export async function merge(deps: MergeDeps): Promise<CommandSummary> {
  deps.emit({ type: 'log', stage: 'merge', level: 'info', message: 'Started merging AVRO data files and index files for each day' });
  const days = await listDayFolders(deps.config.rawDir);
  return forEachDay(deps, 'merge', days, DAYS_MERGED_AT_ONCE, (day) => mergeDay(deps, day));
}

/**
 * Merges a downloaded day into one file of the output format named after its
 * inputs, plus timeseries.txt and batch.json. Redone only when the output is
 * missing or was made from another set of inputs.
 */
export async function mergeDay(deps: MergeDeps, day: Day): Promise<DayOutcome> {
  const { config, emit, format } = deps;
  const name = isoDay(day);
  const rawDir = rawDayDir(config, day);
  const manifest = await readManifest(rawDir);
  if (!manifest) {
    emit({ type: 'log', stage: 'merge', day: name, level: 'warn', message: `${rawDir}: download did not finish (no ${MANIFEST_FILE}); run download again` });
    return { status: 'skipped', reason: 'download incomplete' };
  }
  const outDir = mergedDayDir(config, day);
  const hash = storedOrBatchHash(manifest.hash, manifest.objects);
  const file = mergedFileName(hash, format.extension);
  const existing = await readBatch(outDir);
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
  const inputs = manifest.objects.map((o) => ({
    file: `${rawDir}${path.sep}${o.file}`,
    name: `s3://${manifest.coldBucket}/${o.key}`,
    size: o.size,
    // an older manifest says nothing: its download compared MD5 ETags only
    checkContent: (o.check ?? (/^[0-9a-f]{32}$/.test(o.etag) ? 'MD5' : 'none')) === 'none',
  }));
  const result = await format
    .writeDay(inputs, part, {
      seed: hash,
      onInput: (_records, bytes) => {
        doneBytes += bytes;
        doneObjects++;
        emit({ type: 'progress', stage: 'merge', day: name, doneObjects, totalObjects: manifest.objects.length, doneBytes, totalBytes });
      },
    })
    .catch(async (err: unknown) => {
      // nothing half-made stays behind: an empty day folder would send upload and run looking for a batch
      await rm(outDir, { recursive: true, force: true });
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new DayError(`${rawDir}: a downloaded file is missing (${(err as Error).message}); run download again`);
      }
      throw err;
    });
  await rename(part, path.join(outDir, file));
  const seriesIds = [...new Set(manifest.objects.map((o) => o.seriesId))].sort();
  await writeFileAtomic(path.join(outDir, MERGED_INDEX_FILE), formatIndex([...manifest.previousIds, ...seriesIds]));
  const objects = manifest.objects.map(({ file: _f, ...o }) => o);
  await writeBatch(outDir, { day: manifest.day, file, bytes: result.bytesOut, records: result.records, path: result.path, objects, seriesIds });
  emit({ type: 'log', stage: 'merge', day: name, level: 'info', message: `${manifest.day}: ** Merge Time: ${seconds(t0)} secs **` });
  return { status: 'done', objects: manifest.objects.length, bytes: result.bytesIn, records: result.records, path: result.path };
}
