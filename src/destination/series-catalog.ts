/**
 * The series catalog: one line of JSON per series in the destination, from
 * ListTimeSeries (timeSeriesId, the id file names carry, alias, assetId,
 * propertyId, dataType), so that Athena can put names beside ids (see
 * athena-ddl). Each write merges with the catalog there: series SiteWise no
 * longer lists keep their line, since their data stays. Written with If-Match
 * where the destination honours it, so that two hosts never lose each
 * other's lines.
 */
import type { SeriesSummary } from '../sitewise/list-time-series.js';
import { PreconditionFailedError, type ObjectStore } from '../store/object-store.js';

export const catalogKey = (layout: { catalogPrefix: string }) => `${layout.catalogPrefix}series/series.ndjson`;

const FIELDS = ['timeSeriesId', 'fileId', 'alias', 'assetId', 'propertyId', 'dataType'] as const;
const ATTEMPTS = 5;

/** A catalog's lines, each checked; a damaged line is an error naming the key and line. */
export function parseCatalog(text: string, where: string): SeriesSummary[] {
  return text
    .split('\n')
    .map((line, i) => ({ line: line.trim(), n: i + 1 }))
    .filter(({ line }) => line !== '')
    .map(({ line, n }) => {
      let row: Record<string, unknown>;
      try {
        row = JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new Error(`${where} line ${n}: not valid JSON`);
      }
      if (typeof row !== 'object' || row === null) throw new Error(`${where} line ${n}: not a JSON object`);
      for (const f of FIELDS) {
        const v = row[f];
        if (v !== undefined && typeof v !== 'string') throw new Error(`${where} line ${n}: ${f} must be a string`);
        if ((f === 'timeSeriesId' || f === 'fileId') && !v) throw new Error(`${where} line ${n}: ${f} missing`);
      }
      return Object.fromEntries(FIELDS.filter((f) => row[f] !== undefined).map((f) => [f, row[f]])) as unknown as SeriesSummary;
    });
}

export function formatCatalog(rows: SeriesSummary[]): string {
  return rows.map((r) => `${JSON.stringify(Object.fromEntries(FIELDS.filter((f) => r[f] !== undefined).map((f) => [f, r[f]])))}\n`).join('');
}

/**
 * Merges `rows` into the catalog at `key` (a series' new line replaces its
 * old one) and writes it if anything changed. Returns how many series it
 * holds and whether it was written.
 */
export async function writeCatalog(store: ObjectStore, key: string, rows: SeriesSummary[], conditional: boolean, signal?: AbortSignal): Promise<{ series: number; written: boolean }> {
  const where = `s3://${store.name}/${key}`;
  for (let attempt = 1; ; attempt++) {
    const read = await store.read(key, signal);
    const byId = new Map(read ? parseCatalog(read.body.toString('utf8'), where).map((r) => [r.fileId, r]) : []);
    for (const r of rows) byId.set(r.fileId, r);
    const text = formatCatalog([...byId.values()].sort((a, b) => (a.fileId < b.fileId ? -1 : a.fileId > b.fileId ? 1 : 0)));
    if (read && read.body.toString('utf8') === text) return { series: byId.size, written: false };
    const condition = conditional ? (read ? { ifMatch: read.etag } : { ifNoneMatch: '*' as const }) : {};
    try {
      await store.put(key, text, { contentType: 'application/x-ndjson', ...condition }, signal);
      return { series: byId.size, written: true };
    } catch (err) {
      // another host wrote it meanwhile: merge with theirs
      if (!(err instanceof PreconditionFailedError) || attempt === ATTEMPTS) throw err;
    }
  }
}
