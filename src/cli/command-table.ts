/**
 * The day commands: for each, its name, what it needs from the config, its
 * own options, how its dependencies are built, and the function it runs.
 * The AWS SDK takes a good part of a second to load, so clients are imported
 * only by the commands that use them (merge never does).
 */
import { Option, type Command } from 'commander';
import type { DownloadDeps, MergeDeps, RunContext, SeriesLookup, UploadDeps } from '../commands/deps.js';
import { ConfigError } from '../config/config-error.js';
import { dayRange, type Config, type ConfigFlags, type Requirement } from '../config/load-config.js';
import { createOutputFormat, DEFAULT_FORMAT } from '../output/formats.js';
import type { OutputFormat } from '../output/output-format.js';
import type { CommandSummary, Stage } from '../shared/events.js';
import { createLimiter } from '../shared/limit.js';
import { retryPolicyFromEnv, type RetryPolicy } from '../shared/retry-policy.js';
import type { ObjectStore } from '../store/object-store.js';

/** Connections per S3 client beyond the transfers in flight, for the ledger, index and listing requests beside them. */
const SPARE_SOCKETS = 4;

export interface CliFlags extends ConfigFlags {
  quiet?: boolean;
  verbose?: boolean;
  logFormat: 'text' | 'json';
  dryRun?: boolean;
  crcCheck?: boolean;
}

/** What the entry point gives a command to build its dependencies from. */
export interface Runtime extends RunContext {
  config: Config;
  flags: CliFlags;
  env: NodeJS.ProcessEnv;
  /** Registers something to close when the command ends, however it ends. */
  onClose: (close: () => unknown) => void;
}

export interface CommandEntry {
  name: Stage;
  alias?: string;
  description: string;
  example: string;
  needs: Requirement[];
  /** Adds the command's own options. */
  options: (cmd: Command) => Command;
  /** A dry run writes nothing, locally or remotely: it takes no work-dir lock. */
  dryRun: (flags: CliFlags) => boolean;
  execute: (rt: Runtime) => Promise<CommandSummary>;
}

interface CommandSpec<D> extends Omit<CommandEntry, 'execute'> {
  deps: (rt: Runtime) => Promise<D>;
  run: (deps: D, flags: CliFlags) => Promise<CommandSummary>;
}

function defineCommand<D>(spec: CommandSpec<D>): CommandEntry {
  const { deps, run, ...entry } = spec;
  return { ...entry, execute: async (rt) => run(await deps(rt), rt.flags) };
}

const CRC_CHECK_HELP =
  'also decompress every snappy block and check its CRC (about 4x slower; without it each block is copied as stored, its framing and sync marker checked, and each object was MD5-checked on download)';

function retryPolicy(rt: Runtime): RetryPolicy {
  try {
    return retryPolicyFromEnv(rt.env);
  } catch (err) {
    if (err instanceof RangeError) throw new ConfigError([err.message]);
    throw err;
  }
}

/** One S3 client for the run and a store per bucket on it. */
async function s3Stores(rt: Runtime, retry: RetryPolicy): Promise<(bucket: string) => ObjectStore> {
  const [{ createS3Client }, { S3Bucket }] = await Promise.all([import('../s3/create-s3-client.js'), import('../s3/s3-bucket.js')]);
  const { config } = rt;
  const sockets = config.concurrency + SPARE_SOCKETS;
  const client = createS3Client({ region: config.region, endpoint: config.s3Endpoint, forcePathStyle: config.s3ForcePathStyle, profile: config.profile, maxSockets: sockets });
  rt.onClose(() => client.destroy());
  return (bucket) => {
    const store = new S3Bucket(client, bucket, retry, sockets);
    rt.onClose(() => store.destroy());
    return store;
  };
}

