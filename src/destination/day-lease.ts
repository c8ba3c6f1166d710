/**
 * Per-day leases in the destination, so that runs on machines that share
 * nothing but the buckets never work on the same day at once. A lease is
 * `index/…/startDay=D/lease.json` beside the day's ledger, holding who holds
 * it and until when:
 *
 * - take: read it; none there: create it with `If-None-Match: *`; one that
 *   expired (or was released): take it over with `If-Match` on its ETag;
 * - renew: every RENEW_SECONDS with `If-Match`, pushing the expiry on;
 * - release: after the commit, deleted while more than half its length is
 *   left (no one can have taken it over), else marked released with
 *   `If-Match` (so it never releases a lease someone else has taken since);
 * - lost: a renewal refused (someone took the day over), or no renewal got
 *   through before the expiry: the day's signal is aborted, and the day is
 *   never committed (DayCommit asks `confirm()` right before the ledger PUT).
 *
 * A holder on this machine, in this work dir, whose process is gone, is
 * taken over at once: the work-dir lock this run holds says no live run of
 * this machine uses that work dir, so a cron rerun after a kill need not wait.
 *
 * Leases keep two runs from doing the same day's work at once; the commit
 * stays safe without them (the ledger PUT is conditional, see DayCommit).
 * Expiry compares wall clocks: hosts whose clocks differ by more than a
 * small part of LEASE_SECONDS can take a lease over too early.
 */
import { DayError } from '../shared/errors.js';
import { isoDay, type Day } from '../partition/day.js';
import { PreconditionFailedError, type ObjectStore } from '../store/object-store.js';

/** How long a lease holds without renewal: longer than any single request with its retries takes. */
export const LEASE_SECONDS = 300;
/** Renewal interval: a fifth of the lease, so four renewals in a row may fail before it is lost. */
export const RENEW_FRACTION = 5;
/** Overrides LEASE_SECONDS (tests; clusters that want a faster take-over of killed runs). */
export const LEASE_SECONDS_ENV = 'SITEWISE_REPARTITION_LEASE_SECONDS';

export function leaseSeconds(env: NodeJS.ProcessEnv): number {
  const text = env[LEASE_SECONDS_ENV];
  if (text === undefined || text === '') return LEASE_SECONDS;
  const value = Number(text);
  if (!(value >= 1 && value <= 86_400)) throw new RangeError(`${LEASE_SECONDS_ENV}: '${text}' must be a number of seconds from 1 to 86400`);
  return value;
}

export interface LeaseHolder {
  host: string;
  pid: number;
  runId: string;
  command: string;
  /** The holder's local work dir: a holder on this host, in this work dir, whose process is gone, is a killed run of this machine. */
  workDir?: string;
}

interface LeaseDoc {
  version: 1;
  day: string;
  holder: LeaseHolder;
  takenAt: string;
  expiresAt: string;
  released?: boolean;
}

/** A day someone else holds: who, and until when. */
export class BusyDay {
  constructor(
    readonly holder: LeaseHolder | undefined,
    readonly expiresAt: string,
  ) {}

  get reason(): string {
    const who = this.holder ? `${this.holder.command} on ${this.holder.host} (pid ${this.holder.pid}, run ${this.holder.runId})` : 'another run';
    return `busy: leased by ${who} until ${this.expiresAt}`;
  }
}

export interface LeaseSettings {
  dest: ObjectStore;
  holder: LeaseHolder;
  seconds: number;
  /** The run's stop signal. */
  signal: AbortSignal;
  log: (level: 'info' | 'warn', message: string) => void;
  /** Whether a holder is known dead without waiting for its expiry (a killed run of this machine and work dir). */
  isGone?: (holder: LeaseHolder) => boolean;
}

function parseLease(body: Buffer): LeaseDoc | undefined {
  try {
    const doc = JSON.parse(body.toString('utf8')) as LeaseDoc;
    return typeof doc?.expiresAt === 'string' && !Number.isNaN(Date.parse(doc.expiresAt)) ? doc : undefined;
  } catch {
    return undefined;
  }
}

export class DayLease {
  private readonly lost = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;
  private expiresAt: number;

  private constructor(
    private readonly settings: LeaseSettings,
    private readonly key: string,
    private readonly doc: LeaseDoc,
    private etag: string,
  ) {
    this.expiresAt = Date.parse(doc.expiresAt);
    this.schedule();
  }

