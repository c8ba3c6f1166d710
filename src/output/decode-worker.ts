/**
 * Worker side of the Parquet writer's decoder thread (series-supply.ts):
 * decodes a day's Avro inputs series by series (series-source.ts) and posts
 * each series' columns to the main thread, their arrays transferred, not
 * copied; the main thread gives them back the same way once read, to be
 * filled again. At most `ahead` series wait unread: past that it sleeps on
 * the shared counters until the main thread takes one. Messages out (on
 * `workerData.port`): `{ series, records, bytes }` per series, then
 * `{ end: { records, bytesIn, bad } }`, or `{ error: { name, message } }`.
 */
import { receiveMessageOnPort, workerData } from 'node:worker_threads';
import { ColumnData, transferable, type ColumnParts } from './avro-columns.js';
import { avroSource, type ColumnsPool, type Tally } from './series-source.js';
import { ALIVE, POSTED, TAKEN, type DecodedMessage, type DecodeJob } from './series-supply.js';

const { inputs, port, counters, ahead, heapBudget } = workerData as DecodeJob;

function post(message: DecodedMessage, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
  Atomics.add(counters, POSTED, 1);
  Atomics.notify(counters, POSTED);
}

try {
  let [records, bytes] = [0, 0];
  const tally: Tally = { records: 0, bytesIn: 0, bad: [], onInput: (r, b) => ((records += r), (bytes += b)) };
  // columns the main thread has handed back, filled again before new ones are made
  const pool: ColumnsPool = {
    pop: () => {
      const back = receiveMessageOnPort(port)?.message as ColumnParts[] | undefined;
      return back && new Map(back.map((parts, i) => [columns[i]!.name, ColumnData.of(parts)]));
    },
  };
  const source = avroSource(inputs, tally, pool, heapBudget);
  const { columns } = source;
  for (const rows of source.series) {
    Atomics.add(counters, ALIVE, 1);
    if (rows === undefined) continue;
    // at most `ahead` series unread: each is a series' day of columns in memory
    for (;;) {
      const taken = Atomics.load(counters, TAKEN);
      if (Atomics.load(counters, POSTED) - taken < ahead) break;
      Atomics.wait(counters, TAKEN, taken, 1000);
    }
    const series = [...rows.values()].map((c) => c.parts());
    post({ series, records, bytes }, series.flatMap(transferable));
    [records, bytes] = [0, 0];
  }
  post({ end: { records: tally.records, bytesIn: tally.bytesIn, bad: tally.bad } });
} catch (err) {
  const e = err instanceof Error ? err : new Error(String(err));
  post({ error: { name: e.name, message: e.message } });
}
