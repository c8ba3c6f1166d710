import { setTimeout as sleep } from 'node:timers/promises';
import type { Day } from '../partition/day.js';
import { DayError, FatalError } from '../shared/errors.js';
import type { Limiter } from '../shared/limit.js';
import { PreconditionFailedError, type ObjectInfo, type ObjectStore, type PutCondition } from '../store/object-store.js';
import { formatIndex, readIndex } from './index-file.js';
import { dataDayPrefix, dataKey, indexKey, isMergedFile, ledgerKey, type DestinationLayout } from './layout.js';
import { emptyLedger, mergedObjects, readLedger, skippedObjects, writeLedger, type Ledger, type LedgerRead, type SkippedObject } from './ledger.js';

/** A merged file waiting to be committed. */
export interface BatchToCommit {
  file: string;
  records: number;
  objects: ObjectInfo[];
  seriesIds: string[];
  skipped?: SkippedObject[];
}

/** A day's ledger and the series of its index, as read. */
export interface DayRead {
  ledger: LedgerRead | undefined;
  indexIds: string[] | undefined;
}

/** How the day is guarded (see guard.ts): conditional puts or not, and the day's hold. */
export interface CommitOptions {
  signal?: AbortSignal;
  /** Commits with If-Match / If-None-Match, and re-plans on a conflict instead of overwriting. */
  conditional?: boolean;
  /** Asked right before the ledger PUT: throws if the day is no longer this run's (its lease was lost). */
  confirm?: () => Promise<void>;
  /** Uncommitted data files younger than this are left for a later run (another run's upload may be about to commit). */
  orphanMinAgeMs?: number;
}

/** Conflicting commits re-planned before the day fails (each conflict is another run's commit landing first). */
const MAX_REPLANS = 8;

export type CommitLog = (level: 'info' | 'warn', message: string) => void;

/**
 * One day of the destination and its commit protocol, in one place:
 *
 * 1. the merged file goes to its data key, named after its inputs, and is verified;
 * 2. the ledger, with the new batch added, is written: this is the commit.
 *    Where the store honours conditions, the PUT names the ETag read (or
 *    If-None-Match: * for a new ledger), so it can never overwrite another
 *    run's commit: on a conflict the ledger is read again, and the batch is
 *    committed on top of it if none of its objects is there yet, or dropped
 *    as stale (its data file removed) if some are;
 * 3. timeseries.txt (the original's index) gets the day's series, merged
 *    into what it holds (conditionally too);
 * 4. merged files of this tool that the ledger, read again after the
 *    commit, does not name (left by a run that died between 1 and 2) are
 *    removed, when older than orphanMinAgeMs, and so are its unfinished
 *    multipart uploads.
 *
 * A crash anywhere leaves either no commit (the next run uploads the same
 * name again) or a commit whose steps 3-4 the next run finishes.
 */
export class DayCommit {
  private constructor(
    private readonly dest: ObjectStore,
    private readonly layout: DestinationLayout,
    readonly day: Day,
    private read: LedgerRead | undefined,
    /** The original's index as read, if the day has one. */
    readonly previousIds: string[] | undefined,
    private readonly options: CommitOptions,
  ) {}

  /** Reads the day's ledger and index, at once: a commit writes the ledger before the index, so reading them in turn gives no better pair. */
  static async read(dest: ObjectStore, layout: DestinationLayout, day: Day, signal?: AbortSignal): Promise<DayRead> {
    const [ledger, index] = await Promise.all([readLedger(dest, ledgerKey(layout, day), signal), readIndex(dest, indexKey(layout, day), signal)]);
    return { ledger, indexIds: index?.ids };
  }

  /**
   * The day, from its ledger and index read now, or from `read` started
   * earlier (download reads the days' ahead of their work, before the day's
   * hold is taken; undefined: not read): a commit stays safe either way, as
   * its ledger PUT names the ETag read and so finds any commit made since.
   */
  static async open(dest: ObjectStore, layout: DestinationLayout, day: Day, options: CommitOptions = {}, read?: Promise<DayRead | undefined>): Promise<DayCommit> {
    const { ledger, indexIds } = (await read) ?? (await DayCommit.read(dest, layout, day, options.signal));
    return new DayCommit(dest, layout, day, ledger, indexIds, options);
  }

  get ledger(): Ledger {
    return this.read?.ledger ?? emptyLedger(this.day);
  }

  /** The ETag the ledger had when read; undefined: the day had no ledger. */
  get ledgerEtag(): string | undefined {
    return this.read?.etag;
  }

  /** The original tool processed this day: it left an index with series and no ledger (download adopts such a day). */
  get writtenByOriginal(): boolean {
    return this.read === undefined && (this.previousIds ?? []).length > 0;
  }

