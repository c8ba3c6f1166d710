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
