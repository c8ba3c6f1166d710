import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { compareDays, isoDay, parseIsoDay, type Day, type DayRange } from '../partition/day.js';
import type { Timeouts } from '../shared/retry-policy.js';
import { ConfigError } from './config-error.js';
import { defaultOf, KEYS, type KeyPath } from './schema.js';

/** The sections of keys (s3_buckets, local_dirs, ...). */
const SECTIONS = new Set(KEYS.filter((k) => k.path.includes('.')).map((k) => k.path.split('.')[0]!));

export type TimeseriesType = 'ASSOCIATED' | 'DISASSOCIATED' | 'ALL';

export interface Config {
  configFile: string;
  profile?: string;
  timeseriesType: TimeseriesType;
  coldBucket: string;
  coldPrefix: string;
  destBucket: string;
  dataPrefix: string;
  indexPrefix: string;
  /** s3_buckets.repartitioned_bucket_catalog_prefix: where the series catalog goes. */
  catalogPrefix: string;
  workDir: string;
  rawDir: string;
  mergedDir: string;
  from?: Day;
  to?: Day;
  region?: string;
  s3Endpoint?: string;
  s3ForcePathStyle: boolean;
  sitewiseEndpoint?: string;
  /** Where each endpoint came from (a config key, an env var, or the AWS default), for messages. */
  endpointSources: { s3: string; sitewise: string };
  sse?: ServerSideEncryption;
  sseKmsKeyId?: string;
  timeouts: Timeouts;
  /** Whether to probe for, require, or never use conditional writes in the destination (leases, conditional commits). */
  conditionalWrites: ConditionalWrites;
  /** What merge writes (output.format, --output-format). */
  outputFormat: OutputFormatName;
  /** Parquet's page compression. */
  outputCompression: 'snappy' | 'zstd';
  /** output.dedupe: which of a key's records are kept. */
  outputDedupe: Dedupe;
  concurrency: number;
}

export type OutputFormatName = 'avro' | 'parquet';
/** output.dedupe: none keeps every record; latest keeps, for each (seriesId, timeInSeconds, offsetInNanos), the largest recordVersion. */
export type Dedupe = 'none' | 'latest';
const DEDUPE_MODES: readonly Dedupe[] = ['none', 'latest'];
const OUTPUT_FORMATS: readonly string[] = ['avro', 'parquet'];

export type ConditionalWrites = 'auto' | 'required' | 'off';
const CONDITIONAL_WRITES: readonly ConditionalWrites[] = ['auto', 'required', 'off'];

export type ServerSideEncryption = 'AES256' | 'aws:kms' | 'aws:kms:dsse';
const SSE_VALUES: readonly string[] = ['AES256', 'aws:kms', 'aws:kms:dsse'];

/** Command-line flags that override the file. */
export interface ConfigFlags {
  config?: string;
  from?: string;
  to?: string;
  profile?: string;
  /** --region (overrides aws.region). */
  region?: string;
  /** --endpoint-url: the S3 endpoint (overrides aws.s3_endpoint), as the AWS CLI names it. */
  endpointUrl?: string;
  workDir?: string;
  concurrency?: string;
  outputFormat?: string;
}

/** What a command needs beyond the defaults. */
export type Requirement = 'cold-bucket' | 'dest-bucket' | 'dates';

export async function loadConfig(flags: ConfigFlags, needs: Requirement[], env: NodeJS.ProcessEnv, today = new Date()): Promise<Config> {
  // --config, else SITEWISE_REPARTITION_CONFIG, else config.yml in the current folder
  const file = path.resolve(flags.config ?? (env.SITEWISE_REPARTITION_CONFIG || undefined) ?? 'config.yml');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const named = flags.config !== undefined ? '' : env.SITEWISE_REPARTITION_CONFIG ? ' (from SITEWISE_REPARTITION_CONFIG)' : '';
    const why = code === 'ENOENT' ? `no such file${named} (pass --config <file> or set SITEWISE_REPARTITION_CONFIG; config.yml in the project is a documented sample)` : `cannot read it (${code ?? String(err)})`;
    throw new ConfigError([`config file ${file}: ${why}`]);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` line ${err.linePos[0].line}` : '';
    throw new ConfigError([`config file ${file}${where}: not valid YAML: ${(err as Error).message.split('\n')[0]}`]);
  }
  return resolveConfig(file, doc ?? {}, flags, needs, env, today);
}

