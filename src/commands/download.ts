import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { adoptOriginal } from '../destination/adopt-original.js';
import { DayCommit, type DayRead } from '../destination/day-commit.js';
import { formatIndex } from '../destination/index-file.js';
import { batchHash, FORMAT_VERSION } from '../destination/layout.js';
import { dayPrefix, daysDescending, isoDay, type Day } from '../partition/day.js';
import { addTo, emptySelection, selectObjects, type SelectedObject, type Selection } from '../partition/select-objects.js';
import { DayError } from '../shared/errors.js';
import type { CommandSummary, DayOutcome } from '../shared/events.js';
import { megabytes } from '../shared/units.js';
import { atPriority, forEachLimit } from '../shared/limit.js';
import { Listing } from '../store/listing.js';
import { ObjectChangedError, ObjectGoneError, type ContentCheck, type ObjectInfo } from '../store/object-store.js';
import { removeManifest, writeFileAtomic, writeManifest, writeSeriesCatalog } from '../workdir/hand-off.js';
import { dayFolderName, localName, NEW_INDEX_FILE, PREVIOUS_INDEX_FILE, rawDayDir } from '../workdir/layout.js';
import type { DayAhead, DaysAhead, DownloadDeps } from './deps.js';
import { commitOptions, forEachDay, seconds, shardDays, underHold } from './for-each-day.js';

export interface DownloadOptions {
  dryRun?: boolean;
  /** Take the day's hold even when the cold tier has nothing for it (run: a merged folder waits for upload). */
  holdEmpty?: boolean;
  /** The day's listing (and ledger) started ahead (daysAhead); else listed when the day comes. */
  ahead?: DaysAhead;
}

/** How many days beyond the one being worked on are listed ahead. */
export const LISTS_AHEAD = 8;

/**
 * Days `download` works on at once: when one day's last objects leave
 * connections idle, the next days' ledger reads and GETs fill them. Requests
 * share the one bound (`concurrency`), so memory does not grow with it.
 */
export const DOWNLOAD_DAYS_IN_FLIGHT = 4;

/** What starting days ahead uses: no guard, so that it can start while the buckets are checked. */
export type AheadContext = Pick<DownloadDeps, 'config' | 'cold' | 'dest' | 'signal' | 'transfers'>;

/**
 * The cold tier's listings of the coming days, the first LISTS_AHEAD + 1 of
 * them started at once and each later one when the day LISTS_AHEAD before it
 * is asked for, each page under the run's bound on requests in flight: a
 * range of mostly empty days costs one LIST a day, several at once, while
 * the days themselves (and their lines) stay in order. The first day's
 * ledger and index are read at once with its listing, and a later day's once
 * its listing has a key, so a day's GETs start a round trip sooner. Memory:
 * the listings and ledgers of at most LISTS_AHEAD + 1 days (about 1 MB for
 * 6,000 keys).
 */
export function daysAhead(ctx: AheadContext, days: Day[], ahead = LISTS_AHEAD): DaysAhead {
  const started = new Map<string, DayAhead>();
  const position = new Map(days.map((d, i) => [isoDay(d), i]));
  const start = (d: Day | undefined) => {
    if (!d || started.has(isoDay(d)) || ctx.signal.aborted) return;
    const listing = listDay(ctx, d);
    started.set(isoDay(d), { listing, read: d === days[0] ? readAhead(ctx, d) : readOnceListed(ctx, d, listing) });
  };
  for (let j = 0; j <= ahead; j++) start(days[j]);
  return (day) => {
    const i = position.get(isoDay(day));
    if (i !== undefined) for (let j = i; j <= i + ahead; j++) start(days[j]);
    const got = started.get(isoDay(day)) ?? { listing: listDay(ctx, day) };
    started.delete(isoDay(day));
    return got;
  };
}

/** A day's ledger and index read ahead; a failure counts where the read is used, not as an unhandled rejection meanwhile. */
function readAhead(ctx: AheadContext, day: Day): Promise<DayRead> {
  const read = DayCommit.read(ctx.dest, ctx.config, day, ctx.signal);
  read.catch(() => undefined);
  return read;
}

