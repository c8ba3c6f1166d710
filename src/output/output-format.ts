/**
 * The seam for what merge writes. A format turns a day's downloaded inputs
 * into one file, and says how that file is named, uploaded and read by
 * Athena. Today: Avro (avro-output.ts). A new format is a module that
 * implements this, plus its name in formats.ts.
 */
export interface DayInput {
  /** Local file to read. */
  file: string;
  /** What to call it in messages (the S3 key). */
  name: string;
  /** Its size as downloaded. */
  size: number;
  /** The series whose export it is (from its key): formats that order rows by series group inputs by it. */
  seriesId?: string;
  /** Its download had no content check (no checksum returned, an ETag that is not an MD5): the format checks its content before using it. */
  checkContent?: boolean;
}

export interface DayWritten {
  records: number;
  bytesIn: number;
  bytesOut: number;
  /** How the format got there (Avro: block-copy, transcode or decode); reported per day. */
  path: string;
  /** Records left out by output.dedupe: latest (an older recordVersion of a key kept once). */
  dropped?: number;
}

export interface WriteDayOptions {
  /** Derived from the inputs (their batch hash): the same inputs must give the same bytes, so a retried upload lands on the same ETag. */
  seed: string;
  /** Called after each input with its records and bytes. */
  onInput?: (records: number, bytesIn: number) => void;
}

/** Inputs a format could not use (corrupt, truncated, not its format, a schema that does not fit): `names` are DayInput names. */
export class BadInputsError extends Error {
  constructor(
    readonly bad: { name: string; reason: string }[],
    message: string,
  ) {
    super(message);
    this.name = 'BadInputsError';
  }
}

/** What is known of a format without making one (no threads started). */
export interface FormatInfo {
  readonly name: string;
  /** The merged file's extension, with its dot. */
  readonly extension: string;
  /** Content-Type of the uploaded file. */
  readonly contentType: string;
  /**
   * Days `merge` may write at once within the memory bound (peak RSS at most
   * 200 MB). 1: a day's write takes most of the bound, so `run` uploads no
   * other day beside it.
   */
  readonly daysAtOnce: number;
  /** The Athena clauses after PARTITIONED BY (row format, storage) for a table over these files with `schemaText`'s columns. */
  athenaStorage(schemaText: string): string;
}

export interface OutputFormat extends FormatInfo {
  /** Writes the day's inputs, in order, to `outFile`. */
  writeDay(inputs: DayInput[], outFile: string, options: WriteDayOptions): Promise<DayWritten>;
  /** Stops the threads the format started. */
  close(): Promise<void>;
}
