/**
 * What the original Python sample leaves in a destination after processing a
 * day, reproduced for adoption tests: every selected file's records appended
 * in order (decoded and re-encoded, as it did) into one snappy file named
 * `merged_series_<timestamp>.avro`, and a timeseries.txt holding the second
 * `_` field of each file name (its defect: half of an associated id).
 */
import { dayPrefix, type Day } from '../../src/partition/day.js';
import { encodeAvro, type ColdObject } from './generate-cold-tier.js';

export async function originalOutput(day: Day, objects: ColdObject[], timestamp = '20240302120000'): Promise<{ key: string; body: Buffer | string }[]> {
  const records = objects.flatMap((o) => o.records);
  const ids = [...new Set(objects.map((o) => o.key.slice(o.key.lastIndexOf('/') + 1).split('_')[1]!))];
  return [
    { key: `${dayPrefix('consolidated/', day)}merged_series_${timestamp}.avro`, body: await encodeAvro(records, 'snappy') },
    { key: `${dayPrefix('index/', day)}timeseries.txt`, body: ids.join('\n') },
  ];
}
