/**
 * The day commands: for each, its name, what it needs from the config, its
 * own options, how its dependencies are built, and the function it runs.
 * The AWS SDK takes a good part of a second to load, so clients are imported
 * only by the commands that use them (merge never does).
 */
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { Option, type Command } from 'commander';
import { ConfigError } from '../config/config-error.js';
import { SINGLE_HOST, type DestinationGuard } from '../destination/guard.js';
import { daysDescending } from '../partition/day.js';
import { inShard, parseShard, SHARD_INDEX_ENV, type Shard } from '../partition/shards.js';
import type { DownloadDeps, MergeDeps, RunContext, SeriesLookup, UploadDeps } from '../commands/deps.js';
import { dayRange, type Config, type ConfigFlags, type Requirement } from '../config/load-config.js';
import { defaultOf } from '../config/schema.js';
import { createOutputFormat, FORMAT_NAMES } from '../output/formats.js';
import type { OutputFormat } from '../output/output-format.js';
import type { CommandSummary, Stage } from '../shared/events.js';
import { isUnreachable, missingProfile } from '../shared/aws-errors.js';
import { errorMessage, FatalError } from '../shared/errors.js';
import { createLimiter } from '../shared/limit.js';
import type { RetryPolicy } from '../shared/retry-policy.js';
import type { ObjectStore } from '../store/object-store.js';
import type { SeriesSummary } from '../sitewise/list-time-series.js';

/** Connections per S3 client beyond the transfers in flight, for the ledger, index and listing requests beside them. */
const SPARE_SOCKETS = 4;

export interface CliFlags extends ConfigFlags {
  quiet?: boolean;
  verbose?: boolean;
  logFormat: 'text' | 'json';
  dryRun?: boolean;
  crcCheck?: boolean;
  skipBadObjects?: boolean;
  shard?: string;
  shardCount?: string;
  output?: string;
  allDays?: boolean;
  compact?: boolean;
}

/** What the entry point gives a command to build its dependencies from. */
export interface Runtime extends RunContext {
  config: Config;
  flags: CliFlags;
  env: NodeJS.ProcessEnv;
  /** The run's one retry policy, for S3 and SiteWise alike. */
  retry: RetryPolicy;
  /** Names this run in leases and probe keys. */
  runId: string;
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
  /** The command prints its result on stdout: its progress lines go to stderr. */
  resultOnStdout?: (flags: CliFlags) => boolean;
  execute: (rt: Runtime) => Promise<CommandSummary>;
}

interface CommandSpec<D> extends Omit<CommandEntry, 'execute'> {
  deps: (rt: Runtime) => Promise<D>;
  run: (deps: D, flags: CliFlags, rt: Runtime) => Promise<CommandSummary>;
}

function defineCommand<D>(spec: CommandSpec<D>): CommandEntry {
  const { deps, run, ...entry } = spec;
  return { ...entry, execute: async (rt) => run(await deps(rt), rt.flags, rt) };
}

const CRC_CHECK_HELP =
  'also decompress every snappy block and check its CRC (about 4x slower; without it each block is copied as stored with its framing and sync marker checked, each object having been checked on download by its checksum or MD5, or, where S3 gave neither, its blocks checked here)';

/** One S3 client for the run and a store per bucket on it. */
async function s3Stores(rt: Runtime): Promise<(bucket: string) => ObjectStore> {
  const [{ createS3Client }, { S3Bucket }] = await Promise.all([import('../s3/create-s3-client.js'), import('../s3/s3-bucket.js')]);
  const { config, retry } = rt;
  const noProfile = missingProfile(config.profile, rt.env);
  if (noProfile) throw noProfile;
  const sockets = config.concurrency + SPARE_SOCKETS;
  const client = createS3Client({
    region: config.region,
    endpoint: config.s3Endpoint,
    forcePathStyle: config.s3ForcePathStyle,
    profile: config.profile,
    maxSockets: sockets,
    timeouts: config.timeouts,
  });
  rt.onClose(() => client.destroy());
  return (bucket) => {
    const sse = { ServerSideEncryption: config.sse, SSEKMSKeyId: config.sseKmsKeyId };
    const store = new S3Bucket(client, bucket, { retry, downloadSockets: sockets, sse, timeouts: config.timeouts });
    rt.onClose(() => store.destroy());
    return store;
  };
}

