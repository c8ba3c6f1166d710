import type { Emit, ProgressEvent } from '../shared/events.js';
import { megabytes } from '../shared/units.js';

export interface RenderOptions {
  format: 'text' | 'json';
  quiet: boolean;
  verbose: boolean;
  /** stderr is a terminal: show a live progress line there. */
  tty: boolean;
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
  /** The run's id, in every JSON event. */
  runId?: string;
  /** Days are worked on at once (run): each text line that belongs to a day starts with it. */
  dayOnEveryLine?: boolean;
}

const PROGRESS_INTERVAL_MS = 200;
/** Without --verbose, JSON progress events come at most this often per day (and once when a day's transfer completes). */
const JSON_PROGRESS_INTERVAL_MS = 10_000;

function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function formatSeconds(s: number): string {
  return s < 60 ? `${Math.round(s)}s` : `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}

/**
 * Text for people and cron (plain lines; a live progress line only on a
 * terminal), or one JSON object per event for log shipping. Failures and
 * warnings go to stderr, results to stdout.
 */
export function createRenderer(options: RenderOptions): Emit & { finish(): void } {
  const out = options.out ?? process.stdout;
  const err = options.err ?? process.stderr;
  let statusShown = false;
  let lastStatus = 0;
  const started = new Map<string, { t0: number }>();
  // the live line's count of days: how many the command has, how many ended, which are being worked on
  let totalDays = 0;
  let daysEnded = 0;
  const inFlight = new Set<string>();

  const clearStatus = () => {
    if (statusShown) {
      err.write('\r\x1b[2K');
      statusShown = false;
    }
  };
  const line = (stream: NodeJS.WritableStream, text: string) => {
    clearStatus();
    stream.write(`${text}\n`);
  };

  const progress = (e: Extract<ProgressEvent, { type: 'progress' }>) => {
    const now = Date.now();
    const key = `${e.stage}:${e.day}`;
    const s = started.get(key) ?? { t0: now };
    started.set(key, s);
    const finished = e.totalObjects > 0 && e.doneObjects === e.totalObjects;
    if (!finished && now - lastStatus < PROGRESS_INTERVAL_MS) return;
    lastStatus = now;
    const elapsed = Math.max(0.001, (now - s.t0) / 1000);
    const rate = e.doneBytes / elapsed;
    const eta = e.totalBytes > 0 && rate > 0 ? ` ETA ${formatSeconds((e.totalBytes - e.doneBytes) / rate)}` : '';
    const objects = e.totalObjects > 0 ? `${e.doneObjects}/${e.totalObjects} objects ` : '';
    const bytes = e.totalBytes > 0 ? `${formatBytes(e.doneBytes)}/${formatBytes(e.totalBytes)}` : formatBytes(e.doneBytes);
    inFlight.add(e.day);
    const days = totalDays > 0 ? `[${daysEnded}/${totalDays} days${inFlight.size > 1 ? `, in flight ${[...inFlight].sort().join(' ')}` : ''}] ` : '';
    err.write(`\r\x1b[2K${days}${e.stage} ${e.day}: ${objects}${bytes} ${formatBytes(rate)}/s${eta}`);
    statusShown = true;
  };

  const lastJsonProgress = new Map<string, number>();
  const emit = (e: ProgressEvent) => {
    if (options.format === 'json') {
      if (e.type === 'progress' && !options.verbose) {
        const key = `${e.stage}:${e.day}`;
        const now = Date.now();
        const finished = e.totalObjects > 0 && e.doneObjects === e.totalObjects;
        if (!finished && now - (lastJsonProgress.get(key) ?? 0) < JSON_PROGRESS_INTERVAL_MS) return;
        lastJsonProgress.set(key, now);
      }
      if (e.type === 'log' && e.level === 'detail' && !options.verbose) return;
      // one stream for every event, warnings and failures too, so a shipper keeps their order
      out.write(`${JSON.stringify({ time: new Date().toISOString(), ...(options.runId ? { runId: options.runId } : {}), ...e })}\n`);
      return;
    }
    switch (e.type) {
      case 'command-start':
        totalDays = e.days;
        return;
      case 'progress':
        if (options.tty && !options.quiet) progress(e);
        return;
      case 'log':
        if (e.level === 'warn') line(err, `${e.day ? `${e.day}: ` : ''}WARNING: ${e.message.trim()}`);
        else if (!options.quiet && (e.level === 'info' || options.verbose)) line(out, options.dayOnEveryLine && e.day && !e.message.startsWith(e.day) ? `${e.day}  ${e.message.replace(/^\t+/, '')}` : e.message);
        return;
      case 'day-end': {
        daysEnded++;
        inFlight.delete(e.day);
        if (e.status === 'failed') {
          line(err, `${e.stage} ${e.day}: FAILED: ${e.error ?? 'unknown error'}`);
          return;
        }
        // a day that left objects out for a reason other than being merged already is said under --quiet too
        const skips = Object.entries(e.skips ?? {});
        if (options.quiet && !skips.some(([why]) => why !== 'already merged')) return;
        const parts = [
          e.objects !== undefined ? `${e.objects} objects` : '',
          e.bytes !== undefined ? megabytes(e.bytes) : '',
          e.records !== undefined ? `${e.records} records` : '',
          e.path ? `${e.path} path` : '',
          e.dropped !== undefined ? `${e.dropped} older versions dropped` : '',
          e.reason ?? '',
          skips.length > 0 ? `skipped ${skips.map(([why, n]) => `${n} ${why}`).join(', ')}` : '',
        ].filter(Boolean);
        line(out, `${e.stage} ${e.day}: ${e.status}${parts.length ? ` (${parts.join(', ')})` : ''} in ${e.seconds.toFixed(1)}s`);
        return;
      }
      case 'command-end': {
        // the range and the time, so a cron mail or log line says which run it was
        const range = e.from ? ` ${e.from}..${e.to}` : '';
        const at = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
        line(out, `${e.stage}${range}: ${e.done} days done, ${e.skipped} skipped, ${e.busy > 0 ? `${e.busy} busy (another run holds them), ` : ''}${e.failed} failed in ${e.seconds.toFixed(1)}s, peak memory ${e.peakRssMb} MB${e.retries > 0 ? `, ${e.retries} retries (${e.throttled} after throttling)` : ''}, at ${at}`);
        for (const f of e.failedDays) line(err, `  failed ${f.day}: ${f.error}`);
        if (e.failed === 0 && !options.quiet) line(out, '\nScript execution successfully completed!!');
        return;
      }
    }
  };
  return Object.assign(emit, { finish: clearStatus });
}
