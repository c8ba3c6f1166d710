/**
 * Worker side of readAhead: reads the groups of a job in order, each into a
 * slab (see read-group.ts), and hands each slab to the main thread, which
 * hands it back once used. Messages in: `{ job }` to start, `{ slab }`
 * returning one. Out: `{ slab, entries }` per group, then `{ done: true }`.
 * Once it listens it sets `workerData.running` (shared memory: the main
 * thread, busy reading groups itself meanwhile, checks it between groups).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readGroup, Reframer, type Entry, type FileList, type Group } from './read-group.js';

export interface ReadJob {
  files: FileList;
  groups: Group[];
  slabBytes: number;
  slabs: number;
  /** The output's sync marker: re-frame the files that can be copied block by block. */
  sync: Uint8Array;
}

export type ReaderMessage = { slab: ArrayBuffer; entries: Entry[] } | { done: true };

/** Slabs handed back by the main thread, ready to be read into again. */
class SlabReader {
  private readonly free: ArrayBuffer[] = [];
  private wake: (() => void) | undefined;

  giveBack(slab: ArrayBuffer): void {
    this.free.push(slab);
    this.wake?.();
  }

  private async take(): Promise<ArrayBuffer> {
    while (this.free.length === 0) await new Promise<void>((resolve) => (this.wake = resolve));
    return this.free.pop()!;
  }

  async run(job: ReadJob): Promise<void> {
    // slabs of an earlier job are reused when they have the size asked for
    const kept = this.free.filter((b) => b.byteLength === job.slabBytes);
    this.free.length = 0;
    this.free.push(...kept.slice(0, job.slabs));
    while (this.free.length < job.slabs) this.free.push(new ArrayBuffer(job.slabBytes));
    const paths = job.files.paths.split('\0');
    const reframer = new Reframer(job.sync);
    for (const group of job.groups) {
      const slab = await this.take();
      const entries = readGroup(paths, job.files.sizes, group, slab, reframer);
      parentPort!.postMessage({ slab, entries } satisfies ReaderMessage, [slab]);
      if (entries.some((e) => 'error' in e)) break;
    }
    parentPort!.postMessage({ done: true } satisfies ReaderMessage);
  }
}

function serve(): void {
  const reader = new SlabReader();
  parentPort!.on('message', (message: { job: ReadJob } | { slab: ArrayBuffer }) => {
    if ('job' in message) void reader.run(message.job);
    else reader.giveBack(message.slab);
  });
  // ready for a job: the main thread reads groups itself until then
  Atomics.store((workerData as { running: Int32Array }).running, 0, 1);
}

serve();