/** The destination alone, for athena-ddl (no lock, no probe, the SDK's own retries). */
export async function destinationStore(config: Config): Promise<{ store: ObjectStore; close: () => void }> {
  const noProfile = missingProfile(config.profile);
  if (noProfile) throw noProfile;
  const [{ createS3Client }, { S3Bucket }] = await Promise.all([import('../s3/create-s3-client.js'), import('../s3/s3-bucket.js')]);
  const client = createS3Client({ region: config.region, endpoint: config.s3Endpoint, forcePathStyle: config.s3ForcePathStyle, profile: config.profile, maxSockets: 2, timeouts: config.timeouts });
  const store = new S3Bucket(client, config.destBucket, { timeouts: config.timeouts });
  return {
    store,
    close: () => {
      void store.destroy();
      client.destroy();
    },
  };
}

/**
 * The buckets checked once, before any work: a wrong name, region, role or
 * endpoint is one line naming the config key and the value, not a failure
 * found day by day (or only at upload).
 */
async function checkBuckets(rt: Runtime, buckets: { store: ObjectStore; key: string }[]): Promise<void> {
  const { config } = rt;
  await Promise.all(
    buckets.map(async ({ store, key }) => {
      try {
        await store.checkAccess(rt.signal);
      } catch (err) {
        if (err instanceof FatalError) throw new FatalError(`${key} '${store.name}': ${err.message}`, { cause: err });
        if (isUnreachable(err)) {
          const endpoint = config.s3Endpoint ?? `the AWS S3 endpoint of ${config.region ?? 'the default region'}`;
          throw new FatalError(`cannot reach ${endpoint} (from ${config.endpointSources.s3}) for ${key} '${store.name}': ${errorMessage(err)}; check the URL and the network`, { cause: err });
        }
        throw err;
      }
    }),
  );
}

/** ListTimeSeries once per run, on first use; every series (no call) for timeseries_type ALL. */
async function seriesLookup(rt: Runtime): Promise<SeriesLookup> {
  const { config, retry } = rt;
  const type = config.timeseriesType;
  if (type === 'ALL') return { ids: () => Promise.resolve(undefined), asked: () => undefined };
  const { createSiteWiseClient, listTimeSeries, seriesIds } = await import('../sitewise/list-time-series.js');
  const client = createSiteWiseClient({ region: config.region, endpoint: config.sitewiseEndpoint, profile: config.profile, timeouts: config.timeouts });
  rt.onClose(() => client.destroy());
  let known: Promise<SeriesSummary[]> | undefined;
  const endpoint = `${config.sitewiseEndpoint ?? 'the AWS IoT SiteWise endpoint'} (from ${config.endpointSources.sitewise})`;
  const named = (err: unknown): never => {
    if (err instanceof FatalError || rt.signal.aborted) throw err;
    throw new FatalError(`ListTimeSeries at ${endpoint}: ${errorMessage(err)}${isUnreachable(err) ? '; check the URL and the network' : ''}`, { cause: err });
  };
  return {
    ids: async () => seriesIds(await (known ??= listTimeSeries(client, type, retry, rt.signal).catch(named))),
    asked: () => known,
  };
}

function outputFormat(rt: Runtime, options: { helperThread?: boolean } = {}): OutputFormat {
  const format = createOutputFormat(rt.config.outputFormat, { checkCrc: rt.flags.crcCheck, compression: rt.config.outputCompression, dedupe: rt.config.outputDedupe, ...options });
  rt.onClose(() => format.close());
  return format;
}

/**
 * The destination's guard, probed once per run (see destination/guard.ts):
 * leases and conditional commits, or, where the store ignores conditions,
 * the single-host guarantees of the local lock, with one warning.
 */
async function guardOf(rt: Runtime, dest: ObjectStore, stage: Stage): Promise<DestinationGuard> {
  const { config } = rt;
  const [{ destinationGuard }, { leaseSeconds }] = await Promise.all([import('../destination/guard.js'), import('../destination/day-lease.js')]);
  let seconds: number;
  try {
    seconds = leaseSeconds(rt.env);
  } catch (err) {
    throw new ConfigError([errorMessage(err)]);
  }
  return destinationGuard({
    dest,
    layout: config,
    mode: config.conditionalWrites,
    holder: { host: hostname(), pid: process.pid, runId: rt.runId, command: stage, workDir: config.workDir },
    leaseSeconds: seconds,
    signal: rt.signal,
    log: (level, message, day) => rt.emit({ type: 'log', stage, day, level, message }),
  });
}

/** --shard or --shard-count (index from the orchestrator's environment); a bad value is a usage error. */
function shardOf(rt: Runtime): Shard | undefined {
  const { shard, problems } = parseShard(rt.flags, rt.env);
  if (problems.length > 0) throw new ConfigError(problems);
  return shard;
}