  /** Takes the day's lease at `key`, or says who holds it. */
  static async take(settings: LeaseSettings, key: string, day: Day): Promise<DayLease | BusyDay> {
    const { dest, holder, signal } = settings;
    for (let attempt = 0; attempt < 4; attempt++) {
      const now = Date.now();
      const doc: LeaseDoc = { version: 1, day: isoDay(day), holder, takenAt: new Date(now).toISOString(), expiresAt: new Date(now + settings.seconds * 1000).toISOString() };
      const body = JSON.stringify(doc);
      const current = await dest.read(key, signal);
      const held = current && parseLease(current.body);
      if (held?.holder?.runId === holder.runId && !held.released) return new DayLease(settings, key, held, current!.etag);
      const gone = held?.holder !== undefined && settings.isGone?.(held.holder) === true;
      if (held && !held.released && Date.parse(held.expiresAt) > now && !gone) return new BusyDay(held.holder, held.expiresAt);
      try {
        const put = await dest.put(key, body, { contentType: 'application/json', ...(current ? { ifMatch: current.etag } : { ifNoneMatch: '*' }) }, signal);
        const why = gone ? 'its process on this machine is gone (a run killed here)' : 'it expired without release (a run killed or cut off)';
        if (held && !held.released) settings.log('warn', `took over the lease of ${new BusyDay(held.holder, held.expiresAt).reason.replace(/^busy: leased by /, '')}: ${why}`);
        return new DayLease(settings, key, doc, put.etag);
      } catch (err) {
        if (!(err instanceof PreconditionFailedError)) throw err;
        // another run took or changed it between the read and the put: read it again
      }
    }
    const last = await dest.read(key, signal);
    const held = last && parseLease(last.body);
    return new BusyDay(held?.holder, held?.expiresAt ?? 'unknown');
  }

  /** Aborted when the lease is lost; its reason is a DayError saying why. */
  get signal(): AbortSignal {
    return this.lost.signal;
  }

  /** Renews now: throws the lease-lost DayError unless the lease is still this run's. Called right before a commit. */
  async confirm(): Promise<void> {
    await this.renew();
    this.signal.throwIfAborted();
  }

  /**
   * Releases the lease: deletes it while it is surely still this run's (more
   * than half its length left: no one may take it over before it expires),
   * else marks it released with If-Match, which fails if it is not.
   */
  async release(): Promise<void> {
    this.stop();
    await this.renewing;
    if (this.signal.aborted) return;
    if (this.expiresAt - Date.now() > (this.settings.seconds * 1000) / 2) {
      await this.settings.dest.deleteKeys([this.key], this.settings.signal);
      return;
    }
    const doc: LeaseDoc = { ...this.doc, expiresAt: new Date().toISOString(), released: true };
    try {
      await this.settings.dest.put(this.key, JSON.stringify(doc), { contentType: 'application/json', ifMatch: this.etag }, this.settings.signal);
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
    }
  }

  /** Stops renewing, without releasing (the run is stopping). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    this.timer = setTimeout(() => void this.renew().finally(() => !this.signal.aborted && this.timer && this.schedule()), (this.settings.seconds * 1000) / RENEW_FRACTION);
    this.timer.unref();
  }

  private renew(): Promise<void> {
    this.renewing ??= this.renewOnce().finally(() => (this.renewing = undefined));
    return this.renewing;
  }

  private async renewOnce(): Promise<void> {
    if (this.signal.aborted || this.settings.signal.aborted) return;
    const now = Date.now();
    const doc: LeaseDoc = { ...this.doc, expiresAt: new Date(now + this.settings.seconds * 1000).toISOString() };
    const where = `s3://${this.settings.dest.name}/${this.key}`;
    try {
      const put = await this.settings.dest.put(this.key, JSON.stringify(doc), { contentType: 'application/json', ifMatch: this.etag }, this.settings.signal);
      this.etag = put.etag;
      this.expiresAt = now + this.settings.seconds * 1000;
    } catch (err) {
      if (this.settings.signal.aborted) return;
      if (err instanceof PreconditionFailedError && (await this.stillOurs())) return;
      if (err instanceof PreconditionFailedError) {
        this.lose(`the day's lease (${where}) was taken over by another run; this run stopped work on the day and did not commit it`);
      } else if (Date.now() >= this.expiresAt) {
        this.lose(`the day's lease (${where}) could not be renewed before it expired (${(err as Error).message}); this run stopped work on the day and did not commit it`);
      }
    }
  }

  /** After a refused renewal: a retried PUT whose first attempt landed leaves the lease ours, under a new ETag. */
  private async stillOurs(): Promise<boolean> {
    const current = await this.settings.dest.read(this.key, this.settings.signal).catch(() => undefined);
    const doc = current && parseLease(current.body);
    if (!doc || doc.released || doc.holder?.runId !== this.doc.holder.runId) return false;
    this.etag = current.etag;
    this.expiresAt = Date.parse(doc.expiresAt);
    return true;
  }

  private lose(message: string): void {
    this.stop();
    this.lost.abort(new DayError(message));
  }
}
