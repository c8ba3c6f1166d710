/**
 * The one retry policy, for S3 and SiteWise alike. The SDK clients make a
 * single attempt per call (maxAttempts 1); every retry happens here, so a
 * request is tried at most `maxAttempts` times in all, never attempts times
 * attempts. It honours AWS_MAX_ATTEMPTS and AWS_RETRY_MODE as the AWS CLI does.
 *
 * Worst case of one request that gets no answer, with the defaults: 8
 * attempts that each wait FIRST_BYTE_TIMEOUT_MS (60 s), plus 7 backoffs of at
 * most 1.5 x (0.2, 0.4, ... 12.8 s), 38 s: about 8 min 38 s. A throttled
 * request (SlowDown, ThrottlingException) gets THROTTLED_ATTEMPTS tries, its
 * backoffs starting at THROTTLE_BASE_MS and capped at MAX_DELAY_MS: at most
 * 12 x 60 s + 3 min 17 s of waiting, about 15 min 17 s. A body that stops
 * costs IDLE_TIMEOUT_MS (30 s) per attempt instead of the 60 s. A body that
 * keeps coming, however slowly, is not cut. A multipart upload retries each
 * part alone.
 */
import { setTimeout as sleepFor } from 'node:timers/promises';
import { SendRate, type SendRateSettings } from './send-rate.js';

/** Tries per request when AWS_MAX_ATTEMPTS is not set. */
export const DEFAULT_MAX_ATTEMPTS = 8;
/** Tries of a throttled request (SlowDown, ThrottlingException): throttling eases with time, so it gets more. */
export const THROTTLED_ATTEMPTS = 12;
/** Tries of a request that found no server at all (refused, DNS): a few quick ones, then the endpoint is named. */
export const UNREACHABLE_ATTEMPTS = 3;
/** The first backoff; each further one doubles, with jitter of 0.5-1.5 x. */
export const BASE_DELAY_MS = 200;
/** The first backoff after throttling. */
export const THROTTLE_BASE_MS = 500;
/** No backoff is longer than this. */
export const MAX_DELAY_MS = 20_000;
/**
 * How long an attempt may wait for the first byte of its answer, its request
 * body sent (an 8 MiB part at 1 MB/s takes 8 s of it); then it is aborted and
 * retried. Config: aws.first_byte_timeout.
 */
export const FIRST_BYTE_TIMEOUT_MS = 60_000;
/** How long a connection may stay silent while a request or response body is under way; then the same. Config: aws.idle_timeout. */
export const IDLE_TIMEOUT_MS = 30_000;

export interface Timeouts {
  firstByteMs: number;
  idleMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = { firstByteMs: FIRST_BYTE_TIMEOUT_MS, idleMs: IDLE_TIMEOUT_MS };
/** How long a connection may take to open. */
export const CONNECT_TIMEOUT_MS = 5_000;

/** standard: backoff per request. adaptive (the default): also one send rate for the run, lowered while requests are throttled (send-rate.ts). */
export type RetryMode = 'standard' | 'adaptive';

export interface RetryPolicy {
  readonly maxAttempts: number;
  readonly mode: RetryMode;
  /** Retries made so far under this policy, and how many of them followed throttling: the run's summary reports them. */
  readonly stats: { retries: number; throttled: number };
  /** adaptive: the run's send rate (requests per second; Infinity: not limited). */
  readonly sendRate: () => number;
  /** Retries `fn` while `classify` says an error is worth another try. */
  run<T>(fn: (attempt: number) => Promise<T>, classify: (err: unknown) => RetryClass, signal?: AbortSignal): Promise<T>;
}

/** How a fault is retried: as a transient fault, after throttling (longer), when no server answered (a few quick tries), or not at all. */
export type RetryClass = 'retry' | 'throttled' | 'unreachable' | 'fail';

/**
 * The policy AWS_MAX_ATTEMPTS and AWS_RETRY_MODE ask for (`legacy` counts as
 * standard); unset, adaptive: a throttled bucket slows the whole run. A bad
 * value names the variable.
 */
export function retryPolicyFromEnv(env: Record<string, string | undefined>): RetryPolicy {
  const attemptsText = env.AWS_MAX_ATTEMPTS;
  const maxAttempts = attemptsText === undefined || attemptsText === '' ? DEFAULT_MAX_ATTEMPTS : Number(attemptsText);
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new RangeError(`AWS_MAX_ATTEMPTS: '${attemptsText}' must be a whole number of 1 or more`);
  const modeText = (env.AWS_RETRY_MODE || 'adaptive').toLowerCase();
  if (!['standard', 'adaptive', 'legacy'].includes(modeText)) throw new RangeError(`AWS_RETRY_MODE: '${env.AWS_RETRY_MODE}' is not one of standard, adaptive, legacy`);
  return createRetryPolicy({ maxAttempts, mode: modeText === 'adaptive' ? 'adaptive' : 'standard' });
}

export interface RetrySettings {
  maxAttempts?: number;
  mode?: RetryMode;
  /** The backoffs' bases and cap (tests shorten them). */
  baseDelayMs?: number;
  throttleBaseMs?: number;
  maxDelayMs?: number;
  /** adaptive: the send rate's window and floor (tests shorten them). */
  rate?: SendRateSettings;
}

export function createRetryPolicy(settings: RetrySettings = {}): RetryPolicy {
  const { maxAttempts = DEFAULT_MAX_ATTEMPTS, mode = 'standard', baseDelayMs = BASE_DELAY_MS, throttleBaseMs = THROTTLE_BASE_MS, maxDelayMs = MAX_DELAY_MS } = settings;
  const rate = mode === 'adaptive' ? new SendRate(settings.rate) : undefined;
  const jitter = () => 0.5 + Math.random();
  const stats = { retries: 0, throttled: 0 };
  return {
    maxAttempts,
    mode,
    stats,
    sendRate: () => rate?.limit ?? Infinity,
    async run(fn, classify, signal) {
      for (let attempt = 1; ; attempt++) {
        await rate?.acquire(signal);
        try {
          const result = await fn(attempt);
          rate?.record(false);
          return result;
        } catch (err) {
          if (signal?.aborted) throw err;
          const kind = classify(err);
          rate?.record(kind === 'throttled');
          const limit = kind === 'throttled' ? Math.max(maxAttempts, THROTTLED_ATTEMPTS) : kind === 'unreachable' ? Math.min(maxAttempts, UNREACHABLE_ATTEMPTS) : maxAttempts;
          if (kind === 'fail' || attempt >= limit) throw err;
          const base = kind === 'throttled' ? throttleBaseMs : baseDelayMs;
          const delay = Math.min(maxDelayMs, base * 2 ** (attempt - 1)) * jitter();
          stats.retries++;
          if (kind === 'throttled') stats.throttled++;
          await sleepFor(delay, undefined, { signal });
        }
      }
    },
  };
}
