/** Parquet files read back by an independent reader, DuckDB (@duckdb/node-api), as the generator's records. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { RawDatum } from './generate-cold-tier.js';

type Row = Record<string, unknown>;

/** A DuckDB row as the generator's RawDatum (BIGINTs come back as bigint). */
export function datum(row: Row): RawDatum {
  const n = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    seriesId: row.seriesId as string,
    timeInSeconds: Number(row.timeInSeconds),
    offsetInNanos: Number(row.offsetInNanos),
    quality: row.quality as string,
    doubleValue: (row.doubleValue as number | null) ?? null,
    stringValue: (row.stringValue as string | null) ?? null,
    integerValue: (row.integerValue as number | null) ?? null,
    booleanValue: (row.booleanValue as boolean | null) ?? null,
    jsonValue: (row.jsonValue as string | null) ?? null,
    recordVersion: n(row.recordVersion),
  };
}

/** Every row of the given Parquet file bodies, each file in its own order. */
export async function parquetRows(bodies: Buffer[]): Promise<Row[]> {
  if (bodies.length === 0) return [];
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'parquet-read-'));
  const db = await (await DuckDBInstance.create(':memory:')).connect();
  try {
    const files = await Promise.all(bodies.map(async (b, i) => {
      const file = path.join(dir, `${i}.parquet`);
      await writeFile(file, b);
      return `'${file}'`;
    }));
    return (await db.runAndReadAll(`select * from read_parquet([${files.join(', ')}], filename = true, file_row_number = true) order by filename, file_row_number`)).getRowObjects();
  } finally {
    db.closeSync();
    await rm(dir, { recursive: true, force: true });
  }
}