const SHARD_HELP = 'only the days dealt to shard INDEX of COUNT (by day number modulo COUNT: every day goes to exactly one shard), e.g. 0/4';
const SHARD_COUNT_HELP = `--shard with the index from ${SHARD_INDEX_ENV.join(' (Kubernetes Indexed Job) or ')} (AWS Batch array job)`;
const withShardOptions = (cmd: Command) => cmd.option('--shard <index/count>', SHARD_HELP).option('--shard-count <count>', SHARD_COUNT_HELP);

async function downloadDeps(rt: Runtime, stage: Stage = 'download'): Promise<DownloadDeps> {
  const shard = shardOf(rt);
  const store = await s3Stores(rt);
  const { config, emit, signal } = rt;
  const range = dayRange(config);
  const cold = store(config.coldBucket);
  const dest = store(config.destBucket);
  const transfers = createLimiter(config.concurrency);
  // the first days' listings and the first day's ledger read go out now, their round trips beside the checks' (plan lists by itself);
  // only reads: should a check fail, its message is the one reported, and they are stopped
  const early = new AbortController();
  const aheadSignal = AbortSignal.any([signal, early.signal]);
  setMaxListeners(0, aheadSignal);
  const ahead = stage === 'plan' ? undefined : (await import('../commands/download.js')).daysAhead({ config, cold, dest, transfers, signal: aheadSignal }, daysDescending(range.from, range.to).filter((d) => inShard(d, shard)));
  const guard = checkedGuard(
    rt,
    [
      { store: cold, key: 's3_buckets.cold_tier_bucket_name' },
      { store: dest, key: 's3_buckets.repartitioned_bucket_name' },
    ],
    rt.flags.dryRun || stage === 'plan' ? undefined : { dest, stage },
  );
  try {
    const [checked, series] = await Promise.all([guard, seriesLookup(rt)]);
    return { config, emit, signal, range, cold, dest, series, transfers, guard: checked, shard, ahead };
  } catch (err) {
    early.abort();
    throw err;
  }
}

/**
 * The buckets checked and the destination's guard probed at once (the probe's
 * round trips are most of a command's start-up against a distant region).
 * When a check fails, its message wins, once the probe has ended (and deleted
 * its scratch object). No `probe`: the single-host guard (dry runs, plans).
 */
async function checkedGuard(rt: Runtime, buckets: { store: ObjectStore; key: string }[], probe?: { dest: ObjectStore; stage: Stage }): Promise<DestinationGuard> {
  const guard = probe ? guardOf(rt, probe.dest, probe.stage) : Promise.resolve(SINGLE_HOST);
  try {
    await checkBuckets(rt, buckets);
  } catch (err) {
    await guard.catch(() => undefined);
    throw err;
  }
  return guard;
}

async function uploadDeps(rt: Runtime, stage: Stage = 'upload'): Promise<UploadDeps> {
  const shard = shardOf(rt);
  const store = await s3Stores(rt);
  const { config, emit, signal } = rt;
  const dest = store(config.destBucket);
  const guard = await checkedGuard(rt, [{ store: dest, key: 's3_buckets.repartitioned_bucket_name' }], rt.flags.dryRun ? undefined : { dest, stage });
  return { config, emit, signal, dest, transfers: createLimiter(config.concurrency), guard, shard };
}

const SKIP_BAD_HELP =
  'merge the rest of a day whose objects are partly corrupt or unreadable, instead of failing it; each one left out is named, recorded in the ledger with why, and not tried again until its ETag changes';
const outputFormatOption = () => new Option('--output-format <format>', `${FORMAT_NAMES.join(' or ')} (overrides output.format, default ${defaultOf('output.format')})`).choices(FORMAT_NAMES);
const withMergeOptions = (cmd: Command) =>
  cmd.option('--crc-check', CRC_CHECK_HELP).option('--skip-bad-objects', SKIP_BAD_HELP).addOption(outputFormatOption());

/** Writes the plan to stdout, a local file, or an S3 object (s3://bucket/key, where a Distributed Map's ItemReader reads it). */
async function writePlan(rt: Runtime, json: string): Promise<void> {
  const target = rt.flags.output;
  if (target === undefined || target === '-') {
    process.stdout.write(json);
    return;
  }
  const s3 = /^s3:\/\/([^/]+)\/(.+)$/.exec(target);
  if (s3) {
    const store = (await s3Stores(rt))(s3[1]!);
    await store.put(s3[2]!, json, { contentType: 'application/json' }, rt.signal);
  } else {
    const { writeFileAtomic } = await import('../workdir/hand-off.js');
    await writeFileAtomic(target, json);
  }
  rt.emit({ type: 'log', stage: 'plan', level: 'info', message: `plan written to ${target}` });
}

