/** What a cold-tier data object's name says about it. */
export interface DataKey {
  kind: 'raw' | 'agg';
  seriesId: string;
  startTimestamp: number;
  quality: string;
}

// The series id is everything between `raw_`/`agg_` and the last two fields:
// associated ids are `{assetId}_{propertyId}` and contain `_` themselves.
const DATA_FILE = /^(raw|agg)_(.+)_(\d+)_([A-Z]+)\.avro$/;

export function parseDataKey(key: string): DataKey | undefined {
  const name = key.slice(key.lastIndexOf('/') + 1);
  const m = DATA_FILE.exec(name);
  if (!m) return undefined;
  return { kind: m[1] as DataKey['kind'], seriesId: m[2]!, startTimestamp: Number(m[3]), quality: m[4]! };
}