  /** Every source object committed for the day, by key. */
  mergedObjects(): Map<string, ObjectInfo> {
    return mergedObjects(this.read?.ledger);
  }

  /** Source objects an earlier merge skipped as bad, by key. */
  skippedObjects(): Map<string, SkippedObject> {
    return skippedObjects(this.read?.ledger);
  }

  isCommitted(file: string): boolean {
    return this.ledger.batches.some((b) => b.file === file);
  }

  /** Of `objects`, those a committed batch already holds (a stale merge, if any). */
  alreadyCommitted(objects: ObjectInfo[]): ObjectInfo[] {
    const merged = this.mergedObjects();
    return objects.filter((o) => merged.has(o.key));
  }

  private get condition(): PutCondition {
    if (!this.options.conditional) return {};
    return this.read ? { ifMatch: this.read.etag } : { ifNoneMatch: '*' };
  }

  private async reread(): Promise<void> {
    this.read = await readLedger(this.dest, ledgerKey(this.layout, this.day), this.options.signal);
  }

  /** Starts the ledger of a day the original processed, from what adoption found in its merged files. */
  async adopt(ledger: Ledger, options: { dryRun?: boolean } = {}): Promise<void> {
    if (options.dryRun) {
      this.read = { ledger, etag: '' };
      return;
    }
    try {
      await this.options.confirm?.();
      const etag = await writeLedger(this.dest, ledgerKey(this.layout, this.day), ledger, this.condition, this.options.signal);
      this.read = { ledger, etag };
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      // another run adopted the day (or committed to it) first: its ledger counts
      await this.reread();
    }
  }

  /** Throws when the day has an index but no committed batch: the original tool wrote it, and download must adopt it first. */
  assertAdopted(): void {
    if (this.previousIds !== undefined && this.ledger.batches.length === 0) {
      throw new DayError(
        `s3://${this.dest.name}/${indexKey(this.layout, this.day)} was written by the original tool and has no ledger yet; run download for this day first (it adopts the old index), then merge and upload`,
      );
    }
  }

  /** Steps 1 and 2: uploads the merged file (verified) and writes the ledger naming it. */
  async commit(batch: BatchToCommit, localFile: string, options: { contentType: string; transfers: Limiter; onBytes?: (loaded: number) => void }): Promise<void> {
    this.assertAdopted();
    const { signal } = this.options;
    const key = dataKey(this.layout, this.day, batch.file);
    await options.transfers(() => this.dest.uploadFile(key, localFile, { contentType: options.contentType, onBytes: options.onBytes }, signal));
    const entry = { file: batch.file, records: batch.records, objects: batch.objects, committedAt: new Date().toISOString(), ...(batch.skipped?.length ? { skipped: batch.skipped } : {}) };
    for (let replans = 0; ; replans++) {
      await this.options.confirm?.();
      const ledger: Ledger = { ...this.ledger, batches: [...this.ledger.batches, entry] };
      try {
        const etag = await writeLedger(this.dest, ledgerKey(this.layout, this.day), ledger, this.condition, signal);
        this.read = { ledger, etag };
        return;
      } catch (err) {
        if (!(err instanceof PreconditionFailedError)) throw err;
      }
      // another run committed first (or this PUT landed and its answer was lost): read what is there now
      await this.reread();
      if (this.isCommitted(batch.file)) return;
      const overlap = this.alreadyCommitted(batch.objects);
      if (overlap.length > 0 || replans >= MAX_REPLANS) {
        await this.dest.deleteKeys([key], signal);
        throw new DayError(
          overlap.length > 0
            ? `another run committed ${overlap.length} of this batch's objects (e.g. ${overlap[0]!.key}) first; dropped this batch (its data file removed, nothing overwritten); run download and merge again for what is left`
            : `the ledger kept changing under ${MAX_REPLANS} commits of other runs; dropped this batch (nothing overwritten); run again`,
        );
      }
    }
  }

