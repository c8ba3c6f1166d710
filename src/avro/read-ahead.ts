import { Worker } from 'node:worker_threads';
import type { ReaderMessage, ReadJob } from './read-ahead-worker.js';
import type { Entry } from './read-group.js';

/** Slabs per reader: one being filled, one being used, two ready. */
const SLABS = 4;

/** Reader threads between jobs; unreferenced, so they never hold the process open. */
const idle: Worker[] = [];

function spawn(): Worker {
  const worker = new Worker(new URL('./read-ahead-worker.js', import.meta.url), { resourceLimits: { maxYoungGenerationSizeMb: 4 } });
  worker.unref();
  return worker;
}

/** Starts a reader thread now, so that its start-up (tens of ms) overlaps the caller's own. */
export function prestartReader(): void {
  if (idle.length === 0) idle.push(spawn());
}

/** One group read by the reader thread: `slab` holds the bytes its entries point at. */
export interface ReadSlab {
  slab: ArrayBuffer;
  entries: Entry[];
}

/**
 * The groups of `job`, in order, read ahead on a worker thread into a few
 * reused slabs (see read-group.ts): opening, reading and re-framing thousands
 * of small files runs on one core while the caller writes on the other. A
 * yielded slab is valid until the next one is asked for, and `release` runs
 * before it is handed back (the caller writes out what still points into it).
 */
export async function* readAhead(job: Omit<ReadJob, 'slabs'>, release: () => void): AsyncGenerator<ReadSlab, undefined, undefined> {
  const worker = idle.pop() ?? spawn();
  const queue: ReaderMessage[] = [];
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const onMessage = (m: ReaderMessage) => {
    queue.push(m);
    wake?.();
  };
  const onError = (err: Error) => {
    failure ??= err;
    wake?.();
  };
  const onExit = () => onError(new Error('internal: the file reader thread exited'));
  worker.on('message', onMessage).on('error', onError).on('exit', onExit).ref();
  worker.postMessage({ job: { ...job, slabs: SLABS } satisfies ReadJob });
  let done = false;
  try {
    for (;;) {
      while (queue.length === 0 && !failure) await new Promise<void>((resolve) => (wake = resolve));
      if (failure) throw failure;
      const message = queue.shift()!;
      if ('done' in message) {
        done = true;
        return;
      }
      yield message;
      release();
      worker.postMessage({ slab: message.slab }, [message.slab]);
    }
  } finally {
    worker.off('message', onMessage).off('error', onError).off('exit', onExit).unref();
    if (done) idle.push(worker);
    else void worker.terminate();
  }
}
