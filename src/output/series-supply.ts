/**
 * Where the Parquet writer takes a day's series from, one at a time and
 * synchronously (DuckDB's scan asks for rows from inside its callback, which
 * cannot wait for a promise). Decoding is most of a Parquet merge's work, so
 * it runs beside DuckDB's encoding:
 * - on a decoder thread (decode-worker.ts) for a day of DECODER_THREAD_MIN_BYTES
 *   or more: the main thread sorts and hands over, DuckDB encodes on its own;
 * - for a smaller day (a thread's start-up would cost more than it saves) on
 *   the main thread, an input at a time between DuckDB's requests.
 * At most READY_AHEAD decoded series wait: each is a series' day of columns.
 */
import type { MessagePort, Worker } from 'node:worker_threads';
import { threads } from '../shared/load-on-use.js';
import { ColumnData, transferable, type ColumnParts } from './avro-columns.js';
import type { DayInput } from './output-format.js';
import { avroSource, type Column, type Tally } from './series-source.js';

/** Inputs from this size on are decoded on a thread (its start-up, some 50 ms, is then a small part). */
export const DECODER_THREAD_MIN_BYTES = 8 * 1024 * 1024;
/** The shared counters' slots: series posted and taken, and a count the decoder thread raises as it works. */
export const [POSTED, TAKEN, ALIVE] = [0, 1, 2];
const READY_AHEAD = 2;
/** The decoder thread's heap (a small one is collected often, which keeps the day's peak low). */
const THREAD_HEAP_MB = 32;
/**
 * What one series' distinct string values may cost on the thread: about
 * 100,000 distinct values of some 40 bytes. A series past it (a text value
 * that differs on every record, at a high rate) would exhaust the thread's
 * heap; it throws TooLargeForThread instead, and the day is decoded on the
 * main thread.
 */
const THREAD_HEAP_BUDGET = 20 * 2 ** 20;
/** The main thread waits for the decoder thread this long without a sign of work before it calls the thread stopped. */
const STALLED_MS = 60_000;

/** What the decoder thread (decode-worker.ts) is given, and what it posts. */
export interface DecodeJob {
  inputs: DayInput[];
  port: MessagePort;
  /** [posted, taken, alive]: series posted and taken so far, and a count the worker raises as it works. */
  counters: Int32Array;
  ahead: number;
  /** Bytes a series' distinct values may cost on the thread's heap. */
  heapBudget: number;
}

export type DecodedMessage =
  | { series: ColumnParts[]; records: number; bytes: number }
  | { end: Pick<Tally, 'records' | 'bytesIn' | 'bad'> }
  | { error: { name: string; message: string } };

export interface SeriesSupply {
  /** The day's columns (the first input's schema). */
  readonly columns: Column[];
  /** Records and bytes read, and the inputs that could not be: complete once take() has returned undefined. */
  readonly tally: Tally;
  /** The next series' rows (unsorted), or undefined after the last. */
  take(): Map<string, ColumnData> | undefined;
  /** Hands back a series' columns once read, to be filled again. */
  giveBack(rows: Map<string, ColumnData>): void;
  stop(): Promise<void>;
  /** Why a decoder thread stopped, if it died. */
  readonly died?: Error;
}

export function seriesSupply(inputs: DayInput[], onInput?: (records: number, bytes: number) => void, thread = true): SeriesSupply {
  const total = inputs.reduce((n, i) => n + i.size, 0);
  return thread && total >= DECODER_THREAD_MIN_BYTES ? new DecoderThread(inputs, onInput) : new DecodedAhead(inputs, onInput);
}

/** The main thread decodes an input at a time whenever DuckDB's scan is not asking, and whatever is not ready when asked. */
class DecodedAhead implements SeriesSupply {
  readonly columns: Column[];
  readonly tally: Tally;
  private readonly steps: Iterator<Map<string, ColumnData> | undefined>;
  private readonly ready: Map<string, ColumnData>[] = [];
  private readonly pool: Map<string, ColumnData>[] = [];
  private done = false;
  private scheduled = false;
  private failure: Error | undefined;

  constructor(inputs: DayInput[], onInput?: (records: number, bytes: number) => void) {
    this.tally = { records: 0, bytesIn: 0, bad: [], onInput };
    const source = avroSource(inputs, this.tally, this.pool);
    this.columns = source.columns;
    this.steps = source.series[Symbol.iterator]();
  }

