import { readFileSync } from 'node:fs';

/**
 * The process's peak resident memory so far, worker threads included. On
 * Linux from /proc (VmHWM): getrusage's maxrss also counts the memory of the
 * parent that spawned us, as it was when it forked (a bench or a cron wrapper).
 */
export function peakRssMb(): number {
  try {
    const hwm = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (hwm) return Math.round(Number(hwm[1]) / 1024);
  } catch {
    // not Linux
  }
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

/** Above this resident size, the governor asks V8 for a full collection. */
const SOFT_LIMIT_BYTES = 150 * 2 ** 20;
/** How often it looks, and so the most often it collects. */
const CHECK_MS = 250;
/** A collection that frees less than this was not worth it: the next waits twice as long, up to MAX_WAIT_MS. */
const FUTILE_BYTES = 8 * 2 ** 20;
const MAX_WAIT_MS = 8000;

export interface GovernorOptions {
  softLimitBytes?: number;
  checkMs?: number;
  futileBytes?: number;
}

/**
 * Keeps peak memory under the 200 MB target on days of 1 GB and more. V8
 * lets its heap grow to a few times what is live, and leaves up to 64 MB of
 * dropped buffers, before it collects on its own; with a merge and an
 * upload beside the downloads of the next days, `run` over three 1 GB days
 * peaked at 277-313 MB, and `download` alone at 203-212 MB. Above
 * SOFT_LIMIT_BYTES this asks for a full collection, at most every
 * CHECK_MS: `run` then peaked at 190-197 MB, `download` at 164-167 MB.
 * The price, on loopback where the CPU is what limits: `download` of those
 * days took 59-68 s where it took 29-46 s (each collection stops the
 * process), `run` 10-20 % longer; below the limit (days up to a few hundred
 * MB) nothing changes. An incremental collection instead was no faster and
 * left `run` at 202-210 MB. Where collecting frees little (memory outside
 * the JavaScript heap: a native library's, another thread's), it backs off:
 * without that, a 135 MB day's Parquet merge (then written in WebAssembly)
 * took 15.6 s instead of 12.6 s for the same peak. Works where the bin started Node with --expose-gc; a
 * no-op elsewhere. Returns the stop.
 */
export function governMemory(options: GovernorOptions = {}): () => void {
  const { softLimitBytes = SOFT_LIMIT_BYTES, checkMs = CHECK_MS, futileBytes = FUTILE_BYTES } = options;
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return () => undefined;
  let wait = checkMs;
  let next = 0;
  const timer = setInterval(() => {
    const now = Date.now();
    const before = process.memoryUsage.rss();
    if (now < next || before <= softLimitBytes) return;
    gc();
    wait = before - process.memoryUsage.rss() < futileBytes ? Math.min(wait * 2, MAX_WAIT_MS) : checkMs;
    next = now + wait;
  }, checkMs);
  timer.unref();
  return () => clearInterval(timer);
}
