/**
 * Where a same-schema merge takes its inputs from: one group (a slab's worth of
 * files, see read-group.ts) at a time, in order, read and re-framed either on
 * this thread or on the reader thread. The merge sees one sequence of groups
 * whichever thread read them.
 */
import { readAhead, isRunning, type ReaderThreads, type ReadSlab } from './read-ahead.js';
import { planGroups, readGroup, Reframer, sizesOf } from './read-group.js';

export interface InputSource {
  /** Each group once, in order. A yielded slab is valid until the next group is asked for. */
  groups(): AsyncGenerator<ReadSlab, undefined, undefined>;
}

/**
 * Inputs read a slab at a time. This thread reads the first group itself,
 * and more while the reader thread is still starting (tens of ms: a small day
 * may be done by then); then the reader thread reads the rest while this one
 * writes. (A larger share here was measured: no faster on 2 cores.)
 * Inputs of fewer than `threadMinBytes` in all are read here only.
 * `release` runs before a slab is read into again: the caller writes out what
 * still points into it. `threads` undefined: every group is read here.
 */
export function slabInputSource(
  inputs: { file: string; size?: number }[],
  options: { slabBytes: number; sync: Buffer; threads: ReaderThreads | undefined; threadMinBytes: number; release: () => void },
): InputSource {
  const { slabBytes, sync, release } = options;
  const paths = inputs.map((input) => input.file);
  const sizes = sizesOf(inputs);
  const groups = planGroups(sizes, slabBytes);
  const threads = groups.length > 1 && sizes.reduce((n, s) => n + s, 0) >= options.threadMinBytes ? options.threads : undefined;
  return {
    async *groups() {
      const reader = threads?.take();
      const slab = new ArrayBuffer(slabBytes);
      const reframer = new Reframer(sync);
      let next = 0;
      let handedOver = false;
      try {
        do {
          if (next > 0) release(); // the slab is read into again
          yield { slab, entries: readGroup(paths, sizes, groups[next++]!, slab, reframer) };
        } while (next < groups.length && !(reader && isRunning(reader)));
        if (threads && reader && next < groups.length) {
          handedOver = true;
          yield* readAhead(threads, reader, { files: { paths: paths.join('\0'), sizes }, groups: groups.slice(next), slabBytes, sync }, release);
        }
        return undefined;
      } finally {
        if (threads && reader && !handedOver) threads.giveBack(reader);
      }
    },
  };
}
