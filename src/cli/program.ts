import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { ConfigError } from '../config/config-error.js';
import { loadConfig } from '../config/load-config.js';
import { isoDay } from '../partition/day.js';
import { retryPolicyFromEnv, type RetryPolicy } from '../shared/retry-policy.js';
import { defaultOf } from '../config/schema.js';
import { FORMAT_NAMES, formatInfo } from '../output/formats.js';
import { DAY_COMMANDS, destinationStore, type CliFlags, type CommandEntry } from './command-table.js';
import { errorMessage } from '../shared/errors.js';
import { governMemory, peakRssMb } from './peak-memory.js';
import { completionScript, SHELLS } from './completion.js';
import { createRenderer } from './render.js';
import { acquireWorkLock } from './work-lock.js';

export const EXIT_DAY_FAILED = 1;
export const EXIT_USAGE = 2;

/** The package's version, from the package.json nearest above this file (dist/bin/cli.cjs, or dist/src/cli/program.js under tsc). */
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

/** Options every day command takes, before or after its name (`sitewise-repartition --config x run` and `... run --config x`). */
function commonOptions(): Option[] {
  return [
    new Option('-c, --config <file>', 'config file (default: $SITEWISE_REPARTITION_CONFIG, else config.yml)'),
    new Option('--from <day>', 'first day: YYYY-MM-DD, today, yesterday or today-N (overrides date_range.date_start)'),
    new Option('--to <day>', 'last day, inclusive (overrides date_range.date_end)'),
    new Option('--profile <name>', 'AWS profile (overrides credentials.profile)'),
    new Option('--region <region>', 'AWS region (overrides aws.region)'),
    new Option('--endpoint-url <url>', 'S3 endpoint, as the AWS CLI names it (overrides aws.s3_endpoint)'),
    new Option('--work-dir <dir>', `local work folder (overrides local_dirs.work_dir, default ${defaultOf('local_dirs.work_dir')})`),
    new Option('--concurrency <n>', `parallel S3 transfers (default ${defaultOf('concurrency')})`),
    new Option('-q, --quiet', 'only errors and the final summary'),
    new Option('-v, --verbose', 'per-object detail'),
    new Option('--log-format <format>', 'text (default), or json: one JSON object per event').choices(['text', 'json']),
  ];
}

function withCommonOptions(cmd: Command, example: string): Command {
  for (const option of commonOptions()) cmd.addOption(option);
  return cmd.addHelpText('after', `\nExample:\n  ${example}\n`);
}

/** The command's flags with the global ones given before its name; those after it win. */
function mergedFlags(program: Command, flags: CliFlags): CliFlags {
  const global = program.opts<Partial<CliFlags>>();
  const given: Partial<CliFlags> = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  return { ...global, ...given, logFormat: given.logFormat ?? global.logFormat ?? 'text' };
}

/** A table or database name as Athena takes it; anything else is a usage error that states the rule. */
function athenaName(value: string): string {
  if (!/^[a-z_][a-z0-9_]*$/i.test(value)) throw new InvalidArgumentError(`'${value}' is not an Athena name: use letters, digits and '_', not starting with a digit (e.g. ${value.replace(/[^a-z0-9_]/gi, '_').replace(/^(\d)/, '_$1')})`);
  return value;
}

/** AWS_MAX_ATTEMPTS and AWS_RETRY_MODE; a bad value is a usage error naming the variable. */
function retryPolicy(env: NodeJS.ProcessEnv): RetryPolicy {
  try {
    return retryPolicyFromEnv(env);
  } catch (err) {
    if (err instanceof RangeError) throw new ConfigError([err.message]);
    throw err;
  }
}

/** Loads the config, builds the command's dependencies, runs it under the work-dir lock, reports, and closes what it opened. */
async function execute(entry: CommandEntry, flags: CliFlags, signal: AbortSignal, runId: string): Promise<void> {
  const env = process.env;
  const config = await loadConfig(flags, entry.needs, env);
  const emit = createRenderer({
    runId,
    dayOnEveryLine: entry.name === 'run',
    format: flags.logFormat,
    quiet: flags.quiet ?? false,
    verbose: flags.verbose ?? false,
    tty: Boolean(process.stderr.isTTY) && flags.logFormat === 'text',
    out: entry.resultOnStdout?.(flags) ? process.stderr : undefined,
  });
  const retry = retryPolicy(env);
  const closers: (() => unknown)[] = [];
  const started = Date.now();
  const stopGovernor = governMemory();
  try {
    const release = entry.dryRun(flags) ? async () => {} : await acquireWorkLock(config.workDir);
    try {
      const summary = await entry.execute({ config, flags, env, emit, signal, retry, runId, onClose: (close) => closers.push(close) });
      emit({
        type: 'command-end',
        stage: entry.name,
        ...(entry.needs.includes('dates') && config.from && config.to ? { from: isoDay(config.from), to: isoDay(config.to) } : {}),
        done: summary.done.length,
        skipped: summary.skipped.length,
        busy: summary.busy.length,
        failed: summary.failed.length,
        seconds: (Date.now() - started) / 1000,
        failedDays: summary.failed,
        peakRssMb: peakRssMb(),
        ...retry.stats,
      });
      if (summary.failed.length > 0) process.exitCode = EXIT_DAY_FAILED;
    } finally {
      emit.finish();
      await release();
    }
  } finally {
    stopGovernor();
    for (const close of closers.reverse()) await close();
  }
}

