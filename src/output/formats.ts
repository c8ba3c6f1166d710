/** The output formats by name: where a new format is added. */
import type { Dedupe } from '../config/load-config.js';
import { AVRO, avroOutput } from './avro-output.js';
import type { FormatInfo, OutputFormat } from './output-format.js';
import { PARQUET, parquetOutput, type ParquetCompression } from './parquet-output.js';

export interface FormatOptions {
  /** Check every input block's CRC while merging (Avro; Parquet decodes, and so checks, every block). */
  checkCrc?: boolean;
  /** Parquet's page compression. */
  compression?: ParquetCompression;
  /** output.dedupe. */
  dedupe?: Dedupe;
  /**
   * A large day's inputs decoded (Parquet) or read ahead (Avro) on a thread of
   * its own (the default): faster, and some 20 MB more. `run` does without:
   * its downloads and uploads share the memory bound.
   */
  helperThread?: boolean;
}

const FORMATS = {
  avro: { info: AVRO, create: avroOutput },
  parquet: { info: PARQUET, create: parquetOutput },
} as const satisfies Record<string, { info: FormatInfo; create: (options: FormatOptions) => OutputFormat }>;

export type FormatName = keyof typeof FORMATS;
export const FORMAT_NAMES = Object.keys(FORMATS) as FormatName[];

export function formatInfo(name: FormatName): FormatInfo {
  return FORMATS[name].info;
}

/** A format ready to write days; close() it when the run ends. */
export function createOutputFormat(name: FormatName, options: FormatOptions = {}): OutputFormat {
  return FORMATS[name].create(options);
}

/** Content-Type by a merged file's extension, so upload sends any format's file right without making the format. */
export function contentTypeOf(file: string): string {
  return Object.values(FORMATS).find((f) => file.endsWith(f.info.extension))?.info.contentType ?? 'application/octet-stream';
}
