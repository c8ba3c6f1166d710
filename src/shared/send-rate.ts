/**
 * Client-side rate adaptation, as the SDK's adaptive retry mode does it in
 * spirit: one send rate for the whole run. Each window of WINDOW_MS, if at
 * least THROTTLE_SHARE of the attempts were throttled (503 SlowDown,
 * ThrottlingException), the rate drops to DECREASE x what was sent in that
 * window, never below MIN_RATE; a window under that share raises it by
 * INCREASE, and once it is well above what is being sent it is lifted
 * altogether. Every attempt takes a token first, so a throttled bucket slows
 * every request of the run, not only the one that was refused.
 */
import { setTimeout as sleepFor } from 'node:timers/promises';

export const WINDOW_MS = 1_000;
/** Share of a window's attempts throttled that lowers the rate. */
export const THROTTLE_SHARE = 0.05;
export const DECREASE = 0.7;
export const INCREASE = 1.25;
/** Requests per second the rate never goes below. */
export const MIN_RATE = 50;

export interface SendRateSettings {
  windowMs?: number;
  minRate?: number;
}

export class SendRate {
  /** Requests per second; Infinity: not limited. */
  private rate = Infinity;
  private tokens = 0;
  private refilledAt = Date.now();
  private windowStart = Date.now();
  private attempts = 0;
  private throttles = 0;
  private readonly windowMs: number;
  private readonly minRate: number;

  constructor(settings: SendRateSettings = {}) {
    this.windowMs = settings.windowMs ?? WINDOW_MS;
    this.minRate = settings.minRate ?? MIN_RATE;
  }

  /** The current limit in requests per second (Infinity: none). */
  get limit(): number {
    return this.rate;
  }

  /** Waits for a token when the rate is limited. */
  async acquire(signal?: AbortSignal): Promise<void> {
    while (this.rate !== Infinity) {
      const now = Date.now();
      this.tokens = Math.min(Math.max(1, this.rate), this.tokens + ((now - this.refilledAt) / 1000) * this.rate);
      this.refilledAt = now;
      if (this.tokens >= 1) {
        this.tokens--;
        return;
      }
      await sleepFor(Math.ceil(((1 - this.tokens) / this.rate) * 1000), undefined, { signal });
    }
  }

  /** Counts one attempt's outcome, and adapts the rate at the end of a window. */
  record(throttled: boolean): void {
    this.attempts++;
    if (throttled) this.throttles++;
    const now = Date.now();
    const elapsed = now - this.windowStart;
    if (elapsed < this.windowMs) return;
    const sent = (this.attempts / elapsed) * 1000;
    if (this.throttles >= THROTTLE_SHARE * this.attempts) {
      this.rate = Math.max(this.minRate, Math.min(this.rate, sent) * DECREASE);
      this.tokens = Math.min(this.tokens, 1);
    } else if (this.rate !== Infinity) {
      this.rate *= INCREASE;
      if (this.rate > 2 * sent) this.rate = Infinity;
    }
    this.windowStart = now;
    this.attempts = 0;
    this.throttles = 0;
  }
}
