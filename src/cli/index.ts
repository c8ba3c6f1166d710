// The CLI; dist/bin/sitewise-repartition.cjs (src/cli/launch.ts) starts it.
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { ConfigError } from '../config/config-error.js';
import { loadConfig, type ConfigFlags, type Requirement } from '../config/load-config.js';
import { FatalError, errorMessage } from '../errors.js';
import type { CommandSummary } from '../events.js';
import { createLimiter } from '../limit.js';
import { acquireWorkLock } from '../work-lock.js';
import type { Context } from '../commands/context.js';
import { createRenderer } from './render.js';

const EXIT_DAY_FAILED = 1;
const EXIT_USAGE = 2;

interface CliFlags extends ConfigFlags {
  quiet?: boolean;
  verbose?: boolean;
  logFormat: 'text' | 'json';
  dryRun?: boolean;
  crcCheck?: boolean;
}

const CRC_CHECK_HELP =
  'also decompress every snappy block and check its CRC (about 4x slower; without it each block is copied as stored, its framing and sync marker checked, and each object was MD5-checked on download)';

/** The package's version, from the package.json nearest above this file (dist/bin/cli.cjs, or dist/src/cli/index.js under tsc). */
function packageVersion(): string {
  for (let dir = new URL('.', import.meta.url); dir.pathname !== '/'; dir = new URL('..', dir)) {
    try {
      return (JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { version: string }).version;
    } catch {
      // not here: look further up
    }
  }
  return 'unknown';
}

function withCommonOptions(cmd: Command, example: string): Command {
  return cmd
    .option('-c, --config <file>', 'config file', 'config.yml')
    .option('--from <day>', 'first day: YYYY-MM-DD, today, yesterday or today-N (overrides date_range.date_start)')
    .option('--to <day>', 'last day, inclusive (overrides date_range.date_end)')
    .option('--profile <name>', 'AWS profile (overrides credentials.profile)')
    .option('--work-dir <dir>', 'local work folder (overrides local_dirs.work_dir, default /tmp/sitewise)')
    .option('--concurrency <n>', 'parallel S3 transfers (default 16)')
    .option('-q, --quiet', 'only errors and the final summary')
    .option('-v, --verbose', 'per-object detail')
    .addOption(new Option('--log-format <format>', 'text, or json: one JSON object per event').choices(['text', 'json']).default('text'))
    .addHelpText('after', `\nExample:\n  ${example}\n`);
}

async function execute(stage: 'download' | 'merge' | 'upload' | 'run', flags: CliFlags): Promise<void> {
  const needs: Requirement[] = {
    download: ['cold-bucket', 'dest-bucket', 'dates'] as Requirement[],
    merge: [] as Requirement[],
    upload: ['dest-bucket'] as Requirement[],
    run: ['cold-bucket', 'dest-bucket', 'dates'] as Requirement[],
  }[stage];
  // merge reads its inputs on a thread of its own (not with --crc-check): started now, it is ready when the first day is
  if (stage === 'merge' && !flags.crcCheck) (await import('../avro/read-ahead.js')).prestartReader();
  const config = await loadConfig(flags, needs);
  const render = createRenderer({
    format: flags.logFormat,
    quiet: flags.quiet ?? false,
    verbose: flags.verbose ?? false,
    tty: Boolean(process.stderr.isTTY) && flags.logFormat === 'text',
  });
  // The AWS SDK takes a good part of a second to load: merge never needs it,
  // and only download and run need the SiteWise client.
  const { Bucket } = stage === 'merge' ? { Bucket: undefined } : await import('../s3/bucket.js');
  const s3 = stage === 'merge' ? undefined : (await import('../s3/create-s3-client.js')).createS3Client(config);
  const needsSeries = (stage === 'download' || stage === 'run') && config.timeseriesType !== 'ALL';
  const sitewiseModule = needsSeries ? await import('../sitewise/list-time-series.js') : undefined;
  const sitewise = sitewiseModule?.createSiteWiseClient(config);
  let known: Promise<Set<string> | undefined> | undefined;
  const ctx: Context = {
    config,
    emit: render,
    cold: Bucket && s3 && config.coldBucket ? new Bucket(s3, config.coldBucket, config.concurrency + 4) : undefined,
    dest: Bucket && s3 && config.destBucket ? new Bucket(s3, config.destBucket, config.concurrency + 4) : undefined,
    knownSeries: () => {
      known ??= sitewise && sitewiseModule ? sitewiseModule.listTimeSeriesIds(sitewise, config.timeseriesType as 'ASSOCIATED' | 'DISASSOCIATED') : Promise.resolve(undefined);
      return known;
    },
    transfers: createLimiter(config.concurrency),
  };
  const release = flags.dryRun ? async () => {} : await acquireWorkLock(config.workDir);
  let summary: CommandSummary;
  try {
    summary =
      stage === 'download' ? await (await import('../commands/download.js')).download(ctx, { dryRun: flags.dryRun })
      : stage === 'merge' ? await (await import('../commands/merge.js')).merge(ctx, { checkCrc: flags.crcCheck })
      : stage === 'upload' ? await (await import('../commands/upload.js')).upload(ctx)
      : await (await import('../commands/run.js')).run(ctx, { checkCrc: flags.crcCheck });
  } finally {
    render.finish();
    await release();
    await ctx.cold?.destroy();
    await ctx.dest?.destroy();
    s3?.destroy();
    sitewise?.destroy();
  }
  if (summary.failed.length > 0) process.exitCode = EXIT_DAY_FAILED;
}

