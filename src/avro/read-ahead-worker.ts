/**
 * Worker side of readAhead: reads the files of a job in order into slabs and
 * hands each full slab to the main thread, which hands it back once used.
 * Messages in: `{ job }` to start, `{ slab }` returning one. Out: `{ slab,
 * entries }`, then `{ done: true }`.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

export interface ReadJob {
  files: { file: string; size?: number }[];
  slabBytes: number;
  slabs: number;
}

/** Per file, in order: where its bytes are in the slab, or that the main thread must read it (too large), or why it could not be read. */
export type Entry = { index: number; start: number; end: number } | { index: number; tooLarge: true } | { index: number; error: { message: string; code?: string } };

export type ReaderMessage = { slab: ArrayBuffer; entries: Entry[] } | { done: true };

const free: ArrayBuffer[] = [];
let wake: (() => void) | undefined;

async function take(): Promise<ArrayBuffer> {
  while (free.length === 0) await new Promise<void>((resolve) => (wake = resolve));
  return free.pop()!;
}

async function run(job: ReadJob): Promise<void> {
  // slabs of an earlier job are reused when they have the size asked for
  const kept = free.filter((b) => b.byteLength === job.slabBytes);
  free.length = 0;
  free.push(...kept.slice(0, job.slabs));
  while (free.length < job.slabs) free.push(new ArrayBuffer(job.slabBytes));
  let slab = await take();
  let used = 0;
  let entries: Entry[] = [];
  const send = () => parentPort!.postMessage({ slab, entries } satisfies ReaderMessage, [slab]);
  for (const [index, { file, size }] of job.files.entries()) {
    let fd: number | undefined;
    try {
      fd = openSync(file, 'r');
      // one byte more than expected, so a file that grew is noticed
      const room = (size ?? fstatSync(fd).size) + 1;
      if (room > job.slabBytes) {
        entries.push({ index, tooLarge: true });
        continue;
      }
      if (used + room > job.slabBytes) {
        send();
        slab = await take();
        used = 0;
        entries = [];
      }
      const read = readSync(fd, new Uint8Array(slab, used, room), 0, room, 0);
      entries.push({ index, start: used, end: used + read });
      used += read;
    } catch (err) {
      entries.push({ index, error: { message: (err as Error).message, code: (err as NodeJS.ErrnoException).code } });
      break;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
  send();
  parentPort!.postMessage({ done: true } satisfies ReaderMessage);
}

parentPort!.on('message', (message: { job: ReadJob } | { slab: ArrayBuffer }) => {
  if ('job' in message) {
    void run(message.job);
  } else {
    free.push(message.slab);
    wake?.();
  }
});