  /**
   * Compaction's commit: `file` (uploaded from `localFile`, verified) holds
   * every record of the day's committed batches, and one ledger write
   * replaces them all with one batch naming it; then the old files are
   * deleted. A ledger that changed since it was read (another run committed)
   * fails the day, the new file removed: nothing is overwritten, and a rerun
   * compacts what is there then. Returns the files removed.
   */
  async replaceAll(file: string, localFile: string, records: number, options: { contentType: string; transfers: Limiter }): Promise<string[]> {
    const { signal } = this.options;
    const old = this.ledger.batches;
    const key = dataKey(this.layout, this.day, file);
    await options.transfers(() => this.dest.uploadFile(key, localFile, { contentType: options.contentType }, signal));
    const skipped = old.flatMap((b) => b.skipped ?? []);
    const entry = {
      file,
      records,
      objects: old.flatMap((b) => b.objects),
      committedAt: new Date().toISOString(),
      compactedFrom: old.map((b) => b.file),
      ...(skipped.length ? { skipped } : {}),
    };
    const ledger: Ledger = { ...this.ledger, batches: [entry] };
    try {
      await this.options.confirm?.();
      const etag = await writeLedger(this.dest, ledgerKey(this.layout, this.day), ledger, this.condition, signal);
      this.read = { ledger, etag };
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      await this.reread();
      if (!this.isCommitted(file)) {
        await this.dest.deleteKeys([key], signal);
        throw new DayError('another run committed to the day while it was compacted; dropped the compacted file (nothing overwritten); run compact again');
      }
    }
    const removed = old.map((b) => b.file).filter((f) => f !== file);
    await this.dest.deleteKeys(
      removed.map((f) => dataKey(this.layout, this.day, f)),
      signal,
    );
    return removed;
  }

  /** Steps 3 and 4, after a commit (this run's or an earlier one's). */
  async finish(seriesIds: string[], log: CommitLog): Promise<void> {
    await this.updateIndex(seriesIds);
    await this.removeLeftovers(log);
  }

  /** Step 4 alone: what interrupted runs left (uncommitted data files, unfinished multipart uploads). */
  async removeLeftovers(log: CommitLog): Promise<void> {
    await this.removeOrphans(log);
    await this.abortLeftUploads(log);
  }

  /** The index gets `seriesIds` merged into what it holds now; a conditional write never drops another run's ids. */
  private async updateIndex(seriesIds: string[]): Promise<void> {
    const key = indexKey(this.layout, this.day);
    const { signal } = this.options;
    for (;;) {
      const current = this.options.conditional ? await readIndex(this.dest, key, signal) : undefined;
      const ids = [...(current?.ids ?? this.previousIds ?? []), ...seriesIds];
      const condition: PutCondition = !this.options.conditional ? {} : current ? { ifMatch: current.etag } : { ifNoneMatch: '*' };
      try {
        await this.dest.put(key, formatIndex(ids), { contentType: 'text/plain', ...condition }, signal);
        return;
      } catch (err) {
        if (!(err instanceof PreconditionFailedError)) throw err;
      }
    }
  }

  /**
   * Removes data files the committed ledger does not name. Where other runs
   * may be at work (conditional mode), one younger than orphanMinAgeMs may
   * be another run's upload about to commit: the day's hold is kept while it
   * ages, then the ledger is read again and it is removed if still absent.
   */
  private async removeOrphans(log: CommitLog): Promise<void> {
    const { signal, orphanMinAgeMs = 0 } = this.options;
    for (;;) {
      // the ledger as committed now, never this run's copy: another run may have committed since
      await this.reread();
      const committed = new Set(this.ledger.batches.map((b) => b.file));
      const candidates = (await this.dest.list(dataDayPrefix(this.layout, this.day), signal))
        .map((o) => o.key)
        .filter((k) => isMergedFile(k) && !committed.has(k.slice(k.lastIndexOf('/') + 1)));
      const old: string[] = [];
      let wait = 0;
      for (const key of candidates) {
        const modified = orphanMinAgeMs > 0 ? (await this.dest.head(key, signal))?.lastModified : undefined;
        const age = modified ? Date.now() - modified.getTime() : Infinity;
        if (age >= orphanMinAgeMs) old.push(key);
        else wait = Math.max(wait, orphanMinAgeMs - age);
      }
      if (old.length > 0) {
        log('warn', `removing ${old.length} uncommitted merged file(s) left by an interrupted run: ${old.join(', ')}`);
        await this.dest.deleteKeys(old, signal);
      }
      if (wait === 0) return;
      log('info', `waiting ${Math.ceil(wait / 1000)}s for ${candidates.length - old.length} uncommitted merged file(s) to reach the lease length before removing them (until then one may be another run's upload about to commit)`);
      await sleep(wait + 1000, undefined, { signal });
    }
  }

  /** Best effort: a role without the list/abort permissions gets a warning, not a failed day. */
  private async abortLeftUploads(log: CommitLog): Promise<void> {
    try {
      const aborted = await this.dest.abortUploads(dataDayPrefix(this.layout, this.day), isMergedFile, this.options.signal);
      if (aborted > 0) log('warn', `aborted ${aborted} multipart upload(s) left unfinished by an interrupted run`);
    } catch (err) {
      if (!(err instanceof FatalError)) throw err;
      log('warn', `${err.message}; unfinished multipart uploads of killed runs are not cleaned up (an S3 lifecycle rule AbortIncompleteMultipartUpload does it too)`);
    }
  }
}
