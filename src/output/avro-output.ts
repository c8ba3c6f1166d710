import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { AvroFormatError } from '../avro/avro-format-error.js';
import { allBad, findBadInputs } from '../avro/check-inputs.js';
import { dedupeLatest } from '../avro/dedupe-latest.js';
import { mergeFiles } from '../avro/merge-files.js';
import { DayError } from '../shared/errors.js';
import { MergeWorkers } from '../avro/merge-workers.js';
import type { Dedupe } from '../config/load-config.js';
import { BadInputsError, type DayInput, type DayWritten, type FormatInfo, type OutputFormat, type WriteDayOptions } from './output-format.js';

export interface AvroOutputOptions {
  /** Also decompress every snappy block and check its CRC (about 4 x slower); otherwise blocks are copied as stored, their framing checked. */
  checkCrc?: boolean;
  /** latest: keep only each key's latest recordVersion (see avro/dedupe-latest.ts). */
  dedupe?: Dedupe;
  /** false: never a reader thread (see FormatOptions.helperThread). */
  helperThread?: boolean;
}

/** What a format tells its caller of bad inputs: each by its name, and one message for all. */
function badInputs(failures: Error[], all: Error): Error {
  const bad = failures.map((f) => (f instanceof AvroFormatError ? { name: f.file, reason: f.detail } : undefined));
  // a missing local file is no fault of the object: it is not offered to be skipped
  if (bad.some((b) => b === undefined)) return all;
  return new BadInputsError(bad as { name: string; reason: string }[], all.message);
}

export const AVRO: FormatInfo = {
  name: 'avro',
  extension: '.avro',
  contentType: 'application/avro',
  // two keep the disk busy while the other day's blocks are checked; a day's memory is bounded by its block size
  daysAtOnce: 2,
  athenaStorage: (schemaText) => `ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.avro.AvroSerDe'
WITH SERDEPROPERTIES ('avro.schema.literal'='${schemaText}')
STORED AS INPUTFORMAT 'org.apache.hadoop.hive.ql.io.avro.AvroContainerInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.avro.AvroContainerOutputFormat'`,
};

/**
 * Snappy Avro, as the original wrote: the inputs' blocks copied into one
 * object-container file. A day of 64 MiB or more is read on a reader thread
 * too, started by its first such day.
 */
export function avroOutput(options: AvroOutputOptions = {}): OutputFormat {
  const workers = new MergeWorkers();
  return {
    ...AVRO,
    async writeDay(inputs: DayInput[], outFile: string, day: WriteDayOptions): Promise<DayWritten> {
      // with checkCrc every block is checked anyway; otherwise only the inputs nothing checked on download
      const unchecked = options.checkCrc ? [] : inputs.filter((i) => i.checkContent);
      const badUnchecked = unchecked.length > 0 ? await findBadInputs(unchecked, workers, { crc: true }) : [];
      if (badUnchecked.length > 0) throw badInputs(badUnchecked, allBad(badUnchecked));
      // derived from the inputs, so the same inputs give the same bytes and ETag
      const sync = createHash('sha256').update(`sync:${day.seed}`).digest().subarray(0, 16);
      const merged = options.dedupe === 'latest' ? `${outFile}.all` : outFile;
      const result = await mergeFiles(inputs, merged, {
        sync,
        workers,
        checkCrc: options.checkCrc,
        onInput: day.onInput,
        readerThreadMinBytes: options.helperThread === false ? Infinity : undefined,
      }).catch(async (err: unknown) => {
        // the merge stops at the first bad input: look at all of them, so the day's message names every one
        if (!(err instanceof AvroFormatError)) throw err;
        const bad = await findBadInputs(inputs, workers, { crc: options.checkCrc ?? false });
        // none found alone: the fault is in how it fits the others (its schema), and it names that input
        throw badInputs(bad.length > 0 ? bad : [err], bad.length > 1 ? allBad(bad) : err);
      });
      if (merged === outFile) return { records: result.records, bytesIn: result.bytesIn, bytesOut: result.bytesOut, path: result.path };
      try {
        const kept = await dedupeLatest(merged, outFile, 'the merged day', sync);
        return { records: kept.records, bytesIn: result.bytesIn, bytesOut: kept.bytesOut, path: `${result.path}+dedupe`, dropped: kept.dropped };
      } catch (err) {
        // the inputs were each read whole by the merge: a fault here is in how they fit (a schema without the key fields)
        if (err instanceof AvroFormatError) throw new DayError(`output.dedupe: ${err.detail}`);
        throw err;
      } finally {
        await rm(merged, { force: true });
      }
    },
    close: () => workers.close(),
  };
}
