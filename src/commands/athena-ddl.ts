import { RAW_DATUM_SCHEMA } from '../avro/raw-schema.js';
import type { FormatInfo } from '../output/output-format.js';

const HIVE_TYPES: Record<string, string> = { string: 'string', long: 'bigint', int: 'int', double: 'double', boolean: 'boolean' };

/** First year the projection covers; SiteWise's cold tier dates from 2021. */
const FIRST_YEAR = 2020;
const LAST_YEAR = 2099;

function hiveType(type: string | readonly string[]): string {
  const t = typeof type === 'string' ? type : type.find((x) => x !== 'null')!;
  return HIVE_TYPES[t]!;
}

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

/**
 * Athena DDL for the merged output: the raw schema's columns, the format's
 * storage clauses, partitioned by startYear/startMonth/startDay with
 * partition projection matching the key layout upload writes
 * (`startYear=2023/startMonth=1/startDay=7/`, not zero-padded), so no
 * crawler or MSCK REPAIR is needed.
 */
export function athenaDdl(target: AthenaTarget, names: { table: string; database: string }, format: FormatInfo): string {
  const location = `s3://${target.destBucket}/${target.dataPrefix}`;
  const columns = RAW_DATUM_SCHEMA.fields.map((f) => `  ${identifier(f.name, 'column')} ${hiveType(f.type)}`).join(',\n');
  return `CREATE EXTERNAL TABLE IF NOT EXISTS ${identifier(names.database, 'database')}.${identifier(names.table, 'table')} (
${columns}
)
PARTITIONED BY (
  \`startyear\` int,
  \`startmonth\` int,
  \`startday\` int
)
${format.athenaStorage(JSON.stringify(RAW_DATUM_SCHEMA))}
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