export function resolveConfig(file: string, doc: unknown, flags: ConfigFlags, needs: Requirement[], env: NodeJS.ProcessEnv, today: Date): Config {
  const problems: string[] = [];
  const values = collectValues(doc, problems);
  const str = (key: KeyPath): string | undefined => {
    const v = values.get(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string' || typeof v === 'number') return String(v);
    problems.push(`${key}: expected a string, got ${JSON.stringify(v)}`);
    return undefined;
  };
  const def = defaultOf;

  const prefix = (key: KeyPath): string => {
    const v = str(key) ?? def(key);
    if (v.startsWith('/')) problems.push(`${key}: '${v}' starts with '/'; S3 keys have no leading slash, write '${v.replace(/^\/+/, '')}'`);
    return v === '' || v.endsWith('/') ? v : `${v}/`;
  };
  const bucket = (key: KeyPath, needed: boolean): string => {
    const v = str(key) ?? '';
    if (needed && v === '') problems.push(`${key}: missing; set the bucket name`);
    else if (v !== '' && !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(v)) problems.push(`${key}: '${v}' is not a valid S3 bucket name (3-63 lowercase letters, digits, '.', '-')`);
    return v;
  };
  const dirName = (key: KeyPath): string => {
    const v = str(key) ?? def(key);
    if (v === '' || v.includes('/') || v === '.' || v === '..') problems.push(`${key}: '${v}' must be a plain folder name`);
    return v;
  };
  const day = (key: KeyPath, flag: string | undefined, flagName: string): Day | undefined => {
    const v = flag ?? str(key);
    const source = flag !== undefined ? flagName : key;
    if (v === undefined) {
      if (needs.includes('dates')) problems.push(`${source}: missing; set a day as YYYY-MM-DD`);
      return undefined;
    }
    const parsed = parseDayExpression(v, today);
    if (!parsed) problems.push(`${source}: '${v}' is not a day; expected YYYY-MM-DD (e.g. 2023-01-31), today, yesterday or today-N`);
    return parsed;
  };

  const type = (str('timeseries_type') ?? def('timeseries_type')).toUpperCase();
  if (!['ASSOCIATED', 'DISASSOCIATED', 'ALL'].includes(type)) {
    problems.push(`timeseries_type: '${type}' is not one of ASSOCIATED, DISASSOCIATED, ALL`);
  }
  const workDir = path.resolve(flags.workDir ?? str('local_dirs.work_dir') ?? def('local_dirs.work_dir'));
  const concurrencyText = flags.concurrency ?? str('concurrency') ?? def('concurrency');
  const concurrency = Number(concurrencyText);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) {
    problems.push(`${flags.concurrency !== undefined ? '--concurrency' : 'concurrency'}: '${concurrencyText}' must be a whole number from 1 to 256`);
  }
  const forcePathStyle = values.get('aws.s3_force_path_style') ?? false;
  if (typeof forcePathStyle !== 'boolean') problems.push(`aws.s3_force_path_style: expected true or false, got ${JSON.stringify(forcePathStyle)}`);
  const endpointFlag = (key: KeyPath) => (key === 'aws.s3_endpoint' ? flags.endpointUrl : undefined);
  const endpointSource = (key: KeyPath, envName: string): string => (endpointFlag(key) !== undefined ? '--endpoint-url' : str(key) !== undefined ? key : env[envName] ? envName : 'the AWS default');
  const endpoint = (key: KeyPath, envName: string): string | undefined => {
    const v = endpointFlag(key) ?? str(key) ?? env[envName];
    if (v !== undefined && !/^https?:\/\/[^/]+/.test(v)) problems.push(`${endpointSource(key, envName)}: '${v}' is not an http(s) URL`);
    return v || undefined;
  };

  const seconds = (key: KeyPath): number => {
    const text = str(key) ?? def(key);
    const value = Number(text);
    if (!(value > 0 && value <= 3600)) problems.push(`${key}: '${text}' must be a number of seconds from more than 0 to 3600`);
    return Math.round(value * 1000);
  };
  const timeouts = { firstByteMs: seconds('aws.first_byte_timeout'), idleMs: seconds('aws.idle_timeout') };
  const sse = str('aws.sse');
  if (sse !== undefined && !SSE_VALUES.includes(sse)) problems.push(`aws.sse: '${sse}' is not one of ${SSE_VALUES.join(', ')}`);
  const sseKmsKeyId = str('aws.sse_kms_key_id');
  if (sseKmsKeyId !== undefined && !sse?.startsWith('aws:kms')) problems.push(`aws.sse_kms_key_id: set aws.sse to aws:kms (or aws:kms:dsse) to use a KMS key`);

  const conditionalWrites = str('aws.conditional_writes') ?? def('aws.conditional_writes');
  if (!CONDITIONAL_WRITES.includes(conditionalWrites as ConditionalWrites)) problems.push(`aws.conditional_writes: '${conditionalWrites}' is not one of ${CONDITIONAL_WRITES.join(', ')}`);

  const outputFormat = flags.outputFormat ?? str('output.format') ?? def('output.format');
  if (!OUTPUT_FORMATS.includes(outputFormat)) problems.push(`${flags.outputFormat !== undefined ? '--output-format' : 'output.format'}: '${outputFormat}' is not one of ${OUTPUT_FORMATS.join(', ')}`);
  const outputCompression = str('output.compression') ?? def('output.compression');
  if (!['snappy', 'zstd'].includes(outputCompression)) problems.push(`output.compression: '${outputCompression}' is not one of snappy, zstd`);

  const outputDedupe = str('output.dedupe') ?? def('output.dedupe');
  if (!(DEDUPE_MODES as readonly string[]).includes(outputDedupe)) problems.push(`output.dedupe: '${outputDedupe}' is not one of ${DEDUPE_MODES.join(', ')}`);

  const profile = flags.profile ?? str('credentials.profile');
  const config: Config = {
    configFile: file,
    // "default" is what the SDK's credential chain uses anyway; naming it would
    // make the SDK skip environment credentials, which cron jobs often use.
    profile: profile && profile !== 'default' ? profile : undefined,
    timeseriesType: type as TimeseriesType,
    coldBucket: bucket('s3_buckets.cold_tier_bucket_name', needs.includes('cold-bucket')),
    coldPrefix: prefix('s3_buckets.cold_tier_bucket_data_prefix'),
    destBucket: bucket('s3_buckets.repartitioned_bucket_name', needs.includes('dest-bucket')),
    dataPrefix: prefix('s3_buckets.repartitioned_bucket_data_prefix'),
    indexPrefix: prefix('s3_buckets.repartitioned_bucket_index_prefix'),
    catalogPrefix: prefix('s3_buckets.repartitioned_bucket_catalog_prefix'),
    workDir,
    rawDir: path.join(workDir, dirName('local_dirs.local_tmp_raw_dir_name')),
    mergedDir: path.join(workDir, dirName('local_dirs.local_tmp_merged_dir_name')),
    from: day('date_range.date_start', flags.from, '--from'),
    to: day('date_range.date_end', flags.to, '--to'),
    region: flags.region ?? str('aws.region') ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION,
    s3Endpoint: endpoint('aws.s3_endpoint', 'AWS_ENDPOINT_URL_S3'),
    s3ForcePathStyle: forcePathStyle === true,
    sitewiseEndpoint: endpoint('aws.sitewise_endpoint', 'AWS_ENDPOINT_URL_IOTSITEWISE'),
    endpointSources: { s3: endpointSource('aws.s3_endpoint', 'AWS_ENDPOINT_URL_S3'), sitewise: endpointSource('aws.sitewise_endpoint', 'AWS_ENDPOINT_URL_IOTSITEWISE') },
    sse: sse as ServerSideEncryption | undefined,
    sseKmsKeyId,
    timeouts,
    conditionalWrites: conditionalWrites as ConditionalWrites,
    outputFormat: outputFormat as OutputFormatName,
    outputCompression: outputCompression as 'snappy' | 'zstd',
    outputDedupe: outputDedupe as Dedupe,
    concurrency,
  };
  if (config.rawDir === config.mergedDir) problems.push(`local_dirs: raw and merged folders must differ (both '${config.rawDir}')`);
  if (config.catalogPrefix === config.dataPrefix) problems.push(`s3_buckets.repartitioned_bucket_catalog_prefix: must differ from repartitioned_bucket_data_prefix ('${config.dataPrefix}'), or Athena reads the catalog as data`);
  if (config.dataPrefix === config.indexPrefix && config.dataPrefix !== '') {
    problems.push(`s3_buckets.repartitioned_bucket_index_prefix: must differ from repartitioned_bucket_data_prefix ('${config.dataPrefix}')`);
  }
  if (config.from && config.to && compareDays(config.from, config.to) > 0) {
    const startFrom = flags.from !== undefined ? '--from' : 'date_range.date_start';
    const endFrom = flags.to !== undefined ? '--to' : 'date_range.date_end';
    problems.push(`${startFrom}: start ${isoDay(config.from)} is after end ${isoDay(config.to)} (${endFrom})`);
  }
  if (problems.length > 0) throw new ConfigError(problems.map((p) => `${file}: ${p}`));
  return config;
}