/** The same, once the day's listing has a key (an empty day costs its LIST only): undefined for an empty day. */
function readOnceListed(ctx: AheadContext, day: Day, listing: Listing): Promise<DayRead | undefined> {
  const read = listing.isEmpty().then((empty) => (empty || ctx.signal.aborted ? undefined : DayCommit.read(ctx.dest, ctx.config, day, ctx.signal)));
  read.catch(() => undefined);
  return read;
}

/**
 * A day's GETs wait behind those of the days before it (`i`: its place in
 * the range), so the days in flight end one after another rather than
 * together: while one day's last objects come and the next day reads its
 * ledger, the days after it fill the connections. Listings and the requests
 * beside a day (priority 0) go first.
 */
export const dayPriority = <D extends Pick<DownloadDeps, 'transfers'>>(deps: D, i: number): D => ({ ...deps, transfers: atPriority(deps.transfers, 1 + i) });

/** What run does next with a downloaded day, still under the day's hold. */
export type AfterDownload = (held: DownloadDeps, fetched: DayOutcome) => Promise<DayOutcome>;

/** How many example keys a warning shows. */
const EXAMPLES = 3;

export async function download(deps: DownloadDeps, options: DownloadOptions = {}): Promise<CommandSummary> {
  const days = shardDays(deps, 'download', daysDescending(deps.range.from, deps.range.to));
  const empty = emptyRangeCheck(deps, 'download', days.length);
  const ahead = deps.ahead ?? daysAhead(deps, days);
  const summary = await forEachDay(deps, 'download', days, DOWNLOAD_DAYS_IN_FLIGHT, async (day, dayDeps, i) => empty.seen(await downloadDay(dayPriority(dayDeps, i), day, { ...options, ahead })), {
    ordered: true,
  });
  empty.report();
  // the series listed, for upload's series catalog (a later ListTimeSeries would need upload to have SiteWise access)
  const listed = options.dryRun ? undefined : await deps.series.asked()?.catch(() => undefined);
  if (listed) await writeSeriesCatalog(deps.config.workDir, listed);
  return summary;
}

/**
 * Lists the day; a day with cold-tier data is then planned and downloaded
 * under the day's hold (a lease, where the destination allows), and `next`
 * (run's merge and upload) runs under the same hold. A dry run takes none.
 */
export async function downloadDay(ctx: DownloadDeps, day: Day, options: DownloadOptions = {}, next?: AfterDownload): Promise<DayOutcome> {
  const name = isoDay(day);
  const log: Log = (message, level = 'info') => ctx.emit({ type: 'log', stage: 'download', day: name, level, message });
  log(`Reviewing --> year: ${day.year}, month: ${day.month}, day: ${day.day}`);
  const { listing, read } = options.ahead?.(day) ?? { listing: listDay(ctx, day) };
  if (!options.holdEmpty && (await listing.isEmpty())) return noColdData(log);
  const work = async (held: DownloadDeps) => {
    const fetched = await downloadHeld(held, day, { listing, read }, options, log);
    return next ? next(held, fetched) : fetched;
  };
  return options.dryRun ? work(ctx) : underHold(ctx, next ? 'run' : 'download', day, work);
}

/**
 * Counts the days with no cold-tier key at all; when that is every day of
 * the range, the prefix (or bucket) is likely wrong, and one warning names
 * what was listed and the config keys, before the closing line.
 */
export function emptyRangeCheck(deps: DownloadDeps, stage: 'download' | 'run' | 'plan', days: number): { seen: (o: DayOutcome) => DayOutcome; report: () => void } {
  let empty = 0;
  return {
    seen: (outcome) => {
      if (outcome.reason === NO_COLD_DATA) empty++;
      return outcome;
    },
    report: () => {
      if (days === 0 || empty < days) return;
      const { from, to } = deps.range;
      deps.emit({ type: 'log', stage, level: 'warn', message: `no key under s3://${deps.cold.name}/${deps.config.coldPrefix} for any day from ${isoDay(from)} to ${isoDay(to)}: check s3_buckets.cold_tier_bucket_data_prefix ('${deps.config.coldPrefix}') and s3_buckets.cold_tier_bucket_name` });
    },
  };
}

const NO_COLD_DATA = 'no cold-tier data';

