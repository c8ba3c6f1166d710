import type { Day } from '../partition/day.js';
import { DayError, FatalError } from '../shared/errors.js';
import type { Limiter } from '../shared/limit.js';
import type { ObjectInfo, ObjectStore } from '../store/object-store.js';
import { formatIndex, readIndex } from './index-file.js';
import { dataDayPrefix, dataKey, indexKey, isMergedFile, ledgerKey, type DestinationLayout } from './layout.js';
import { emptyLedger, mergedObjects, readLedger, skippedObjects, writeLedger, type Ledger, type SkippedObject } from './ledger.js';

/** A merged file waiting to be committed. */
export interface BatchToCommit {
  file: string;
  records: number;
  objects: ObjectInfo[];
  seriesIds: string[];
  skipped?: SkippedObject[];
}

export type CommitLog = (level: 'info' | 'warn', message: string) => void;

/**
 * One day of the destination and its commit protocol, in one place:
 *
 * 1. the merged file goes to its data key, named after its inputs, and is verified;
 * 2. the ledger, with the new batch added, is written: this is the commit;
 * 3. timeseries.txt (the original's index) is rewritten with the day's series;
 * 4. merged files of this tool that no committed batch names (left by a run
 *    that died between 1 and 2) are removed, and so are its unfinished
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
    private ledgerRead: Ledger | undefined,
    /** The original's index as read, if the day has one. */
    readonly previousIds: string[] | undefined,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /** Reads the day's ledger and index. */
  static async open(dest: ObjectStore, layout: DestinationLayout, day: Day, signal?: AbortSignal): Promise<DayCommit> {
    const ledger = await readLedger(dest, ledgerKey(layout, day), signal);
    const index = await readIndex(dest, indexKey(layout, day), signal);
    return new DayCommit(dest, layout, day, ledger, index, signal);
  }

  get ledger(): Ledger {
    return this.ledgerRead ?? emptyLedger(this.day);
  }

  /** The original tool processed this day: it left an index with series and no ledger (download adopts such a day). */
  get writtenByOriginal(): boolean {
    return this.ledgerRead === undefined && (this.previousIds ?? []).length > 0;
  }

  /** Every source object committed for the day, by key. */
  mergedObjects(): Map<string, ObjectInfo> {
    return mergedObjects(this.ledgerRead);
  }

  /** Source objects an earlier merge skipped as bad, by key. */
  skippedObjects(): Map<string, SkippedObject> {
    return skippedObjects(this.ledgerRead);
  }

  isCommitted(file: string): boolean {
    return this.ledger.batches.some((b) => b.file === file);
  }

  /** Of `objects`, those a committed batch already holds (a stale merge, if any). */
  alreadyCommitted(objects: ObjectInfo[]): ObjectInfo[] {
    const merged = this.mergedObjects();
    return objects.filter((o) => merged.has(o.key));
  }

  /** Starts the ledger of a day the original processed, from what adoption found in its merged files. */
  async adopt(ledger: Ledger, options: { dryRun?: boolean } = {}): Promise<void> {
    this.ledgerRead = ledger;
    if (!options.dryRun) await writeLedger(this.dest, ledgerKey(this.layout, this.day), ledger, this.signal);
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
    const key = dataKey(this.layout, this.day, batch.file);
    await options.transfers(() => this.dest.uploadFile(key, localFile, { contentType: options.contentType, onBytes: options.onBytes }, this.signal));
    const ledger = this.ledger;
    ledger.batches.push({ file: batch.file, records: batch.records, objects: batch.objects, committedAt: new Date().toISOString(), ...(batch.skipped?.length ? { skipped: batch.skipped } : {}) });
    await writeLedger(this.dest, ledgerKey(this.layout, this.day), ledger, this.signal);
    this.ledgerRead = ledger;
  }

  /** Steps 3 and 4, after a commit (this run's or an earlier one's). */
  async finish(seriesIds: string[], log: CommitLog): Promise<void> {
    await this.dest.put(indexKey(this.layout, this.day), formatIndex([...(this.previousIds ?? []), ...seriesIds]), { contentType: 'text/plain' }, this.signal);
    await this.removeOrphans(log);
    await this.abortLeftUploads(log);
  }

  private async removeOrphans(log: CommitLog): Promise<void> {
    const committed = new Set(this.ledger.batches.map((b) => b.file));
    const keys = (await this.dest.list(dataDayPrefix(this.layout, this.day), this.signal))
      .map((o) => o.key)
      .filter((k) => isMergedFile(k) && !committed.has(k.slice(k.lastIndexOf('/') + 1)));
    if (keys.length === 0) return;
    log('warn', `removing ${keys.length} uncommitted merged file(s) left by an interrupted run: ${keys.join(', ')}`);
    await this.dest.deleteKeys(keys, this.signal);
  }

  /** Best effort: a role without the list/abort permissions gets a warning, not a failed day. */
  private async abortLeftUploads(log: CommitLog): Promise<void> {
    try {
      const aborted = await this.dest.abortUploads(dataDayPrefix(this.layout, this.day), isMergedFile, this.signal);
      if (aborted > 0) log('warn', `aborted ${aborted} multipart upload(s) left unfinished by an interrupted run`);
    } catch (err) {
      if (!(err instanceof FatalError)) throw err;
      log('warn', `${err.message}; unfinished multipart uploads of killed runs are not cleaned up (an S3 lifecycle rule AbortIncompleteMultipartUpload does it too)`);
    }
  }
}