/** The configured days; a command that needs them asks loadConfig for 'dates', which makes sure both are set. */
export function dayRange(config: Config): DayRange {
  if (!config.from || !config.to) throw new ConfigError([`${config.configFile}: date_range: set date_start and date_end, or pass --from and --to`]);
  return { from: config.from, to: config.to };
}

/** `YYYY-MM-DD`, `today`, `yesterday` or `today-N` (UTC), so cron entries need no date arithmetic. */
export function parseDayExpression(text: string, today: Date): Day | undefined {
  const rel = /^(today|yesterday)(?:-(\d{1,4}))?$/.exec(text.trim().toLowerCase());
  if (!rel) return parseIsoDay(text.trim());
  const back = (rel[1] === 'yesterday' ? 1 : 0) + Number(rel[2] ?? 0);
  const d = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - back));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}

/** Reads the nested layout and the original README's flat names into one map keyed by dot path. */
function collectValues(doc: unknown, problems: string[]): Map<string, unknown> {
  const values = new Map<string, unknown>();
  if (!isPlainObject(doc)) {
    problems.push('the file must be a YAML mapping of keys (see config.yml in the project)');
    return values;
  }
  const set = (keyPath: string, value: unknown, written: string) => {
    if (values.has(keyPath)) problems.push(`${written}: set twice (also as ${keyPath} or one of its flat names)`);
    values.set(keyPath, value);
  };
  for (const [name, value] of Object.entries(doc)) {
    if (SECTIONS.has(name)) {
      if (value === null) continue;
      if (!isPlainObject(value)) {
        problems.push(`${name}: expected a section of keys, got ${JSON.stringify(value)}`);
        continue;
      }
      for (const [leaf, v] of Object.entries(value)) {
        const full = `${name}.${leaf}`;
        if (KEYS.some((k) => k.path === full)) set(full, v, full);
        else problems.push(`${full}: unknown key${didYouMean(full)}`);
      }
      continue;
    }
    const def = KEYS.find((k) => k.path === name || (k.flat as readonly string[]).includes(name));
    if (def) set(def.path, value, name);
    else problems.push(`${name}: unknown key${didYouMean(name)}`);
  }
  return values;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Every name a config file may use: key paths, their flat names, and the sections that hold keys. */
const KNOWN_NAMES = [...KEYS.flatMap((k) => [k.path, ...k.flat]), ...SECTIONS];

export function didYouMean(name: string, candidates: readonly string[] = KNOWN_NAMES): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = Math.min(editDistance(name, c), editDistance(name.split('.').pop()!, c.split('.').pop()!));
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(name.length / 4)) ? `; did you mean '${best}'?` : '';
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}