  take(): Map<string, ColumnData> | undefined {
    while (this.ready.length === 0 && !this.done) this.step();
    if (this.failure) throw this.failure;
    this.schedule();
    return this.ready.shift();
  }

  giveBack(rows: Map<string, ColumnData>): void {
    this.pool.push(rows);
  }

  stop(): Promise<void> {
    this.done = true;
    return Promise.resolve();
  }

  private step(): void {
    try {
      const next = this.steps.next();
      if (next.done) this.done = true;
      else if (next.value) this.ready.push(next.value);
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
      this.done = true;
    }
  }

  private schedule(): void {
    if (this.scheduled || this.done || this.ready.length >= READY_AHEAD) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.done || this.ready.length >= READY_AHEAD) return;
      this.step();
      this.schedule();
    });
  }
}

/** A decoder thread posts each series; take() reads the next message at once, sleeping on the shared counters until one is posted. */
class DecoderThread implements SeriesSupply {
  readonly columns: Column[];
  readonly tally: Tally = { records: 0, bytesIn: 0, bad: [] };
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly counters = new Int32Array(new SharedArrayBuffer(12));
  private ended = false;
  /** Why the thread stopped, when it did not end as it should (seen only between DuckDB's calls: take() blocks the event loop). */
  died: Error | undefined;

  constructor(
    inputs: DayInput[],
    private readonly onInput?: (records: number, bytes: number) => void,
  ) {
    // the columns from the first input's header, as the thread's source finds them
    this.columns = avroSource(inputs, { records: 0, bytesIn: 0, bad: [] }).columns;
    const { port1, port2 } = new (threads().MessageChannel)();
    this.port = port1;
    const job: DecodeJob = { inputs, port: port2, counters: this.counters, ahead: READY_AHEAD, heapBudget: THREAD_HEAP_BUDGET };
    this.worker = new (threads().Worker)(new URL('./decode-worker.js', import.meta.url), {
      workerData: job,
      transferList: [port2],
      resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: THREAD_HEAP_MB },
    });
    // a thread that dies (out of memory despite the budget) fails the day, not the process: take() stops waiting once it sees no work
    this.worker.on('error', (err) => (this.died = err));
    this.worker.unref();
  }

  take(): Map<string, ColumnData> | undefined {
    while (!this.ended) {
      const message = this.receive();
      if ('series' in message) {
        Atomics.add(this.counters, TAKEN, 1);
        Atomics.notify(this.counters, TAKEN);
        this.tally.records += message.records;
        this.tally.bytesIn += message.bytes;
        this.onInput?.(message.records, message.bytes);
        return new Map(this.columns.map((c, i) => [c.name, ColumnData.of(message.series[i]!)]));
      }
      this.ended = true;
      if ('error' in message) throw Object.assign(new Error(message.error.message), { name: message.error.name });
      // the thread's totals count inputs whose series failed part-way too; `bad` is filled, not replaced (the writer holds it)
      this.tally.records = message.end.records;
      this.tally.bytesIn = message.end.bytesIn;
      this.tally.bad.push(...message.end.bad);
    }
    return undefined;
  }

  /** The next message, waiting for it (the main thread sleeps: DuckDB has nothing else to do meanwhile). */
  private receive(): DecodedMessage {
    let [alive, since] = [Atomics.load(this.counters, ALIVE), Date.now()];
    for (;;) {
      const got = threads().receiveMessageOnPort(this.port);
      if (got) return got.message as DecodedMessage;
      const posted = Atomics.load(this.counters, POSTED);
      Atomics.wait(this.counters, POSTED, posted, 1000);
      const now = Atomics.load(this.counters, ALIVE);
      if (now !== alive) [alive, since] = [now, Date.now()];
      else if (Date.now() - since > STALLED_MS) throw new Error(`internal: the Parquet decoder thread did no work for ${STALLED_MS / 1000} s`);
    }
  }

  /** The arrays go back to the thread (moved, not copied), which fills them with a later series. */
  giveBack(rows: Map<string, ColumnData>): void {
    const parts = [...rows.values()].map((c) => c.parts());
    this.port.postMessage(parts, parts.flatMap(transferable));
  }

  async stop(): Promise<void> {
    this.port.close();
    await this.worker.terminate();
  }
}
