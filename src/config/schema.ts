/**
 * The one place that says which config keys exist, where they live in the
 * original's nested config.yml, which flat names the original README uses for
 * them, their defaults and their meaning. The README's config reference is
 * written from this table.
 */
export interface KeyDef {
  path: string;
  flat: string[];
  default?: string | boolean | number;
  meaning: string;
}

export const KEYS = [
  { path: 'credentials.profile', flat: ['profile'], meaning: 'named AWS profile; unset or "default" uses the standard credential chain (env vars, SSO, instance role)' },
  { path: 'timeseries_type', flat: [], default: 'ASSOCIATED', meaning: 'ASSOCIATED, DISASSOCIATED (filtered through ListTimeSeries) or ALL (every series in the bucket, no ListTimeSeries call)' },
  { path: 's3_buckets.cold_tier_bucket_name', flat: ['cold_tier_bucket_name'], meaning: 'bucket SiteWise exports the cold tier to (read only)' },
  { path: 's3_buckets.cold_tier_bucket_data_prefix', flat: ['cold_tier_bucket_data_prefix'], default: 'raw/', meaning: 'prefix of the raw data in the cold-tier bucket ({keyPrefix}/raw/); agg/ merges too' },
  { path: 's3_buckets.repartitioned_bucket_name', flat: ['repartitioned_bucket_name', 'repartitioned_data_bucket_name'], meaning: 'destination bucket for the merged files, the index and the ledger' },
  { path: 's3_buckets.repartitioned_bucket_data_prefix', flat: ['repartitioned_bucket_data_prefix'], default: 'consolidated/', meaning: 'prefix of the merged Avro files in the destination' },
  { path: 's3_buckets.repartitioned_bucket_index_prefix', flat: ['repartitioned_bucket_index_prefix'], default: 'index/', meaning: 'prefix of timeseries.txt and ledger.json in the destination' },
  { path: 's3_buckets.repartitioned_bucket_catalog_prefix', flat: [], default: 'catalog/', meaning: 'prefix of the series catalog in the destination (series/series.ndjson: one line per series from ListTimeSeries, for names beside ids)' },
  { path: 'local_dirs.work_dir', flat: ['work_dir'], default: '/tmp/sitewise', meaning: 'local working folder; raw and merged folders live below it' },
  { path: 'local_dirs.local_tmp_raw_dir_name', flat: ['local_tmp_raw_dir_name'], default: 'raw', meaning: 'folder (under work_dir) for downloaded objects, one subfolder a day' },
  { path: 'local_dirs.local_tmp_merged_dir_name', flat: ['local_tmp_merged_dir_name'], default: 'merged', meaning: 'folder (under work_dir) for merged days waiting for upload' },
  { path: 'date_range.date_start', flat: ['date_start'], meaning: 'first day, YYYY-MM-DD, or today / yesterday / today-N' },
  { path: 'date_range.date_end', flat: ['date_end'], meaning: 'last day (inclusive), same forms as date_start' },
  { path: 'aws.region', flat: [], meaning: 'AWS region; default from AWS_REGION or the profile' },
  { path: 'aws.s3_endpoint', flat: [], meaning: 'S3 endpoint URL for an S3-compatible store; default AWS_ENDPOINT_URL_S3 or AWS' },
  { path: 'aws.s3_force_path_style', flat: [], default: false, meaning: 'path-style bucket addressing (needed by most local S3 servers)' },
  { path: 'aws.sitewise_endpoint', flat: [], meaning: 'SiteWise API endpoint URL; default AWS_ENDPOINT_URL_IOTSITEWISE or AWS' },
  { path: 'aws.sse', flat: [], meaning: 'server-side encryption asked of every PUT to the destination: AES256, aws:kms or aws:kms:dsse (for buckets whose policy requires the header); unset: the bucket default' },
  { path: 'aws.sse_kms_key_id', flat: [], meaning: 'the KMS key (id, ARN or alias) for aws.sse aws:kms; unset: the AWS managed key' },
  { path: 'aws.first_byte_timeout', flat: [], default: 60, meaning: 'seconds a request may wait for the first byte of its answer (its body sent) before it is retried' },
  { path: 'aws.idle_timeout', flat: [], default: 30, meaning: 'seconds a connection may stay silent during a transfer before the request is retried' },
  {
    path: 'aws.conditional_writes',
    flat: [],
    default: 'auto',
    meaning:
      'auto: probe the destination once per run for conditional writes (If-None-Match, If-Match) and use per-day leases and conditional commits where it honours them, else warn and keep single-host guarantees; required: fail where they are not honoured; off: never probe, single host',
  },
  { path: 'output.format', flat: [], default: 'avro', meaning: 'avro (one snappy Avro file a day, as the original wrote) or parquet (sorted by seriesId and time, row-group statistics: a query on one series reads a small part of the day)' },
  { path: 'output.compression', flat: [], default: 'snappy', meaning: 'Parquet page compression: snappy or zstd (Avro output keeps the inputs\' snappy blocks)' },
  {
    path: 'output.dedupe',
    flat: [],
    default: 'none',
    meaning:
      'none keeps every record; latest keeps, for each seriesId, timeInSeconds and offsetInNanos, only the record with the largest recordVersion, across all of the day\'s files (a day already holding files is compacted after each upload)',
  },
  {
    path: 'concurrency',
    flat: [],
    default: 64,
    meaning:
      'S3 transfers in flight, shared by every day in flight (downloads, the listings of the days ahead, upload parts); chosen by measurement at 20-100 ms a request (docs/performance.md): 64 is 3 x faster than 16 at 100 ms. Memory: objects up to 1 MiB are held whole while downloading, so at most concurrency x 1 MiB (64 MiB); larger ones stream to disk',
  },
] as const satisfies readonly KeyDef[];

export type KeyPath = (typeof KEYS)[number]['path'];

/** A key's default as text ('' when it has none), for help text and the loader alike. */
export function defaultOf(path: KeyPath): string {
  const key: KeyDef | undefined = KEYS.find((k) => k.path === path);
  return key?.default === undefined ? '' : String(key.default);
}