/** The day's listing, started now, each page under the run's bound on requests in flight. */
const listDay = (ctx: AheadContext, day: Day) => new Listing(ctx.cold.listPages(dayPrefix(ctx.config.coldPrefix, day), ctx.signal), ctx.transfers);

function noColdData(log: Log): DayOutcome {
  log('\tNo Cold tier data! Skipping this day');
  return { status: 'skipped', reason: NO_COLD_DATA };
}

type Log = (message: string, level?: 'info' | 'warn' | 'detail') => void;

/** The first few keys, for a message. */
const examples = (keys: string[]) => keys.slice(0, EXAMPLES).join(', ') + (keys.length > EXAMPLES ? ', ...' : '');

async function downloadHeld(ctx: DownloadDeps, day: Day, ahead: DayAhead, options: DownloadOptions, log: Log): Promise<DayOutcome> {
  try {
    return await downloadListed(ctx, day, ahead, options, log);
  } catch (err) {
    if (!(err instanceof ObjectChangedError)) throw err;
    // an export rewritten between the listing and the GET: list the day (and read its ledger) once more
    log(`\t${err.message.replace(/; run download again$/, '')}: listing the day again`, 'warn');
    return downloadListed(ctx, day, { listing: listDay(ctx, day) }, options, log);
  }
}

async function downloadListed(ctx: DownloadDeps, day: Day, { listing, read }: DayAhead, options: DownloadOptions, log: Log): Promise<DayOutcome> {
  const { config } = ctx;
  if (await listing.isEmpty()) return noColdData(log);
  const plan = await openDay(ctx, day, () => listing.all(), options, read);
  if (plan.previousIds.length > 0) log(`\t# of timeseries previously processed: ${plan.previousIds.length}`);
  if (options.dryRun) {
    const selection = plan.select(await listing.all());
    const bytes = sizeOf(selection.selected);
    reportSkipped(selection, log, 'info', config.timeseriesType);
    refuseUnsafe(selection);
    if (selection.archived.length > 0) log(`\t${archivedMessage(selection)}; a real run fails the day: ${restoreHint(ctx)}`, 'warn');
    log(`\twould download ${selection.selected.length} objects of ${seriesOf(selection).size} series, ${megabytes(bytes)}`);
    for (const o of selection.selected) log(`\t  ${o.key} (${o.size} bytes)`, 'detail');
    return { status: selection.selected.length ? 'done' : 'skipped', objects: selection.selected.length, bytes, reason: 'dry run', skips: skipCounts(selection, config.timeseriesType) };
  }
  const dir = rawDayDir(config, day);
  const t0 = Date.now();
  // the day's lines as before: said once the listing is complete, while its first objects already download
  const listed = (selection: Selection) => {
    reportSkipped(selection, log, 'detail', config.timeseriesType);
    if (selection.selected.length === 0) return;
    log(`\t# of new timeseries detected: ${seriesOf(selection).size}`);
    log('\tFound data, starting to download');
    log('\tDownloading S3 objects to local filesystem..');
  };
  const { selection, gone } = await fetchSelected(ctx, day, dir, plan, listing, listed);
  const skips = skipCounts(selection, config.timeseriesType);
  if (selection.selected.length === 0) {
    log('\tSkip, no new data');
    await rm(dir, { recursive: true, force: true });
    return { status: 'skipped', reason: 'no new data', skips };
  }
  log(`\t\t** Download time: ${seconds(t0)} secs **`);
  if (gone.size > 0) log(`\t${gone.size} object(s) were deleted after the listing, left out of this run: ${examples([...gone])}`, 'warn');
  if (gone.size === selection.selected.length) {
    await rm(dir, { recursive: true, force: true });
    return { status: 'skipped', reason: 'every new object was deleted after the listing' };
  }
  const fetched = selection.selected.filter((o) => !gone.has(o.key));
  return { status: 'done', objects: fetched.length, bytes: sizeOf(fetched), skips };
}

const sizeOf = (objects: ObjectInfo[]) => objects.reduce((n, o) => n + o.size, 0);
const seriesOf = (selection: Selection) => new Set(selection.selected.map((o) => o.seriesId));

/** Keys that could point outside the day folder: the day is refused. */
function refuseUnsafe(selection: Selection): void {
  if (selection.unsafe.length > 0) {
    throw new DayError(`key(s) with '.' or '..' path segments could point outside the day folder; refusing the day (nothing was downloaded): ${examples(selection.unsafe)}`);
  }
}

