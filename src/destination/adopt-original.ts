import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { readRecordSlices } from '../avro/read-record-slices.js';
import { isoDay, type Day } from '../partition/day.js';
import { parseDataKey } from '../partition/parse-data-key.js';
import { DayError } from '../shared/errors.js';
import { mapLimit } from '../shared/limit.js';
import type { ObjectInfo, ObjectStore } from '../store/object-store.js';
import { dataDayPrefix, type DestinationLayout } from './layout.js';
import type { Ledger, LedgerBatch } from './ledger.js';

const fingerprint = (bytes: Buffer) => createHash('sha1').update(bytes).digest('base64');

interface Candidate {
  object: ObjectInfo;
  count: number;
  first: string;
  last: string;
}

/**
 * Starts a ledger for a day that the original sample processed (it left a
 * timeseries.txt, no ledger). Its series rule cannot be trusted: it skipped
 * later exports of series it had seen. So this finds exactly which source
 * objects its merged files hold: the original appended each source file's
 * records in one run, so an object is merged when a merged file holds a run of
 * exactly its record count that starts with its first record and ends with its
 * last (compared byte for byte). Only objects of series in the old index (in
 * full or cut at the first `_`, as the original wrote it) can be there;
 * anything else is new.
 */
export async function adoptOriginal(opts: {
  day: Day;
  indexIds: string[];
  listed: ObjectInfo[];
  cold: ObjectStore;
  dest: ObjectStore;
  layout: DestinationLayout;
  concurrency: number;
  signal?: AbortSignal;
}): Promise<Ledger> {
  const ids = new Set(opts.indexIds);
  // The original wrote the second `_` field of the file name as the id, which
  // for `{assetId}_{propertyId}` series is the asset id alone.
  const possible = opts.listed.filter((o) => {
    const parsed = parseDataKey(o.key);
    return parsed !== undefined && (ids.has(parsed.seriesId) || ids.has(parsed.seriesId.split('_')[0]!));
  });
  const candidates = await mapLimit(possible, opts.concurrency, async (object): Promise<Candidate | undefined> => {
    const body = await opts.cold.getBuffer(object.key, opts.signal);
    if (!body) return undefined;
    let count = 0;
    let first = '';
    let last = '';
    for await (const slice of readRecordSlices(Readable.from([body]), `s3://${opts.cold.name}/${object.key}`)) {
      const fp = fingerprint(slice);
      if (count++ === 0) first = fp;
      last = fp;
    }
    return count > 0 ? { object, count, first, last } : undefined;
  });
  const byFirst = new Map<string, Candidate[]>();
  for (const c of candidates) if (c) byFirst.set(c.first, [...(byFirst.get(c.first) ?? []), c]);

  const mergedFiles = (await opts.dest.list(dataDayPrefix(opts.layout, opts.day), opts.signal)).filter((o) => o.key.endsWith('.avro'));
  const batches: LedgerBatch[] = [];
  const claimed = new Set<string>();
  for (const file of mergedFiles) {
    // A run under check: the candidate whose first record started it, and where.
    const open: { c: Candidate; start: number }[] = [];
    const found: ObjectInfo[] = [];
    let index = 0;
    const name = `s3://${opts.dest.name}/${file.key}`;
    for await (const slice of readRecordSlices(await opts.dest.getStream(file.key, opts.signal), name)) {
      const fp = fingerprint(slice);
      for (const c of byFirst.get(fp) ?? []) open.push({ c, start: index });
      for (let i = open.length - 1; i >= 0; i--) {
        const { c, start } = open[i]!;
        if (index - start === c.count - 1) {
          if (fp === c.last && !claimed.has(c.object.key)) {
            claimed.add(c.object.key);
            found.push(c.object);
          }
          open.splice(i, 1);
        }
      }
      index++;
    }
    batches.push({ file: file.key.slice(file.key.lastIndexOf('/') + 1), records: index, objects: found, committedAt: new Date().toISOString(), adopted: true });
  }
  if (mergedFiles.length === 0) {
    throw new DayError(
      `${isoDay(opts.day)}: the destination has an index from the original tool (s3://${opts.dest.name}) but no merged files under ${dataDayPrefix(opts.layout, opts.day)}; ` +
        'check the data prefix, or delete the index to merge the day from scratch',
    );
  }
  return { version: 1, day: isoDay(opts.day), batches };
}
