/**
 * Reading a merge's inputs in groups: each group's files are read one after
 * the other into one slab, and those that can be block-copied are re-framed
 * there with the output's sync marker. Used on the reader thread, and on the
 * main thread for the groups it reads before the reader thread has started
 * (see mergeSameSchema).
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { OUTPUT_CODEC } from './codec.js';
import { BlockFramer, parseWholeHeader, SYNC_SIZE } from './container.js';

/** Files for a reader: paths joined with NUL (one string clones far faster than thousands) and their expected sizes. */
export interface FileList {
  paths: string;
  sizes: Float64Array;
}

/**
 * Per file of a group: where its bytes are in the slab; or, framed, where its
 * blocks are, re-framed, with the file's size and what they hold; or that it
 * does not fit a slab (the caller streams it); or why it could not be read.
 */
export type Entry =
  | { index: number; start: number; end: number; framed?: { bytes: number; records: number; blocks: number } }
  | { index: number; tooLarge: true }
  | { index: number; error: { message: string; code?: string } };

/** A run of inputs `[start, end)` that fits one slab (or a single input that does not: `tooLarge`). */
export interface Group {
  start: number;
  end: number;
}

/** Consecutive groups of inputs, each filling up to `slabBytes` (a file is given one byte more than its size, so growth shows). */
export function planGroups(sizes: ArrayLike<number>, slabBytes: number): Group[] {
  const groups: Group[] = [];
  let start = 0;
  let used = 0;
  for (let i = 0; i < sizes.length; i++) {
    const room = sizes[i]! + 1;
    if (i > start && used + room > slabBytes) {
      groups.push({ start, end: i });
      start = i;
      used = 0;
    }
    used += room;
    if (room > slabBytes) {
      groups.push({ start, end: i + 1 });
      start = i + 1;
      used = 0;
    }
  }
  if (start < sizes.length) groups.push({ start, end: sizes.length });
  return groups;
}

/**
 * Re-frames files in place. The first file it sees is left as read (the main
 * thread parses and checks its header); a later file whose header bytes equal
 * that one's but for the sync marker has the same schema and codec, and if
 * that codec is the output's, its blocks are checked and re-framed. Anything
 * else (another header, a size other than expected, a format error) is left
 * as read, for the main thread to handle or report.
 */
export class Reframer {
  private prefix: Buffer | undefined;
  private copyable = false;
  private readonly sync: Buffer;
  private readonly framer = new BlockFramer();

  constructor(sync: Uint8Array) {
    this.sync = Buffer.from(sync.buffer, sync.byteOffset, sync.byteLength);
  }

  /** Where the re-framed blocks of `buf` (a whole file) start and what they hold; undefined: left as read. */
  frame(buf: Buffer): { start: number; records: number; blocks: number } | undefined {
    if (!this.prefix) {
      try {
        const { header, length } = parseWholeHeader(buf, '');
        this.prefix = Buffer.from(buf.subarray(0, length - SYNC_SIZE));
        this.copyable = header.codec === OUTPUT_CODEC;
      } catch {
        this.prefix = Buffer.alloc(0); // the main thread reports it; nothing is re-framed
      }
      return undefined;
    }
    const n = this.prefix.length;
    if (!this.copyable || buf.length < n + SYNC_SIZE || buf.compare(this.prefix, 0, n, 0, n) !== 0) return undefined;
    const header = { schemaText: '', codec: OUTPUT_CODEC, sync: buf.subarray(n, n + SYNC_SIZE) };
    try {
      return { start: n + SYNC_SIZE, ...this.framer.reframe(buf, n + SYNC_SIZE, header, '', this.sync) };
    } catch {
      return undefined; // left as read: the main thread reports what is wrong with it
    }
  }
}

/**
 * Reads the files of `group` (paths by index) into `slab`, re-framing what
 * `reframer` can. Stops at the first file that cannot be read (its entry
 * carries the error).
 */
export function readGroup(paths: string[], sizes: ArrayLike<number>, group: Group, slab: ArrayBuffer, reframer: Reframer): Entry[] {
  const entries: Entry[] = [];
  let used = 0;
  for (let index = group.start; index < group.end; index++) {
    const expected = sizes[index]!;
    // one byte more than expected, so a file that grew is noticed
    const room = expected + 1;
    if (room > slab.byteLength) {
      entries.push({ index, tooLarge: true });
      continue;
    }
    let fd: number | undefined;
    try {
      fd = openSync(paths[index]!, 'r');
      const read = readSync(fd, new Uint8Array(slab, used, room), 0, room, 0);
      const framed = read === expected ? reframer.frame(Buffer.from(slab, used, read)) : undefined;
      entries.push(
        framed
          ? { index, start: used + framed.start, end: used + read, framed: { bytes: read, records: framed.records, blocks: framed.blocks } }
          : { index, start: used, end: used + read },
      );
      used += read;
    } catch (err) {
      entries.push({ index, error: { message: (err as Error).message, code: (err as NodeJS.ErrnoException).code } });
      break;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
  return entries;
}

/** Sizes of inputs, stat'ed where the caller did not know them. */
export function sizesOf(inputs: { file: string; size?: number }[]): Float64Array {
  return Float64Array.from(inputs, (input) => input.size ?? statSync(input.file).size);
}