const archivedMessage = (selection: Selection) => {
  const keys = selection.archived.map((o) => `${o.key} (${o.storageClass ?? '?'})`);
  return `${keys.length} object(s) of the day are archived and cannot be read until restored: ${examples(keys)}`;
};
const restoreHint = (ctx: DownloadDeps) => `restore them (aws s3api restore-object --bucket ${ctx.cold.name} --key KEY --restore-request Days=7) and run again`;

/** Every reason objects were left out, with its count, for the day's summary line ("skipped 1308 already merged, 71 not ASSOCIATED") and JSON. */
function skipCounts(selection: Selection, type: string): Record<string, number> {
  const counts: Record<string, number> = {
    'already merged': selection.alreadyMerged,
    [`not ${type}`]: selection.notListed.length,
    'bad before': selection.skippedBad,
    'not data files': selection.unparseable.length,
    'changed since merged': selection.changed.length,
    archived: selection.archived.length,
  };
  return Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0));
}

/** Why objects were left out; a dry run says it all, a real run keeps the routine reasons for --verbose. */
function reportSkipped(selection: Selection, log: Log, routine: 'info' | 'detail', type: string) {
  if (selection.alreadyMerged > 0) log(`\t${selection.alreadyMerged} objects already merged (in the ledger)`, routine);
  if (selection.skippedBad > 0) log(`\t${selection.skippedBad} objects skipped as bad by an earlier merge (in the ledger, with why); not tried again until they change`, 'warn');
  // under ASSOCIATED, a disassociated series is not listed: say what the filter is, not that SiteWise lacks it
  if (selection.notListed.length > 0) log(`\t${selection.notListed.length} objects of series ListTimeSeries does not list as ${type} (timeseries_type), skipped: ${examples(selection.notListed)}`, routine);
  if (selection.unparseable.length > 0) log(`\t${selection.unparseable.length} keys are not cold-tier data files, skipped: ${examples(selection.unparseable)}`, 'warn');
  for (const o of selection.changed) {
    log(`\t${o.key} changed since it was merged (now ${o.size} bytes, ETag ${o.etag}); not merged again. See README "Changed source objects"`, 'warn');
  }
}

/** A day's ledger and series, read once: `select` then picks what is new from any of its listed keys. */
interface DayPlan {
  previousIds: string[];
  select: (listed: ObjectInfo[]) => Selection;
}

/** Reads the ledger (adopting an original-written destination, which needs the whole listing) and the series. */
async function openDay(ctx: DownloadDeps, day: Day, everyKey: () => Promise<ObjectInfo[]>, options: DownloadOptions, read?: Promise<DayRead | undefined>): Promise<DayPlan> {
  const { config, cold, dest, signal } = ctx;
  const commit = await DayCommit.open(dest, config, day, commitOptions(ctx), read);
  const previousIds = commit.previousIds ?? [];
  if (commit.writtenByOriginal) {
    ctx.emit({ type: 'log', stage: 'download', day: isoDay(day), level: 'info', message: '\tdestination written by the original tool: finding which objects it merged' });
    const ledger = await adoptOriginal({ day, indexIds: previousIds, listed: await everyKey(), cold, dest, layout: config, concurrency: config.concurrency, signal });
    const adopted = ledger.batches.reduce((n, b) => n + b.objects.length, 0);
    ctx.emit({ type: 'log', stage: 'download', day: isoDay(day), level: 'info', message: `\tadopted ${adopted} objects in ${ledger.batches.length} merged files into the ledger` });
    await commit.adopt(ledger, options);
  }
  const known = await ctx.series.ids();
  const merged = commit.mergedObjects();
  const skipped = commit.skippedObjects();
  return { previousIds, select: (listed) => selectObjects(listed, merged, known, skipped) };
}

/** What `plan` reports for a listed day: its ledger read and its selection made; undefined when the cold tier had nothing for it. */
export async function planDay(ctx: DownloadDeps, day: Day, listed: ObjectInfo[], options: DownloadOptions): Promise<Selection | undefined> {
  if (listed.length === 0) return undefined;
  const plan = await openDay(ctx, day, () => Promise.resolve(listed), options);
  return plan.select(listed);
}

