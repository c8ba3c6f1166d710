import { parseWholeHeader } from '../avro/container.js';
import { RAW_DATUM_SCHEMA } from '../avro/raw-schema.js';
import type { FormatInfo } from '../output/output-format.js';
import { footerColumns } from '../output/parquet-output.js';
import type { ObjectStore } from '../store/object-store.js';

const HIVE_TYPES: Record<string, string> = { string: 'string', long: 'bigint', int: 'int', double: 'double', float: 'float', boolean: 'boolean', bytes: 'binary' };

/** A table's columns (Hive types), the Avro schema text an Avro table names, and where they were read. */
export interface TableSchema {
  columns: { name: string; type: string }[];
  avroSchemaText: string;
  from: string;
}

/** The columns of an Avro record schema: a nullable union is its other type; a nested type (kept as JSON text in Parquet) is a string. */
export function avroTableSchema(schema: { fields?: readonly { name: string; type: unknown }[] }, text: string, from: string): TableSchema {
  const columns = (schema.fields ?? []).map((f) => {
    const branches = (Array.isArray(f.type) ? (f.type as unknown[]) : [f.type]).filter((b) => b !== 'null');
    const only = branches.length === 1 ? branches[0] : undefined;
    const name = typeof only === 'string' ? only : (only as { type?: string } | undefined)?.type;
    return { name: f.name, type: (name !== undefined && HIVE_TYPES[name]) || 'string' };
  });
  return { columns, avroSchemaText: text, from };
}

export const RAW_TABLE: TableSchema = avroTableSchema(RAW_DATUM_SCHEMA, JSON.stringify(RAW_DATUM_SCHEMA), 'the documented raw schema');

/** Bytes read from the start of an Avro file for its header (schema and codec), and from the end of a Parquet file for its footer. */
const HEAD_BYTES = 1024 * 1024;
const TAIL_BYTES = 64 * 1024;

/**
 * The schema of the destination's data: read from the last data file of
 * `format` listed under the data prefix (an Avro file's header, a Parquet
 * file's footer), or undefined when there is none yet.
 */
export async function destinationSchema(store: ObjectStore, dataPrefix: string, format: FormatInfo, signal?: AbortSignal): Promise<TableSchema | undefined> {
  const files = (await store.list(dataPrefix, signal)).filter((o) => o.key.endsWith(format.extension));
  const last = files.at(-1);
  if (!last) return undefined;
  const where = `s3://${store.name}/${last.key}`;
  if (format.name === 'avro') {
    const head = await store.readRange(last.key, { start: 0, end: HEAD_BYTES }, signal);
    if (!head) return undefined;
    const { header } = parseWholeHeader(head, where);
    return avroTableSchema(JSON.parse(header.schemaText) as { fields?: { name: string; type: unknown }[] }, header.schemaText, where);
  }
  const tailOf = (n: number) => store.readRange(last.key, { start: Math.max(0, last.size - n), end: last.size }, signal);
  let tail = await tailOf(TAIL_BYTES);
  if (!tail || tail.length < 12 || tail.subarray(-4).toString('latin1') !== 'PAR1') throw new Error(`${where} does not end as a Parquet file does`);
  const footer = tail.readUInt32LE(tail.length - 8);
  if (footer + 8 > tail.length) tail = (await tailOf(footer + 8))!;
  // the footer alone, framed as a file: the schema needs nothing else
  const columns = await footerColumns(Buffer.concat([Buffer.from('PAR1'), tail.subarray(tail.length - footer - 8)]));
  // the column types this tool writes are Avro's primitives, and so map as the Avro schema's do
  return { columns: columns.map((c) => ({ name: c.name, type: HIVE_TYPES[c.type ?? 'string']! })), avroSchemaText: '', from: where };
}

/** First year the projection covers; SiteWise's cold tier dates from 2021. */
const FIRST_YEAR = 2020;
const LAST_YEAR = 2099;

/** Athena's naming rule for tables, databases and columns. */
export const IDENTIFIER = /^[a-z_][a-z0-9_]*$/i;

function identifier(name: string, what: string): string {
  if (!IDENTIFIER.test(name)) throw new Error(`${what} '${name}' must be letters, digits and '_'`);
  return `\`${name.toLowerCase()}\``;
}

export interface AthenaTarget {
  /** The destination bucket and its data prefix. */
  destBucket: string;
  dataPrefix: string;
}

export interface CatalogTarget extends AthenaTarget {
  catalogPrefix: string;
  /** The cold-tier bucket and its data prefix ({keyPrefix}/raw/): asset_metadata/ is beside raw/. Empty: no asset_metadata table. */
  coldBucket: string;
  coldPrefix: string;
}