export const DAY_COMMANDS: CommandEntry[] = [
  defineCommand({
    name: 'download',
    description: 'list each day of the cold tier, select objects not merged yet, download them to <work>/raw/<day>/',
    example: 'sitewise-repartition download --from 2023-01-01 --to 2023-01-07 --dry-run',
    needs: ['cold-bucket', 'dest-bucket', 'dates'],
    options: (cmd) => withShardOptions(cmd).option('--dry-run', 'print what would be selected for each day and why the rest is skipped; write nothing'),
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
    options: (cmd) => withMergeOptions(cmd).addOption(new Option('--no-crc-check').hideHelp()),
    dryRun: () => false,
    deps: (rt): Promise<MergeDeps> => Promise.resolve({ config: rt.config, emit: rt.emit, signal: rt.signal, format: outputFormat(rt), skipBadObjects: rt.flags.skipBadObjects }),
    run: async (deps) => (await import('../commands/merge.js')).merge(deps),
  }),
  defineCommand({
    name: 'upload',
    description: 'upload each merged day, verify it, commit its ledger and index, then remove its local folders',
    example: 'sitewise-repartition upload --config /etc/sitewise/config.yml',
    needs: ['dest-bucket'],
    options: (cmd) => withShardOptions(cmd).option('--dry-run', 'print what would be uploaded and committed for each merged day; write nothing, locally or in S3'),
    dryRun: (flags) => flags.dryRun === true,
    deps: async (rt) => ({ ...(await uploadDeps(rt, 'upload')), ...(rt.config.outputDedupe === 'latest' ? { compactWith: outputFormat(rt) } : {}) }),
    run: async (deps, flags) => (await import('../commands/upload.js')).upload(deps, { dryRun: flags.dryRun }),
  }),
  defineCommand({
    name: 'plan',
    description: 'list what each day of the range would download, as a JSON array with one item per day, for a Step Functions Distributed Map (each item runs run --from DAY --to DAY); writes nothing else',
    example: 'sitewise-repartition plan --from 2023-01-01 --to 2023-12-31 --output s3://my-bucket/plans/2023.json',
    needs: ['cold-bucket', 'dest-bucket', 'dates'],
    options: (cmd) =>
      withShardOptions(cmd)
        .option('--output <file>', 'where to write the plan: a file, s3://bucket/key, or - for stdout (the default)')
        .option('--all-days', 'also list days with nothing new (left out by default)'),
    dryRun: () => true,
    resultOnStdout: (flags) => flags.output === undefined || flags.output === '-',
    deps: (rt) => downloadDeps(rt, 'plan'),
    run: async (deps, flags, rt) => {
      const { items, summary } = await (await import('../commands/plan.js')).plan(deps, { allDays: flags.allDays });
      await writePlan(rt, `${JSON.stringify(items, null, 1)}\n`);
      return summary;
    },
  }),
  defineCommand({
    name: 'compact',
    description: 'for each day with more than one data file (late exports add one per run), write one file with all its records, commit it with one ledger write that replaces the old files, then delete them',
    example: 'sitewise-repartition compact --from 2023-01-01 --to 2023-01-31',
    needs: ['dest-bucket', 'dates'],
    options: (cmd) => withShardOptions(cmd).addOption(outputFormatOption()),
    dryRun: () => false,
    deps: async (rt) => ({ ...(await uploadDeps(rt, 'compact')), range: dayRange(rt.config), format: outputFormat(rt) }),
    run: async (deps) => (await import('../commands/compact.js')).compact(deps),
  }),
  defineCommand({
    name: 'run',
    description: 'download, merge and upload day by day, 4 days at once (local disk holds only those days: their downloaded objects and merged files)',
    example: 'sitewise-repartition run --from today-2 --to today --quiet',
    needs: ['cold-bucket', 'dest-bucket', 'dates'],
    options: (cmd) =>
      withShardOptions(withMergeOptions(cmd))
        .option('--compact', 'compact each day after its upload (see compact): one data file a day')
        .option('--dry-run', "print what each day would download (as download --dry-run does), then merge and upload; write nothing, locally or in S3"),
    dryRun: (flags) => flags.dryRun === true,
    deps: async (rt) => ({ ...(await downloadDeps(rt, 'run')), format: outputFormat(rt, { helperThread: false }), skipBadObjects: rt.flags.skipBadObjects, compact: rt.flags.compact }),
    run: async (deps, flags) => {
      if (!flags.dryRun) return (await import('../commands/run.js')).run(deps);
      // nothing downloaded, so nothing to merge or upload: what download would fetch is the whole answer
      const summary = await (await import('../commands/download.js')).download(deps, { dryRun: true });
      deps.emit({ type: 'log', stage: 'run', level: 'info', message: 'run --dry-run: each day with objects to download would then be merged and uploaded; nothing was written' });
      return summary;
    },
  }),
];
