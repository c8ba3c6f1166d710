import type { MergeWorkers } from './merge-workers.js';

export interface MergeInput {
  /** Local file to read. */
  file: string;
  /** What to call it in messages (the S3 key). */
  name: string;
  /** Its size when known (download checked it): saves a stat, and a file that differs is reported as such. */
  size?: number;
}

/**
 * block-copy: every input shares the output's schema and codec; blocks are
 * copied as stored (and checked against their CRCs if asked). transcode: same schema, some
 * blocks recompressed from another codec. decode: some inputs had another
 * (compatible) schema; their records were decoded and re-encoded.
 */
export type MergePath = 'block-copy' | 'transcode' | 'decode';

export interface MergeResult {
  records: number;
  blocks: number;
  bytesIn: number;
  bytesOut: number;
  path: MergePath;
}

export interface MergeOptions {
  /** The output's 16-byte sync marker; derived from the inputs so the output is reproducible. */
  sync: Buffer;
  /** The threads to read ahead and check blocks on. */
  workers: MergeWorkers;
  /** Also decompress every snappy block and check its CRC. Off (default): blocks are copied as stored, their structure checked. */
  checkCrc?: boolean;
  /** Inputs up to this size are read whole, larger ones streamed (default WHOLE_FILE_MAX). */
  wholeFileMax?: number;
  /** Size of each of the reused buffers small inputs are read ahead into (default SLAB_BYTES). */
  slabBytes?: number;
  /**
   * Inputs of fewer bytes than this in all are read on this thread (default
   * READER_THREAD_MIN_BYTES); larger ones also on a reader thread, once it
   * has started. Infinity: never a reader thread.
   */
  readerThreadMinBytes?: number;
  /** Called after each input with its records and bytes. */
  onInput?: (records: number, bytesIn: number) => void;
}

/**
 * A reader thread takes tens of ms of CPU to start (on 2 cores, beside the
 * merge itself), and this thread reads 64 MiB in about as long: a smaller
 * day is merged without one.
 */
export const READER_THREAD_MIN_BYTES = 64 * 2 ** 20;

/** Files up to this size are read whole (one open, one read); larger ones are streamed. */
export const WHOLE_FILE_MAX = 8 * 1024 * 1024;
/** The reused buffers inputs are read ahead into; memory: four of them on the reader thread. */
export const SLAB_BYTES = 4 * 1024 * 1024;
