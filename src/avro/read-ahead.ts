import { Worker } from 'node:worker_threads';
import type { ReaderMessage, ReadJob } from './read-ahead-worker.js';

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

/**
 * The bytes of each file, in order, read ahead on a worker thread into a few
 * reused slabs: opening and reading thousands of small files runs on one core
 * while the caller parses and writes on the other. A yielded buffer is valid
 * until the next one is asked for, and `release` runs before its slab is
 * reused (the caller writes out what still points into it). undefined: the
 * file does not fit a slab; the caller reads it itself.
 */
export async function* readAhead(files: ReadJob['files'], slabBytes: number, release: () => void): AsyncGenerator<Buffer | undefined, void, undefined> {
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
  worker.postMessage({ job: { files, slabBytes, slabs: SLABS } satisfies ReadJob });
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
      for (const e of message.entries) {
        if ('error' in e) throw Object.assign(new Error(e.error.message), { code: e.error.code });
        yield 'tooLarge' in e ? undefined : Buffer.from(message.slab, e.start, e.end - e.start);
      }
      release();
      worker.postMessage({ slab: message.slab }, [message.slab]);
    }
  } finally {
    worker.off('message', onMessage).off('error', onError).off('exit', onExit).unref();
    if (done) idle.push(worker);
    else void worker.terminate();
  }
}
