/**
 * What each command is given: settings, clients and where to report, each
 * command asking for exactly what it uses. The CLI builds these (src/cli/
 * command-table.ts); tests may build them around loopback servers.
 */
import type { Config } from '../config/load-config.js';
import type { DayRead } from '../destination/day-commit.js';
import type { DayHold, DestinationGuard } from '../destination/guard.js';
import type { OutputFormat } from '../output/output-format.js';
import type { Day, DayRange } from '../partition/day.js';
import type { Shard } from '../partition/shards.js';
import type { SeriesSummary } from '../sitewise/list-time-series.js';
import type { Emit } from '../shared/events.js';
import type { Limiter } from '../shared/limit.js';
import type { Listing } from '../store/listing.js';
import type { ObjectStore } from '../store/object-store.js';

/** What every command has: where to report, and the run's stop signal (SIGINT, SIGTERM). */
export interface RunContext {
  emit: Emit;
  signal: AbortSignal;
}

/** ListTimeSeries, asked once per run on first use, then cached. */
export interface SeriesLookup {
  /** Known series ids; undefined means every series (timeseries_type ALL). */
  ids(): Promise<Set<string> | undefined>;
  /** The summaries, if ids() asked ListTimeSeries this run (the series catalog is written from them); else undefined. */
  asked(): Promise<SeriesSummary[]> | undefined;
}

/** What writes to the destination: its guard, and (while a day is worked on) the day's hold. */
export interface Guarded {
  /** Leases and conditional commits where the destination honours them (destination/guard.ts). */
  guard: DestinationGuard;
  /** The hold on the day being worked on (set by underHold). */
  hold?: DayHold;
  /** Only the days dealt to this shard (--shard, --shard-count); undefined: every day. */
  shard?: Shard;
}

/** What a day needs first, started ahead of it (download.ts, daysAhead). */
export interface DayAhead {
  listing: Listing;
  /** The day's ledger and index read ahead: the first day's beside its listing, a later day's once its listing has a key (undefined for an empty day, which costs one LIST). */
  read?: Promise<DayRead | undefined>;
}

export type DaysAhead = (day: Day) => DayAhead;

export interface DownloadDeps extends RunContext, Guarded {
  config: Config;
  range: DayRange;
  cold: ObjectStore;
  dest: ObjectStore;
  series: SeriesLookup;
  /** Shared bound on S3 transfers in flight. */
  transfers: Limiter;
  /** The range's first days, started while the buckets were checked (the CLI does); else started when the command begins. */
  ahead?: DaysAhead;
}

export interface MergeDeps extends RunContext {
  config: Config;
  format: OutputFormat;
  /** Merge a day's good objects and leave out its bad ones (recorded with why), instead of failing the day. */
  skipBadObjects?: boolean;
}

export interface UploadDeps extends RunContext, Guarded {
  config: Config;
  dest: ObjectStore;
  transfers: Limiter;
  /** With output.dedupe: latest, the format that compacts a day left with more than one file after its upload, so that each key is kept once across runs. */
  compactWith?: OutputFormat;
}

/** compact: the destination, and the format that writes the day's one file. */
export interface CompactDeps extends UploadDeps {
  range: DayRange;
  format: OutputFormat;
}

export type RunDeps = DownloadDeps &
  MergeDeps &
  UploadDeps & {
    /** Compact each day after its upload (run --compact, or output.dedupe: latest). */
    compact?: boolean;
  };
