/**
 * Shards: a range's days dealt over COUNT workers by the day's number since
 * 1970-01-01 modulo COUNT. The deal depends on the day alone, not on the
 * range, so every day of any range goes to exactly one shard, and a retried
 * shard gets the same days again. Consecutive days go to different shards,
 * which spreads a range evenly.
 */
import type { Day } from './day.js';

export interface Shard {
  index: number;
  count: number;
}

/** Where an orchestrator puts a worker's index: Kubernetes Indexed Jobs, then AWS Batch array jobs. */
export const SHARD_INDEX_ENV = ['JOB_COMPLETION_INDEX', 'AWS_BATCH_JOB_ARRAY_INDEX'] as const;

const MAX_SHARDS = 10_000;

const epochDay = (d: Day) => Math.round(Date.UTC(d.year, d.month - 1, d.day) / 86_400_000);

export function inShard(day: Day, shard: Shard | undefined): boolean {
  return shard === undefined || epochDay(day) % shard.count === shard.index;
}

/** The shard from `--shard INDEX/COUNT`, or `--shard-count COUNT` with the index from the environment; problems name the flag or variable. */
export function parseShard(flags: { shard?: string; shardCount?: string }, env: NodeJS.ProcessEnv): { shard?: Shard; problems: string[] } {
  const whole = (text: string) => (/^\d+$/.test(text.trim()) ? Number(text) : NaN);
  if (flags.shard !== undefined && flags.shardCount !== undefined) return { problems: ['--shard and --shard-count: give one of them'] };
  if (flags.shard !== undefined) {
    const [i, n, ...rest] = flags.shard.split('/');
    const shard = { index: whole(i ?? ''), count: whole(n ?? '') };
    if (rest.length || !(shard.count >= 1 && shard.count <= MAX_SHARDS && shard.index >= 0 && shard.index < shard.count)) {
      return { problems: [`--shard: '${flags.shard}' must be INDEX/COUNT with 0 <= INDEX < COUNT <= ${MAX_SHARDS} (e.g. 0/4)`] };
    }
    return { shard, problems: [] };
  }
  if (flags.shardCount === undefined) return { problems: [] };
  const count = whole(flags.shardCount);
  if (!(count >= 1 && count <= MAX_SHARDS)) return { problems: [`--shard-count: '${flags.shardCount}' must be a whole number from 1 to ${MAX_SHARDS}`] };
  const source = SHARD_INDEX_ENV.find((name) => env[name] !== undefined && env[name] !== '');
  if (!source) return { problems: [`--shard-count ${count}: no shard index in ${SHARD_INDEX_ENV.join(' or ')}; set one (the orchestrator does), or pass --shard INDEX/${count}`] };
  const index = whole(env[source]!);
  if (!(index >= 0 && index < count)) return { problems: [`${source}: '${env[source]}' must be a whole number from 0 to ${count - 1} for --shard-count ${count}`] };
  return { shard: { index, count }, problems: [] };
}
