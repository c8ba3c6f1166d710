// The entry point, and the only place that owns the process: argv, signals,
// exit codes, and how a fatal error is printed. dist/bin/sitewise-repartition.cjs
// (src/cli/launch.ts) starts it.
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { CommanderError } from 'commander';
import { ConfigError } from '../config/config-error.js';
import { FatalError, errorMessage } from '../shared/errors.js';
import { peakRssMb } from './peak-memory.js';
import { buildProgram, EXIT_DAY_FAILED, EXIT_USAGE } from './program.js';

/** 128 + the signal's number, as shells report a process ended by it. */
const EXIT_ON_SIGNAL = { SIGINT: 130, SIGTERM: 143 } as const;
/**
 * After a stop signal the run aborts its requests and transfers and winds
 * down (the lock released, clients closed); if that takes longer than this,
 * it exits anyway. Stopping at any point is safe: local files are complete, or
 * checked again by the next run.
 */
const STOP_GRACE_MS = 5_000;

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // `sitewise-repartition --help | head`: a reader that stops early is not an error
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(process.exitCode ?? 0);
  });
  const run = new AbortController();
  // every request in flight listens on the run's signal and stops listening when it ends
  setMaxListeners(0, run.signal);
  let stopCode: number | undefined;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      const code = EXIT_ON_SIGNAL[signal];
      if (stopCode !== undefined) process.exit(code); // a second signal: now
      stopCode = code;
      process.stderr.write(`\n${signal}: stopped; run the same command again to resume\n`);
      run.abort(new Error(`stopped by ${signal}`));
      setTimeout(() => process.exit(code), STOP_GRACE_MS).unref();
    });
  }
  const runId = randomUUID().slice(0, 8);
  const program = buildProgram(run.signal, runId);
  const started = Date.now();
  // With --log-format json a fatal error is an `error` event and a `command-end`, on stdout with the other events, so log shippers see it.
  const json = process.argv.some((a, i) => a === '--log-format=json' || (a === '--log-format' && process.argv[i + 1] === 'json'));
  const stage = program.commands.find((c) => process.argv.slice(2).some((a) => c.name() === a || c.aliases().includes(a)))?.name();
  const fail = (kind: 'config' | 'fatal' | 'internal', message: string) => {
    if (!json) {
      process.stderr.write(`${kind === 'config' ? 'config error' : kind === 'fatal' ? 'error' : 'internal error (a bug, please report it)'}: ${message}\n`);
      return;
    }
    const event = (e: object) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), runId, ...e })}\n`);
    event({ type: 'error', kind, error: message });
    event({ type: 'command-end', stage: stage ?? null, done: 0, skipped: 0, busy: 0, failed: 0, seconds: (Date.now() - started) / 1000, failedDays: [], peakRssMb: peakRssMb(), retries: 0, throttled: 0, error: message });
  };
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (stopCode !== undefined) {
      // what failed was cut short by the stop, which was reported when it came
    } else if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
    } else if (err instanceof ConfigError) {
      for (const p of err.problems) fail('config', p);
      process.exitCode = EXIT_USAGE;
    } else if (err instanceof FatalError) {
      fail('fatal', err.message);
      process.exitCode = EXIT_DAY_FAILED;
    } else {
      fail('internal', err instanceof Error ? (err.stack ?? err.message) : errorMessage(err));
      process.exitCode = EXIT_DAY_FAILED;
    }
  }
  if (stopCode !== undefined) process.exitCode = stopCode;
}

// not a top-level await: the bundle is CommonJS (it loads faster than an ES module graph)
void main();
