/**
 * `compact`: a day with more than one data file (late exports add one per
 * run) gets one file holding all of its records, committed with one ledger
 * write that replaces the old files' batches; then the old files are
 * deleted. Avro days are a block copy of the files' blocks; Parquet days are
 * rewritten, read and ordered by DuckDB (parquet-output.ts). With
 * output.dedupe: latest, each key's latest recordVersion across the files
 * is kept.
 *
 * What a query sees: until the ledger write, the old files (the new one, if
 * listed, is an extra copy of the same records); from the ledger write to
 * the deletes (two requests later), old and new files side by side, each
 * record twice; after, the new file. A kill between upload and ledger write
 * leaves the new file uncommitted (removed as a leftover by the next compact
 * or upload); one after the ledger write leaves the old files, removed the
 * same way. Either way each record is committed exactly once.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { DayCommit } from '../destination/day-commit.js';
import { batchHash, dataDayPrefix, mergedFileName } from '../destination/layout.js';
import { contentTypeOf } from '../output/formats.js';
import { daysDescending, isoDay, type Day } from '../partition/day.js';
import { DayError } from '../shared/errors.js';
import type { CommandSummary, DayOutcome } from '../shared/events.js';
import { mapLimit } from '../shared/limit.js';
import { compactDayDir } from '../workdir/layout.js';
import type { CompactDeps } from './deps.js';
import { commitOptions, forEachDay, seconds, shardDays, underHold } from './for-each-day.js';

export async function compact(deps: CompactDeps): Promise<CommandSummary> {
  const days = shardDays(deps, 'compact', daysDescending(deps.range.from, deps.range.to));
  return forEachDay(deps, 'compact', days, 1, (day) => underHold(deps, 'compact', day, (held) => compactDay(held, day)));
}

/** Compacts one day; the caller holds it (underHold). */
export async function compactDay(deps: Omit<CompactDeps, 'range'>, day: Day): Promise<DayOutcome> {
  const { config, dest, format, emit } = deps;
  const log = (level: 'info' | 'warn', message: string) => emit({ type: 'log', stage: 'compact', day: isoDay(day), level, message });
  const commit = await DayCommit.open(dest, config, day, commitOptions(deps));
  const batches = commit.ledger.batches;
  if (batches.length <= 1) {
    await commit.removeLeftovers(log);
    return { status: 'skipped', reason: batches.length === 0 ? 'nothing committed' : 'one data file already' };
  }
  const other = batches.find((b) => !b.file.endsWith(format.extension));
  if (other) {
    throw new DayError(`${other.file} is not ${format.name}: compact writes one ${format.name} file from ${format.name} files; run it with --output-format matching the day's files`);
  }
  const t0 = Date.now();
  const dir = compactDayDir(config.workDir, day);
  await rm(dir, { recursive: true, force: true });
  const listed = new Map((await dest.list(dataDayPrefix(config, day), deps.signal)).map((o) => [o.key.slice(o.key.lastIndexOf('/') + 1), o]));
  const inputs = batches.map((b) => {
    const stored = listed.get(b.file);
    if (!stored) throw new DayError(`s3://${dest.name}/${dataDayPrefix(config, day)}${b.file} is named in the ledger but missing from the bucket; restore it (a backup or version) before compacting`);
    return { object: stored, input: { file: path.join(dir, b.file), name: `s3://${dest.name}/${stored.key}`, size: stored.size } };
  });
  await mkdir(dir, { recursive: true });
  await mapLimit(inputs, config.concurrency, ({ object, input }) => deps.transfers(() => dest.download(object, input.file, deps.signal)));
  const objects = batches.flatMap((b) => b.objects);
  const hash = batchHash(objects);
  const file = mergedFileName(hash, format.extension);
  const out = path.join(dir, `${file}.part`);
  const written = await format.writeDay(
    inputs.map((i) => i.input),
    out,
    { seed: hash },
  );
  const expected = batches.reduce((n, b) => n + b.records, 0);
  if (written.records + (written.dropped ?? 0) !== expected) {
    await rm(dir, { recursive: true, force: true });
    throw new DayError(`the day's data files hold ${written.records} records where its ledger says ${expected}; not compacted`);
  }
  const removed = await commit.replaceAll(file, out, written.records, { contentType: contentTypeOf(file), transfers: deps.transfers });
  await rm(dir, { recursive: true, force: true });
  const drops = written.dropped !== undefined ? `, ${written.dropped} older versions dropped` : '';
  log('info', `\tcompacted ${removed.length} files into ${file} (${written.records} records${drops}) in ${seconds(t0)} secs`);
  return { status: 'done', objects: objects.length, records: written.records, reason: `${batches.length} files into 1`, ...(written.dropped !== undefined ? { dropped: written.dropped } : {}) };
}
