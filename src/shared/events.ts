/** What the commands report; only src/cli turns these into text. */
export type Stage = 'download' | 'merge' | 'upload' | 'run' | 'plan' | 'compact';
/** busy: another run holds the day's lease; not a failure. */
export type DayStatus = 'done' | 'skipped' | 'busy' | 'failed';

export type ProgressEvent =
  | { type: 'command-start'; stage: Stage; days: number }
  | { type: 'log'; stage: Stage; day?: string; level: 'info' | 'warn' | 'detail'; message: string }
  | { type: 'progress'; stage: Stage; day: string; doneObjects: number; totalObjects: number; doneBytes: number; totalBytes: number }
  | {
      type: 'day-end';
      stage: Stage;
      day: string;
      status: DayStatus;
      seconds: number;
      objects?: number;
      bytes?: number;
      records?: number;
      path?: string;
      reason?: string;
      dropped?: number;
      /** Objects left out of the day, by why ('already merged', 'not ASSOCIATED', ...). */
      skips?: Record<string, number>;
      error?: string;
    }
  | {
      type: 'command-end';
      stage: Stage;
      /** The date range, for the commands that take one. */
      from?: string;
      to?: string;
      done: number;
      skipped: number;
      busy: number;
      failed: number;
      seconds: number;
      failedDays: { day: string; error: string }[];
      peakRssMb: number;
      /** Requests retried, and how many of those retries followed throttling (503 SlowDown, ThrottlingException). */
      retries: number;
      throttled: number;
    };

export type Emit = (event: ProgressEvent) => void;

export interface DayOutcome {
  status: DayStatus;
  objects?: number;
  bytes?: number;
  records?: number;
  path?: string;
  reason?: string;
  /** Records left out by output.dedupe: latest (an older recordVersion of a key). */
  dropped?: number;
  /** Objects left out of the day, by why. */
  skips?: Record<string, number>;
}

export interface CommandSummary {
  done: string[];
  skipped: string[];
  busy: string[];
  failed: { day: string; error: string }[];
}
