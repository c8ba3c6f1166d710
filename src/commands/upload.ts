import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { DayError, FatalError } from '../errors.js';
import type { CommandSummary, DayOutcome } from '../events.js';
import { emptyLedger, formatIndex, indexKey, mergedObjects, readIndex, readLedger, writeLedger } from '../ledger/ledger.js';
import { dayPrefix, isoDay, type Day } from '../partition/day.js';
import { BATCH_FILE, MERGED_NAME, mergedDayDir, rawDayDir, readJson, type MergedBatch } from '../partition/local-day.js';
import { listDayFolders } from './merge.js';
import { forEachDay, need, seconds, type Context } from './context.js';

export async function upload(ctx: Context): Promise<CommandSummary> {
  ctx.emit({ type: 'log', stage: 'upload', level: 'info', message: 'Started uploading re-partitioned AVRO data files and index file for each day' });
  const days = await listDayFolders(ctx.config.mergedDir);
  return forEachDay(ctx, 'upload', days, 2, (day) => uploadDay(ctx, day));
}

/**
 * Uploads a merged day and commits it: data object first (verified), then
 * the ledger (the commit point), then timeseries.txt; then removes merged
 * files of this tool that no committed batch names (left by a run that died
 * before its commit), and finally the day's local folders.
 */
export async function uploadDay(ctx: Context, day: Day): Promise<DayOutcome> {
  const { config, emit } = ctx;
  const dest = need(ctx.dest, 'destination bucket');
  const name = isoDay(day);
  const outDir = mergedDayDir(config, day);
  const batch = await readJson<MergedBatch>(path.join(outDir, BATCH_FILE));
  if (!batch) {
    emit({ type: 'log', stage: 'upload', day: name, level: 'warn', message: `${outDir}: merge did not finish (no ${BATCH_FILE}); run merge again` });
    return { status: 'skipped', reason: 'merge incomplete' };
  }
  const t0 = Date.now();
  const ledger = (await readLedger(dest, config.indexPrefix, day)) ?? emptyLedger(day);
  const index = await readIndex(dest, config.indexPrefix, day);
  if (index && ledger.batches.length === 0) {
    throw new DayError(`s3://${dest.name}/${indexKey(config.indexPrefix, day)} was written by the original tool and has no ledger yet; run download for this day first (it adopts the old index), then merge and upload`);
  }
  const committed = ledger.batches.some((b) => b.file === batch.file);
  if (!committed) {
    const merged = mergedObjects(ledger);
    const overlap = batch.objects.filter((o) => merged.has(o.key));
    if (overlap.length > 0) {
      await rm(outDir, { recursive: true, force: true });
      throw new DayError(`merged folder is stale: ${overlap.length} of its objects (e.g. ${overlap[0]!.key}) were committed by another run; discarded it, run download and merge again`);
    }
    const dataKey = `${dayPrefix(config.dataPrefix, day)}${batch.file}`;
    const file = path.join(outDir, batch.file);
    const totalBytes = (await stat(file)).size;
    if (batch.bytes !== undefined && totalBytes !== batch.bytes) {
      // cut short by a crash before the page cache reached the disk
      await rm(outDir, { recursive: true, force: true });
      throw new DayError(`${file} has ${totalBytes} bytes where merge wrote ${batch.bytes}; discarded it, run merge again`);
    }
    await ctx.transfers(() =>
      dest.uploadFile(dataKey, file, (loaded) =>
        emit({ type: 'progress', stage: 'upload', day: name, doneObjects: loaded >= totalBytes ? 1 : 0, totalObjects: 1, doneBytes: loaded, totalBytes }),
      ),
    );
    ledger.batches.push({ file: batch.file, records: batch.records, objects: batch.objects, committedAt: new Date().toISOString() });
    await writeLedger(dest, config.indexPrefix, day, ledger);
  }
  await dest.putBuffer(indexKey(config.indexPrefix, day), formatIndex([...(index ?? []), ...batch.seriesIds]), 'text/plain');
  await removeOrphans(ctx, day, new Set(ledger.batches.map((b) => b.file)));
  await abortLeftUploads(ctx, day);
  // raw first: the merged folder is what makes a rerun come back to finish the clean-up
  await rm(rawDayDir(config, day), { recursive: true, force: true });
  await rm(outDir, { recursive: true, force: true });
  emit({ type: 'log', stage: 'upload', day: name, level: 'info', message: `${batch.day}: ** Upload Time: ${seconds(t0)} secs **` });
  return { status: committed ? 'skipped' : 'done', objects: batch.objects.length, records: batch.records, reason: committed ? 'already committed' : undefined };
}

/** Best effort: a role without the list/abort permissions gets a warning, not a failed day. */
async function abortLeftUploads(ctx: Context, day: Day): Promise<void> {
  const dest = need(ctx.dest, 'destination bucket');
  const log = (message: string) => ctx.emit({ type: 'log', stage: 'upload', day: isoDay(day), level: 'warn', message });
  try {
    const aborted = await dest.abortUploads(dayPrefix(ctx.config.dataPrefix, day), (key) => MERGED_NAME.test(key.slice(key.lastIndexOf('/') + 1)));
    if (aborted > 0) log(`aborted ${aborted} multipart upload(s) left unfinished by an interrupted run`);
  } catch (err) {
    if (!(err instanceof FatalError)) throw err;
    log(`${err.message}; unfinished multipart uploads of killed runs are not cleaned up (an S3 lifecycle rule AbortIncompleteMultipartUpload does it too)`);
  }
}

async function removeOrphans(ctx: Context, day: Day, committed: Set<string>): Promise<void> {
  const dest = need(ctx.dest, 'destination bucket');
  const keys = (await dest.list(dayPrefix(ctx.config.dataPrefix, day)))
    .map((o) => o.key)
    .filter((k) => {
      const file = k.slice(k.lastIndexOf('/') + 1);
      return MERGED_NAME.test(file) && !committed.has(file);
    });
  if (keys.length === 0) return;
  ctx.emit({ type: 'log', stage: 'upload', day: isoDay(day), level: 'warn', message: `removing ${keys.length} uncommitted merged file(s) left by an interrupted run: ${keys.join(', ')}` });
  await dest.deleteKeys(keys);
}