/** The cold tier's `{keyPrefix}/asset_metadata/`, beside its raw/ (or agg/) folder. */
export function assetMetadataPrefix(coldPrefix: string): string {
  const parts = coldPrefix.split('/').filter(Boolean);
  return [...parts.slice(0, -1), 'asset_metadata', ''].join('/');
}

/**
 * Names beside ids: a table over the series catalog upload writes (one JSON
 * line per series), one over SiteWise's own asset_metadata/ export in the
 * cold tier (one JSON line per asset property), and a view of the data with
 * the series' alias and data type and the asset's and property's names. The
 * view joins each metadata table on its key, one row per key (grouped), so
 * it has exactly the data's rows.
 */
export function athenaCatalogDdl(target: CatalogTarget, names: { table: string; database: string }): string {
  const db = identifier(names.database, 'database');
  const table = (suffix: string) => `${db}.${identifier(`${names.table}${suffix}`, 'table')}`;
  const quoted = (suffix: string) => `"${names.database.toLowerCase()}"."${`${names.table}${suffix}`.toLowerCase()}"`;
  const jsonTable = (suffix: string, columns: string[], location: string) => `CREATE EXTERNAL TABLE IF NOT EXISTS ${table(suffix)} (
${columns.map((c) => `  \`${c}\` string`).join(',\n')}
)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
LOCATION '${location}';
`;
  const series = jsonTable('_series', ['timeseriesid', 'fileid', 'alias', 'assetid', 'propertyid', 'datatype'], `s3://${target.destBucket}/${target.catalogPrefix}series/`);
  if (!target.coldBucket) return `${series}\n-- set s3_buckets.cold_tier_bucket_name for the asset_metadata table and the view with names\n`;
  const assets = jsonTable('_asset_metadata', ASSET_METADATA_COLUMNS, `s3://${target.coldBucket}/${assetMetadataPrefix(target.coldPrefix)}`);
  const view = `CREATE OR REPLACE VIEW ${quoted('_named')} AS
SELECT d.*, s.alias, s.datatype, a.assetname, a.assetpropertyname, a.assetpropertyunit
FROM ${quoted('')} d
LEFT JOIN ${quoted('_series')} s ON s.fileid = d.seriesid
LEFT JOIN (
  SELECT assetid, assetpropertyid, max(assetname) AS assetname, max(assetpropertyname) AS assetpropertyname, max(assetpropertyunit) AS assetpropertyunit
  FROM ${quoted('_asset_metadata')}
  GROUP BY assetid, assetpropertyid
) a ON a.assetid = s.assetid AND a.assetpropertyid = s.propertyid;
`;
  return `${series}\n${assets}\n${view}`;
}

/** The fields of SiteWise's asset metadata lines (User Guide, "File paths and schemas of data saved in the cold tier"). */
export const ASSET_METADATA_COLUMNS = ['assetid', 'assetname', 'assetmodelid', 'assetpropertyid', 'assetpropertyname', 'assetpropertydatatype', 'assetpropertyunit', 'assetpropertyalias', 'timeseriesid', 'timeseriesbucket'];

/**
 * Athena DDL for the merged output: the raw schema's columns, the format's
 * storage clauses, partitioned by startYear/startMonth/startDay with
 * partition projection matching the key layout upload writes
 * (`startYear=2023/startMonth=1/startDay=7/`, not zero-padded), so no
 * crawler or MSCK REPAIR is needed.
 */
export function athenaDdl(target: AthenaTarget, names: { table: string; database: string }, format: FormatInfo, schema: TableSchema = RAW_TABLE): string {
  const location = `s3://${target.destBucket}/${target.dataPrefix}`;
  const columns = schema.columns.map((c) => `  ${identifier(c.name, 'column')} ${c.type}`).join(',\n');
  return `CREATE EXTERNAL TABLE IF NOT EXISTS ${identifier(names.database, 'database')}.${identifier(names.table, 'table')} (
${columns}
)
PARTITIONED BY (
  \`startyear\` int,
  \`startmonth\` int,
  \`startday\` int
)
${format.athenaStorage(schema.avroSchemaText)}
LOCATION '${location}'
TBLPROPERTIES (
  'projection.enabled'='true',
  'projection.startyear.type'='integer',
  'projection.startyear.range'='${FIRST_YEAR},${LAST_YEAR}',
  'projection.startmonth.type'='integer',
  'projection.startmonth.range'='1,12',
  'projection.startday.type'='integer',
  'projection.startday.range'='1,31',
  'storage.location.template'='${location}startYear=\${startyear}/startMonth=\${startmonth}/startDay=\${startday}/'
);
`;
}
