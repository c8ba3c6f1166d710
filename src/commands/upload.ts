import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { DayCommit } from '../destination/day-commit.js';
import { dataKey } from '../destination/layout.js';
import { megabytes } from '../shared/units.js';
import { compactDay } from './compact.js';
import { contentTypeOf } from '../output/formats.js';
import { isoDay, type Day } from '../partition/day.js';
import { DayError } from '../shared/errors.js';
import type { CommandSummary, DayOutcome } from '../shared/events.js';
import { readBatch, readSeriesCatalog, removeSeriesCatalog } from '../workdir/hand-off.js';
import { catalogKey, writeCatalog } from '../destination/series-catalog.js';
import type { SeriesSummary } from '../sitewise/list-time-series.js';
import { BATCH_FILE, listDayFolders, mergedDayDir, rawDayDir } from '../workdir/layout.js';
import type { UploadDeps } from './deps.js';
import { commitOptions, forEachDay, seconds, shardDays, underHold } from './for-each-day.js';

export async function upload(deps: UploadDeps, options: { dryRun?: boolean } = {}): Promise<CommandSummary> {
  deps.emit({ type: 'log', stage: 'upload', level: 'info', message: 'Started uploading re-partitioned AVRO data files and index file for each day' });
  const merged = await listDayFolders(deps.config.mergedDir);
  if (merged.length === 0) deps.emit({ type: 'log', stage: 'upload', level: 'info', message: `no merged day in ${deps.config.mergedDir}: run merge first` });
  const days = shardDays(deps, 'upload', merged);
  if (options.dryRun) return forEachDay(deps, 'upload', days, 2, (day) => uploadDryRun(deps, day));
  const summary = await forEachDay(deps, 'upload', days, 2, (day) =>
    underHold(deps, 'upload', day, async (held) => {
      const outcome = await uploadDay(held, day);
      if (deps.compactWith && outcome.status === 'done') await compactDay({ ...held, format: deps.compactWith }, day);
      return outcome;
    }),
  );
  const listed = await readSeriesCatalog(deps.config.workDir).catch((err: unknown) => {
    deps.emit({ type: 'log', stage: 'upload', level: 'warn', message: `series catalog not written: ${(err as Error).message}` });
    return undefined;
  });
  if (listed && (await publishCatalog(deps, 'upload', listed))) await removeSeriesCatalog(deps.config.workDir);
  return summary;
}

/** What upload would do with a merged day, read from the destination and written nowhere. */
async function uploadDryRun(deps: UploadDeps, day: Day): Promise<DayOutcome> {
  const { config, emit } = deps;
  const name = isoDay(day);
  const log = (message: string) => emit({ type: 'log', stage: 'upload', day: name, level: 'info', message });
  const outDir = mergedDayDir(config, day);
  const batch = await readBatch(outDir);
  if (!batch) {
    log(`${name}: ${outDir}: merge did not finish (no ${BATCH_FILE}); would skip it`);
    return { status: 'skipped', reason: 'merge incomplete, dry run' };
  }
  const commit = await DayCommit.open(deps.dest, config, day, { signal: deps.signal });
  const bytes = (await stat(path.join(outDir, batch.file))).size;
  if (commit.isCommitted(batch.file)) {
    log(`${name}: ${batch.file} is committed already; would only clean up the local folders`);
    return { status: 'skipped', objects: batch.objects.length, records: batch.records, reason: 'already committed, dry run' };
  }
  const others = commit.ledger.batches.length;
  const compact = deps.compactWith && others > 0 ? `, then compact the day's ${others + 1} files into one (output.dedupe: latest)` : '';
  log(`${name}: would upload ${batch.file} (${megabytes(bytes)}, ${batch.records} records of ${batch.objects.length} objects) to s3://${deps.dest.name}/${dataKey(config, day, batch.file)} and commit it beside ${others} earlier file(s)${compact}`);
  return { status: 'done', objects: batch.objects.length, bytes, records: batch.records, reason: 'dry run' };
}

/**
 * Merges the series listed this run into the destination's series catalog.
 * A failure is a warning: the data is committed, and the next run writes the
 * catalog again. Returns whether it is in the destination.
 */
export async function publishCatalog(deps: UploadDeps, stage: 'upload' | 'run', listed: SeriesSummary[]): Promise<boolean> {
  const key = catalogKey(deps.config);
  try {
    const { series, written } = await writeCatalog(deps.dest, key, listed, deps.guard.conditional, deps.signal);
    deps.emit({ type: 'log', stage, level: written ? 'info' : 'detail', message: `series catalog s3://${deps.dest.name}/${key}: ${series} series${written ? '' : ', unchanged'}` });
    return true;
  } catch (err) {
    if (deps.signal.aborted) throw err;
    deps.emit({ type: 'log', stage, level: 'warn', message: `series catalog s3://${deps.dest.name}/${key} not written (${(err as Error).message}); the next run tries again` });
    return false;
  }
}

/**
 * Uploads a merged day and commits it (see DayCommit for the protocol), then
 * removes the day's local folders. The caller holds the day (underHold).
 */
export async function uploadDay(deps: UploadDeps, day: Day): Promise<DayOutcome> {
  const { config, emit } = deps;
  const name = isoDay(day);
  const outDir = mergedDayDir(config, day);
  const batch = await readBatch(outDir);
  if (!batch) {
    emit({ type: 'log', stage: 'upload', day: name, level: 'warn', message: `${outDir}: merge did not finish (no ${BATCH_FILE}); run merge again` });
    return { status: 'skipped', reason: 'merge incomplete' };
  }
  const t0 = Date.now();
  const commit = await DayCommit.open(deps.dest, config, day, commitOptions(deps));
  commit.assertAdopted();
  const committed = commit.isCommitted(batch.file);
  if (!committed) {
    const overlap = commit.alreadyCommitted(batch.objects);
    if (overlap.length > 0) {
      await rm(outDir, { recursive: true, force: true });
      throw new DayError(`merged folder is stale: ${overlap.length} of its objects (e.g. ${overlap[0]!.key}) were committed by another run; discarded it, run download and merge again`);
    }
    const file = path.join(outDir, batch.file);
    const totalBytes = (await stat(file)).size;
    if (batch.bytes !== undefined && totalBytes !== batch.bytes) {
      // cut short by a crash before the page cache reached the disk
      await rm(outDir, { recursive: true, force: true });
      throw new DayError(`${file} has ${totalBytes} bytes where merge wrote ${batch.bytes}; discarded it, run merge again`);
    }
    await commit.commit(batch, file, {
      contentType: contentTypeOf(batch.file),
      transfers: deps.transfers,
      onBytes: (loaded) => emit({ type: 'progress', stage: 'upload', day: name, doneObjects: loaded >= totalBytes ? 1 : 0, totalObjects: 1, doneBytes: loaded, totalBytes }),
    });
  }
  await commit.finish(batch.seriesIds, (level, message) => emit({ type: 'log', stage: 'upload', day: name, level, message }));
  // raw first: the merged folder is what makes a rerun come back to finish the clean-up
  await rm(rawDayDir(config, day), { recursive: true, force: true });
  await rm(outDir, { recursive: true, force: true });
  emit({ type: 'log', stage: 'upload', day: name, level: 'info', message: `${name}: ** Upload Time: ${seconds(t0)} secs **` });
  return { status: committed ? 'skipped' : 'done', objects: batch.objects.length, records: batch.records, reason: committed ? 'already committed' : undefined };
}