/** ListTimeSeries once per run, on first use; every series (no call) for timeseries_type ALL. */
async function seriesLookup(rt: Runtime, retry: RetryPolicy): Promise<SeriesLookup> {
  const { config } = rt;
  const type = config.timeseriesType;
  if (type === 'ALL') return () => Promise.resolve(undefined);
  const { createSiteWiseClient, listTimeSeriesIds } = await import('../sitewise/list-time-series.js');
  const client = createSiteWiseClient({ region: config.region, endpoint: config.sitewiseEndpoint, profile: config.profile });
  rt.onClose(() => client.destroy());
  let known: Promise<Set<string>> | undefined;
  return () => (known ??= listTimeSeriesIds(client, type, retry, rt.signal));
}

function outputFormat(rt: Runtime): OutputFormat {
  const format = createOutputFormat(DEFAULT_FORMAT, { checkCrc: rt.flags.crcCheck });
  rt.onClose(() => format.close());
  return format;
}

async function downloadDeps(rt: Runtime): Promise<DownloadDeps> {
  const retry = retryPolicy(rt);
  const store = await s3Stores(rt, retry);
  const { config, emit, signal } = rt;
  return {
    config,
    emit,
    signal,
    range: dayRange(config),
    cold: store(config.coldBucket),
    dest: store(config.destBucket),
    series: await seriesLookup(rt, retry),
    transfers: createLimiter(config.concurrency),
  };
}

async function uploadDeps(rt: Runtime): Promise<UploadDeps> {
  const store = await s3Stores(rt, retryPolicy(rt));
  const { config, emit, signal } = rt;
  return { config, emit, signal, dest: store(config.destBucket), transfers: createLimiter(config.concurrency) };
}

const withCrcCheck = (cmd: Command) => cmd.option('--crc-check', CRC_CHECK_HELP);

export const DAY_COMMANDS: CommandEntry[] = [
  defineCommand({
    name: 'download',
    description: 'list each day of the cold tier, select objects not merged yet, download them to <work>/raw/<day>/',
    example: 'sitewise-repartition download --from 2023-01-01 --to 2023-01-07 --dry-run',
    needs: ['cold-bucket', 'dest-bucket', 'dates'],
    options: (cmd) => cmd.option('--dry-run', 'print what would be selected for each day and why the rest is skipped; write nothing'),
    dryRun: (flags) => flags.dryRun === true,
    deps: downloadDeps,
    run: async (deps, flags) => (await import('../commands/download.js')).download(deps, { dryRun: flags.dryRun }),
  }),
  defineCommand({
    name: 'merge',
    alias: 'repartition',
    description: 'merge each downloaded day into one snappy Avro file plus timeseries.txt in <work>/merged/<day>/',
    example: 'sitewise-repartition merge --work-dir /data/sitewise',
    needs: [],
    // --no-crc-check: the default since 0.2 (blocks are no longer decompressed unless asked); kept so old cron lines still run
    options: (cmd) => withCrcCheck(cmd).addOption(new Option('--no-crc-check').hideHelp()),
    dryRun: () => false,
    deps: (rt): Promise<MergeDeps> => Promise.resolve({ config: rt.config, emit: rt.emit, signal: rt.signal, format: outputFormat(rt) }),
    run: async (deps) => (await import('../commands/merge.js')).merge(deps),
  }),
  defineCommand({
    name: 'upload',
    description: 'upload each merged day, verify it, commit its ledger and index, then remove its local folders',
    example: 'sitewise-repartition upload --config /etc/sitewise/config.yml',
    needs: ['dest-bucket'],
    options: (cmd) => cmd,
    dryRun: () => false,
    deps: uploadDeps,
    run: async (deps) => (await import('../commands/upload.js')).upload(deps),
  }),
  defineCommand({
    name: 'run',
    description: 'download, merge and upload day by day (local disk holds only the days in flight)',
    example: 'sitewise-repartition run --from today-2 --to today --quiet',
    needs: ['cold-bucket', 'dest-bucket', 'dates'],
    options: withCrcCheck,
    dryRun: () => false,
    deps: async (rt) => ({ ...(await downloadDeps(rt)), format: outputFormat(rt) }),
    run: async (deps) => (await import('../commands/run.js')).run(deps),
  }),
];
