import os from 'node:os';
import type { Worker } from 'node:worker_threads';
import { threads } from '../shared/load-on-use.js';
import { AvroFormatError } from './avro-format-error.js';
import type { BlockReply, BlockTask } from './block-worker.js';

type Task = BlockTask extends infer T ? (T extends BlockTask ? Omit<T, 'id'> : never) : never;

const WORKER_YOUNG_GENERATION_MB = 4;

interface Slot {
  worker: Worker;
  pending: number;
}

/**
 * Worker threads, one per core, started on first use, that check and convert
 * blocks while the main thread reads and writes. A worker holds the process
 * open only while it has work; close() stops them all.
 */
export class BlockPool {
  private readonly slots: Slot[] = [];
  private readonly waiting = new Map<number, { resolve: (r: BlockReply) => void; reject: (e: Error) => void; slot: Slot }>();
  private nextId = 0;

  constructor(private readonly size = Math.max(1, os.availableParallelism())) {}

  /** `transfer`: buffers handed to the worker (no copy); they are unusable here afterwards. */
  run(task: Task, transfer: ArrayBuffer[] = []): Promise<BlockReply> {
    const slot = this.pickSlot();
    const id = this.nextId++;
    if (slot.pending++ === 0) slot.worker.ref();
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, slot });
      slot.worker.postMessage({ ...task, id }, transfer);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.splice(0).map((slot) => slot.worker.terminate()));
  }

  private pickSlot(): Slot {
    if (this.slots.length < this.size) {
      // A small young generation: the workers make short-lived block buffers, and a
      // default-sized one lets each of them hold tens of MB of garbage between scavenges.
      const worker = new (threads().Worker)(new URL('./block-worker.js', import.meta.url), { resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB } });
      const slot: Slot = { worker, pending: 0 };
      worker.on('message', (reply: BlockReply) => this.settle(reply));
      worker.on('error', (err) => this.fail(slot, err));
      worker.unref();
      this.slots.push(slot);
      return slot;
    }
    return this.slots.reduce((a, b) => (b.pending < a.pending ? b : a));
  }

  private settle(reply: BlockReply): void {
    const waiter = this.waiting.get(reply.id);
    if (!waiter) return;
    this.waiting.delete(reply.id);
    if (--waiter.slot.pending === 0) waiter.slot.worker.unref();
    if (reply.kind === 'error') waiter.reject(revive(reply.error));
    else waiter.resolve(reply);
  }

  /** A worker died (out of memory, a crash): fail its tasks and replace it on next use. */
  private fail(slot: Slot, err: Error): void {
    this.slots.splice(this.slots.indexOf(slot), 1);
    for (const [id, waiter] of this.waiting) {
      if (waiter.slot !== slot) continue;
      this.waiting.delete(id);
      waiter.reject(err);
    }
  }
}

function revive(e: { name: string; message: string; code?: string; file?: string; detail?: string }): Error {
  if (e.name === 'AvroFormatError' && e.file !== undefined && e.detail !== undefined) return new AvroFormatError(e.file, e.detail);
  return Object.assign(new Error(e.message), { name: e.name, code: e.code });
}
