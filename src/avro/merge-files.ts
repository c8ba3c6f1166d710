import { mergeMixedSchemas } from './merge-mixed-schemas.js';
import { Schemas } from './merge-inputs.js';
import type { MergeInput, MergeOptions, MergeResult } from './merge-options.js';
import { mergeSameSchema } from './merge-same-schema.js';

export type { MergeInput, MergeOptions, MergePath, MergeResult } from './merge-options.js';

/**
 * Merges Avro object-container files into one snappy file with exactly their
 * records. Normally all inputs share one schema and the merge is one pass:
 * the main thread writes each file's blocks as they are, re-framed with the
 * output's sync marker (by the reader thread, mostly), and with checkCrc
 * worker threads check every block's CRC (the output is only reported
 * complete once all checks passed). Otherwise the output takes the schema
 * most inputs have (see mergeMixedSchemas).
 */
export async function mergeFiles(inputs: MergeInput[], outFile: string, options: MergeOptions): Promise<MergeResult> {
  if (inputs.length === 0) throw new Error('mergeFiles needs at least one input');
  const schemas = new Schemas();
  return (await mergeSameSchema(inputs, outFile, options, schemas)) ?? (await mergeMixedSchemas(inputs, outFile, options, schemas));
}