export function buildProgram(): Command {
  const program = new Command('sitewise-repartition')
    .description('Re-partition AWS IoT SiteWise cold-tier Avro exports into one Avro file per day, exactly once.')
    .version(packageVersion())
    .exitOverride() // set before the commands are added, so they inherit it
    .showSuggestionAfterError(true)
    .showHelpAfterError('(add --help for usage)')
    .addHelpText(
      'after',
      `
Order: download -> merge -> upload (or run, which does all three day by day).

Examples:
  sitewise-repartition download --config config.yml --from 2023-01-01 --to 2023-01-31
  sitewise-repartition merge --config config.yml
  sitewise-repartition upload --config config.yml
  sitewise-repartition run --from yesterday --to today      # from cron
  sitewise-repartition athena-ddl > table.sql
`,
    );
  withCommonOptions(
    program.command('download').description('list each day of the cold tier, select objects not merged yet, download them to <work>/raw/<day>/'),
    'sitewise-repartition download --from 2023-01-01 --to 2023-01-07 --dry-run',
  )
    .option('--dry-run', 'print what would be selected for each day and why the rest is skipped; write nothing')
    .action((flags: CliFlags) => execute('download', flags));
  withCommonOptions(
    program.command('merge').alias('repartition').description('merge each downloaded day into one snappy Avro file plus timeseries.txt in <work>/merged/<day>/'),
    'sitewise-repartition merge --work-dir /data/sitewise',
  )
    .option('--crc-check', CRC_CHECK_HELP)
    // the default since 0.2 (blocks are no longer decompressed unless asked); kept so old cron lines still run
    .addOption(new Option('--no-crc-check').hideHelp())
    .action((flags: CliFlags) => execute('merge', flags));
  withCommonOptions(
    program.command('upload').description('upload each merged day, verify it, commit its ledger and index, then remove its local folders'),
    'sitewise-repartition upload --config /etc/sitewise/config.yml',
  ).action((flags: CliFlags) => execute('upload', flags));
  withCommonOptions(
    program.command('run').description('download, merge and upload day by day (local disk holds only the days in flight)'),
    'sitewise-repartition run --from today-2 --to today --quiet',
  )
    .option('--crc-check', CRC_CHECK_HELP)
    .action((flags: CliFlags) => execute('run', flags));
  program
    .command('athena-ddl')
    .description('print the Athena CREATE EXTERNAL TABLE statement for the merged output (partition projection, no crawler)')
    .option('-c, --config <file>', 'config file', 'config.yml')
    .option('--table <name>', 'table name', 'sitewise_repartitioned')
    .option('--database <name>', 'database name', 'default')
    .addHelpText('after', '\nExample:\n  sitewise-repartition athena-ddl --table plant_data > create-table.sql\n')
    .action(async (flags: { config: string; table: string; database: string }) => {
      const config = await loadConfig({ config: flags.config }, ['dest-bucket']);
      const { athenaDdl } = await import('../commands/athena-ddl.js');
      process.stdout.write(athenaDdl(config, flags));
    });
  return program;
}

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // `sitewise-repartition --help | head`: a reader that stops early is not an error
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(process.exitCode ?? 0);
  });
  // Stopping at any point is safe: local files are complete, or checked again by the next run.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\n${signal}: stopped; run the same command again to resume\n`);
      process.exit(130);
    });
  }
  const program = buildProgram();
  // With --log-format json even a fatal error is one JSON line, so log shippers see it.
  const json = process.argv.some((a, i) => a === '--log-format=json' || (a === '--log-format' && process.argv[i + 1] === 'json'));
  const fail = (kind: 'config' | 'fatal' | 'internal', message: string) =>
    process.stderr.write(json ? `${JSON.stringify({ time: new Date().toISOString(), type: 'error', kind, error: message })}\n` : `${kind === 'config' ? 'config error' : kind === 'fatal' ? 'error' : 'internal error (a bug, please report it)'}: ${message}\n`);
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
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
}

// not a top-level await: the bundle is CommonJS (it loads faster than an ES module graph)
void main();