export function buildProgram(signal: AbortSignal, runId: string = randomUUID().slice(0, 8)): Command {
  const program = new Command('sitewise-repartition')
    .description('Re-partition AWS IoT SiteWise cold-tier Avro exports into one Avro file per day, exactly once.')
    .version(packageVersion())
    .exitOverride() // set before the commands are added, so they inherit it
    .showSuggestionAfterError(true)
    .showHelpAfterError('(add --help for usage)');
  for (const option of commonOptions()) program.addOption(option);
  program.addHelpText(
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
  for (const entry of DAY_COMMANDS) {
    const cmd = program.command(entry.name).description(entry.description);
    if (entry.alias) cmd.alias(entry.alias);
    entry.options(withCommonOptions(cmd, entry.example)).action((flags: CliFlags) => execute(entry, mergedFlags(program, flags), signal, runId));
  }
  program
    .command('athena-ddl')
    .description('print the Athena statements for the merged output (a table with partition projection, no crawler), the series catalog, SiteWise\'s asset_metadata and a view with names beside ids; run them one at a time')
    .option('-c, --config <file>', 'config file (default: $SITEWISE_REPARTITION_CONFIG, else config.yml)')
    .option('--table <name>', "table name (Athena's rule: letters, digits and '_')", athenaName, 'sitewise_repartitioned')
    .option('--database <name>', 'database name', athenaName, 'default')
    .addOption(new Option('--output-format <format>', `the format of the merged files (overrides output.format, default ${defaultOf('output.format')})`).choices(FORMAT_NAMES))
    .option('--raw-schema', 'columns of the documented raw schema, without reading the destination (no AWS access)')
    .addHelpText('after', '\nThe columns are read from the last data file in the destination (its Avro header or Parquet footer), so agg/ data and\nschemas SiteWise adds fields to come out right; with none yet, or --raw-schema, they are the documented raw schema.\n\nExample:\n  sitewise-repartition athena-ddl --table plant_data > create-table.sql\n')
    .action(async (flags: { config: string; table: string; database: string; outputFormat?: string; rawSchema?: boolean }) => {
      const global = program.opts<Partial<CliFlags>>();
      const config = await loadConfig({ ...global, config: flags.config ?? global.config, outputFormat: flags.outputFormat }, ['dest-bucket'], process.env);
      const { athenaCatalogDdl, athenaDdl, destinationSchema } = await import('../commands/athena-ddl.js');
      const format = formatInfo(config.outputFormat);
      const warn = (message: string) => process.stderr.write(`WARNING: ${message}\n`);
      let schema;
      if (!flags.rawSchema) {
        const { store, close } = await destinationStore(config);
        try {
          schema = await destinationSchema(store, config.dataPrefix, format);
          if (!schema) warn(`no ${format.name} data file under s3://${config.destBucket}/${config.dataPrefix} yet: the columns are the documented raw schema's`);
        } catch (err) {
          warn(`the schema of the destination's data could not be read (${errorMessage(err)}): the columns are the documented raw schema's (--raw-schema says so without trying)`);
        } finally {
          close();
        }
      }
      if (schema) process.stderr.write(`columns read from ${schema.from}\n`);
      process.stdout.write(`${athenaDdl(config, flags, format, schema)}\n${athenaCatalogDdl(config, flags)}`);
    });
  program
    .command('completion')
    .description('print a shell completion script for bash or zsh')
    .argument('<shell>', 'bash or zsh', (value: string) => {
      if (!(SHELLS as readonly string[]).includes(value)) throw new InvalidArgumentError(`'${value}' is not one of ${SHELLS.join(', ')}`);
      return value as (typeof SHELLS)[number];
    })
    .addHelpText('after', '\nExamples:\n  source <(sitewise-repartition completion bash)     # in ~/.bashrc\n  source <(sitewise-repartition completion zsh)      # in ~/.zshrc\n')
    .action((shell: (typeof SHELLS)[number]) => {
      process.stdout.write(completionScript(program, shell));
    });
  return program;
}