/**
 * Downloads the selection into the day folder as the listing's pages come,
 * keeping files already there complete and unchanged (resume), dropping
 * stale ones, and writes the manifest last: merge only takes a day whose
 * manifest exists. `listed` hears the whole selection once the listing is
 * complete. Returns the selection and the keys that were gone when read
 * (deleted or expired since the listing): the manifest leaves them out.
 */
type ToFetch = SelectedObject & { file: string; check?: ContentCheck };

async function fetchSelected(ctx: DownloadDeps, day: Day, dir: string, plan: DayPlan, listing: Listing, listed: (s: Selection) => void): Promise<{ selection: Selection; gone: Set<string> }> {
  const { config, emit, cold, signal } = ctx;
  const prefix = dayPrefix(config.coldPrefix, day);
  await mkdir(dir, { recursive: true });
  await removeManifest(dir);
  const present = new Set<string>();
  for (const entry of await readdir(dir)) {
    if (entry.endsWith('.part')) await rm(path.join(dir, entry), { force: true });
    else present.add(entry);
  }
  const selection = emptySelection();
  const objects: ToFetch[] = [];
  let totalBytes = 0;
  async function* selectedPages() {
    for await (const page of listing) {
      const s = plan.select(page);
      addTo(selection, s);
      refuseUnsafe(s);
      if (s.archived.length > 0) throw new DayError(`${archivedMessage(selection)}; the day is not merged while they are missing: ${restoreHint(ctx)}`);
      const batch = s.selected.map((o): ToFetch => ({ ...o, file: localName(o.key, prefix) }));
      objects.push(...batch);
      totalBytes += sizeOf(batch);
      yield batch;
    }
    listed(selection);
  }
  const gone = new Set<string>();
  let doneObjects = 0;
  let doneBytes = 0;
  try {
    await forEachLimit(selectedPages(), config.concurrency, async (o) => {
      const file = path.join(dir, o.file);
      if (present.has(o.file) && (await isComplete(file, o))) o.check = 'MD5';
      else {
        try {
          const got = await ctx.transfers(() => cold.download(o, file, signal));
          o.check = got.check;
          if (got.versionId) o.versionId = got.versionId;
        } catch (err) {
          if (!(err instanceof ObjectGoneError)) throw err;
          gone.add(o.key);
          return;
        }
      }
      emit({ type: 'log', stage: 'download', day: isoDay(day), level: 'detail', message: `\t  ${o.key}: ${o.check === 'none' ? 'no checksum or MD5 ETag: its blocks are checked at merge' : `checked by ${o.check}`}` });
      doneObjects++;
      doneBytes += o.size;
      emit({ type: 'progress', stage: 'download', day: isoDay(day), doneObjects, totalObjects: objects.length, doneBytes, totalBytes });
    });
  } catch (err) {
    // a refused day keeps nothing: not even the objects of its pages before the bad key
    if (selection.unsafe.length > 0) await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const wanted = new Set(objects.map((o) => o.file));
  for (const entry of present) if (entry.endsWith('.avro') && !wanted.has(entry)) await rm(path.join(dir, entry), { force: true });
  const kept = objects.filter((o) => !gone.has(o.key));
  if (kept.length === 0) return { selection, gone };
  await writeFileAtomic(path.join(dir, PREVIOUS_INDEX_FILE), formatIndex(plan.previousIds));
  await writeFileAtomic(path.join(dir, NEW_INDEX_FILE), formatIndex(objects.map((o) => o.seriesId)));
  const hash = { format: FORMAT_VERSION, value: batchHash(kept) };
  await writeManifest(dir, { day: dayFolderName(day), coldBucket: cold.name, objects: kept, previousIds: plan.previousIds, hash });
  return { selection, gone };
}

/** A local copy counts only if its size and MD5 match the listing (other ETags: fetched again). */
async function isComplete(file: string, o: ObjectInfo): Promise<boolean> {
  const size = await stat(file).then((s) => s.size, () => -1);
  if (size !== o.size || !/^[0-9a-f]{32}$/.test(o.etag)) return false;
  const md5 = createHash('md5');
  for await (const chunk of createReadStream(file)) md5.update(chunk as Buffer);
  return md5.digest('hex') === o.etag;
}
