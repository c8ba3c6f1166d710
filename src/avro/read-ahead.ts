import type { Worker } from 'node:worker_threads';
import { threads } from '../shared/load-on-use.js';
import type { ReaderMessage, ReadJob } from './read-ahead-worker.js';
import type { Entry } from './read-group.js';

/** Slabs per reader: one being filled, one being used, two ready. */
const SLABS = 4;

/** A reader thread and a flag it sets once it is running (its start-up takes tens of ms). */
export interface ReaderThread {
  worker: Worker;
  running: Int32Array;
}

/**
 * The reader threads of one owner (a run's output format), kept between jobs.
 * Unreferenced while idle, so they never hold the process open.
 */
export class ReaderThreads {
  private readonly idle: ReaderThread[] = [];

  private spawn(): ReaderThread {
    const running = new Int32Array(new SharedArrayBuffer(4));
    const worker = new (threads().Worker)(new URL('./read-ahead-worker.js', import.meta.url), { workerData: { running }, resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    worker.unref();
    return { worker, running };
  }

  /** Starts a reader thread now (unless one is idle), so that its start-up overlaps the caller's own. */
  prestart(): ReaderThread {
    if (this.idle.length === 0) this.idle.push(this.spawn());
    return this.idle.at(-1)!;
  }

  /** A reader thread for one job (one started earlier if there is one); give it back if it was not used. */
  take(): ReaderThread {
    return this.idle.pop() ?? this.spawn();
  }

  giveBack(reader: ReaderThread): void {
    this.idle.push(reader);
  }

  /** Stops the idle threads. */
  async close(): Promise<void> {
    await Promise.all(this.idle.splice(0).map((r) => r.worker.terminate()));
  }
}

/** Whether the reader thread can start on a job at once. */
export function isRunning(reader: ReaderThread): boolean {
  return Atomics.load(reader.running, 0) === 1;
}

/** One group read by the reader thread: `slab` holds the bytes its entries point at. */
export interface ReadSlab {
  slab: ArrayBuffer;
  entries: Entry[];
}

/**
 * The groups of `job`, in order, read ahead on a reader thread into a few
 * reused slabs (see read-group.ts): opening, reading and re-framing thousands
 * of small files runs on one core while the caller writes on the other. A
 * yielded slab is valid until the next one is asked for, and `release` runs
 * before it is handed back (the caller writes out what still points into it).
 */
export async function* readAhead(threads: ReaderThreads, reader: ReaderThread, job: Omit<ReadJob, 'slabs'>, release: () => void): AsyncGenerator<ReadSlab, undefined, undefined> {
  const { worker } = reader;
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
    if (done) threads.giveBack(reader);
    else void worker.terminate();
  }
}
