import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { formatIndex } from '../destination/index-file.js';
import { batchHash, mergedFileName, storedOrBatchHash } from '../destination/layout.js';
import { BadInputsError, type DayWritten } from '../output/output-format.js';
import { isoDay, type Day } from '../partition/day.js';
import { DayError } from '../shared/errors.js';
import type { CommandSummary, DayOutcome } from '../shared/events.js';
import type { ObjectInfo } from '../store/object-store.js';
import { readBatch, readManifest, writeBatch, writeFileAtomic, type DownloadManifest } from '../workdir/hand-off.js';
import { listDayFolders, MANIFEST_FILE, MERGED_INDEX_FILE, mergedDayDir, rawDayDir } from '../workdir/layout.js';
import type { MergeDeps } from './deps.js';
import { forEachDay, seconds } from './for-each-day.js';

export async function merge(deps: MergeDeps): Promise<CommandSummary> {
  deps.emit({ type: 'log', stage: 'merge', level: 'info', message: 'Started merging AVRO data files and index files for each day' });
  const days = await listDayFolders(deps.config.rawDir);
  if (days.length === 0) deps.emit({ type: 'log', stage: 'merge', level: 'info', message: `no downloaded day in ${deps.config.rawDir}: run download first` });
  return forEachDay(deps, 'merge', days, deps.format.daysAtOnce, (day) => mergeDay(deps, day));
}

type ManifestObject = DownloadManifest['objects'][number];

/**
 * Merges a downloaded day into one file of the output format named after its
 * inputs, plus timeseries.txt and batch.json. Redone only when the output is
 * missing or was made from another set of inputs. With `skipBadObjects`, inputs
 * the format cannot use are left out (and listed in the batch, with why), and
 * the rest merged.
 */
export async function mergeDay(deps: MergeDeps, day: Day): Promise<DayOutcome> {
  const { config, emit, format } = deps;
  const name = isoDay(day);
  const log = (level: 'info' | 'warn' | 'detail', message: string) => emit({ type: 'log', stage: 'merge', day: name, level, message });
  const rawDir = rawDayDir(config, day);
  const manifest = await readManifest(rawDir);
  if (!manifest) {
    log('warn', `${rawDir}: download did not finish (no ${MANIFEST_FILE}); run download again`);
    return { status: 'skipped', reason: 'download incomplete' };
  }
  const outDir = mergedDayDir(config, day);
  const existing = await readBatch(outDir);
  // a day merged before without some bad inputs is named after the others
  const before = new Set(deps.skipBadObjects ? (existing?.skipped ?? []).map((o) => o.key) : []);
  const planned = manifest.objects.filter((o) => !before.has(o.key));
  const plannedHash = before.size > 0 ? batchHash(planned) : storedOrBatchHash(manifest.hash, manifest.objects);
  if (existing?.file === mergedFileName(plannedHash, format.extension) && (await stat(path.join(outDir, existing.file)).catch(() => undefined))) {
    log('detail', `${name}: already merged into ${existing.file}`);
    return { status: 'skipped', reason: 'already merged' };
  }
  const t0 = Date.now();
  let use = manifest.objects;
  const skipped: (ObjectInfo & { reason: string })[] = [];
  for (;;) {
    const hash = skipped.length > 0 ? batchHash(use) : storedOrBatchHash(manifest.hash, manifest.objects);
    const file = mergedFileName(hash, format.extension);
    try {
      const result = await writeMerged(deps, day, manifest.coldBucket, use, outDir, file, hash);
      const seriesIds = [...new Set(use.map((o) => o.seriesId))].sort();
      await writeFileAtomic(path.join(outDir, MERGED_INDEX_FILE), formatIndex([...manifest.previousIds, ...seriesIds]));
      const objects = use.map(({ file: _f, check: _c, ...o }) => o);
      await writeBatch(outDir, { day: manifest.day, file, bytes: result.bytesOut, records: result.records, path: result.path, objects, seriesIds, ...(skipped.length ? { skipped } : {}) });
      if (result.dropped !== undefined) log('info', `${name}: ${result.dropped} records dropped as older versions (output.dedupe: latest), ${result.records} kept`);
      log('info', `${name}: ** Merge Time: ${seconds(t0)} secs **`);
      return {
        status: 'done',
        objects: use.length,
        bytes: result.bytesIn,
        records: result.records,
        path: result.path,
        ...(result.dropped !== undefined ? { dropped: result.dropped } : {}),
        ...(skipped.length ? { reason: `${skipped.length} bad object(s) skipped` } : {}),
      };
    } catch (err) {
      if (!(err instanceof BadInputsError) || !deps.skipBadObjects) throw err;
      const bad = new Map(err.bad.map((b) => [b.name, b.reason]));
      const left = use.filter((o) => !bad.has(inputName(manifest.coldBucket, o)));
      if (left.length === use.length) throw err;
      for (const o of use) {
        const reason = bad.get(inputName(manifest.coldBucket, o));
        if (reason === undefined) continue;
        skipped.push({ key: o.key, size: o.size, etag: o.etag, reason });
        log('warn', `skipping ${inputName(manifest.coldBucket, o)} (--skip-bad-objects): ${reason}`);
      }
      if (left.length === 0) throw new DayError(`every object of the day is bad, nothing to merge: ${err.message}`);
      use = left;
    }
  }
}

const inputName = (bucket: string, o: ManifestObject) => `s3://${bucket}/${o.key}`;

async function writeMerged(deps: MergeDeps, day: Day, coldBucket: string, objects: ManifestObject[], outDir: string, file: string, seed: string): Promise<DayWritten> {
  const rawDir = rawDayDir(deps.config, day);
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  const part = path.join(outDir, `${file}.part`);
  const totalBytes = objects.reduce((n, o) => n + o.size, 0);
  let doneBytes = 0;
  let doneObjects = 0;
  // o.file is one encoded path segment (localName); a template costs less than path.join per object
  const inputs = objects.map((o) => ({
    file: `${rawDir}${path.sep}${o.file}`,
    name: inputName(coldBucket, o),
    size: o.size,
    seriesId: o.seriesId,
    // an older manifest says nothing: its download compared MD5 ETags only
    checkContent: (o.check ?? (/^[0-9a-f]{32}$/.test(o.etag) ? 'MD5' : 'none')) === 'none',
  }));
  const result = await deps.format
    .writeDay(inputs, part, {
      seed,
      onInput: (_records, bytes) => {
        doneBytes += bytes;
        doneObjects++;
        deps.emit({ type: 'progress', stage: 'merge', day: isoDay(day), doneObjects, totalObjects: objects.length, doneBytes, totalBytes });
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
  return result;
}
