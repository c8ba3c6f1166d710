import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import avro from 'avsc';
import { ContainerWriter } from '../src/avro/container-writer.js';
import { mergeFiles, type MergeInput } from '../src/avro/merge-files.js';
import { MergeWorkers } from '../src/avro/merge-workers.js';
import { isRunning } from '../src/avro/read-ahead.js';
import { recordsOf } from './support/harness.js';
import { breakFirstCrc, decodeAvro, encodeAvro, generateDay, makeSeries, RAW_SCHEMA, recordKey, type ColdObject, type RawDatum } from './support/generate-cold-tier.js';

const DAY = { year: 2024, month: 3, day: 9 };
const SYNC = Buffer.alloc(16, 7);
let dir: string;
/** The threads of these merges, as a run's output format owns them. */
const workers = new MergeWorkers();

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'merge-test-'));
});
after(async () => {
  await workers.close();
  await rm(dir, { recursive: true, force: true });
});

async function writeInputs(objects: { key: string; body: Buffer }[]): Promise<MergeInput[]> {
  return Promise.all(
    objects.map(async (o, i) => {
      const file = path.join(dir, `in-${i}-${Math.random()}.avro`);
      await writeFile(file, o.body);
      return { file, name: o.key };
    }),
  );
}

/** A reader thread that has started, so that a merge hands it every group after the first at once. */
async function readerStarted(): Promise<void> {
  const reader = workers.readers.prestart();
  while (!isRunning(reader)) await new Promise((resolve) => setTimeout(resolve, 5));
}

function sortedKeys(records: RawDatum[]): string[] {
  return records.map(recordKey).sort();
}

describe('mergeFiles', () => {
  it('block-copies snappy inputs into one file with exactly their records', async () => {
    const objects = await generateDay(makeSeries({ associated: 6, disassociated: 3 }), DAY, { recordsPerFile: 50 });
    const out = path.join(dir, 'block.avro');
    const result = await mergeFiles(await writeInputs(objects), out, { sync: SYNC, workers });
    const merged = await decodeAvro(await readFile(out));
    assert.equal(result.path, 'block-copy');
    assert.equal(merged.codec, 'snappy');
    assert.deepEqual(sortedKeys(merged.records), sortedKeys(objects.flatMap((o) => o.records)));
    assert.equal(result.records, merged.records.length);
  });

  it('streams inputs larger than the whole-file limit, with the same result', async () => {
    const objects = await generateDay(makeSeries({ associated: 3, disassociated: 2 }, 4), DAY, { recordsPerFile: 30 });
    const inputs = await writeInputs(objects);
    await mergeFiles(inputs, path.join(dir, 'whole.avro'), { sync: SYNC, workers });
    const streamed = await mergeFiles(inputs, path.join(dir, 'streamed.avro'), { sync: SYNC, workers, wholeFileMax: 0 });
    assert.equal(streamed.records, recordsOf(objects).length);
    assert.deepEqual(await readFile(path.join(dir, 'streamed.avro')), await readFile(path.join(dir, 'whole.avro')));
  });

  it('gives the same bytes whether inputs are read into reused slabs (block copy) or their own memory (CRC checked)', async () => {
    const objects = await generateDay(makeSeries({ associated: 6, disassociated: 2 }, 7), DAY);
    const inputs = await writeInputs(objects);
    const largest = Math.max(...objects.map((o) => o.body.length));
    // slabs that hold one or two inputs: they are reused many times over, on the reader thread or on this one
    await readerStarted();
    const slabbed = await mergeFiles(inputs, path.join(dir, 'slabs.avro'), { sync: SYNC, workers, slabBytes: largest * 2 + 2, readerThreadMinBytes: 0 });
    await mergeFiles(inputs, path.join(dir, 'slabs-here.avro'), { sync: SYNC, workers, slabBytes: largest * 2 + 2, readerThreadMinBytes: Infinity });
    await mergeFiles(inputs, path.join(dir, 'own.avro'), { sync: SYNC, workers, checkCrc: true });
    assert.equal(slabbed.records, recordsOf(objects).length);
    assert.deepEqual(await readFile(path.join(dir, 'slabs.avro')), await readFile(path.join(dir, 'own.avro')));
    assert.deepEqual(await readFile(path.join(dir, 'slabs-here.avro')), await readFile(path.join(dir, 'own.avro')));
    assert.deepEqual(sortedKeys((await decodeAvro(await readFile(path.join(dir, 'slabs.avro')))).records), sortedKeys(recordsOf(objects)));
  });

  it('reports a bad input read ahead exactly as one read on its own: no block is re-framed before the whole file is checked', async () => {
    const objects = await generateDay(makeSeries({ associated: 4, disassociated: 1 }, 5), DAY, { recordsPerFile: 2000 });
    // inputs of two or more blocks (their sync marker: header + blocks), so a break in the last follows a block that is fine
    const syncMarkers = (body: Buffer) => body.toString('latin1').split(body.subarray(-16).toString('latin1')).length - 1;
    assert.ok(objects.every((o) => syncMarkers(o.body) >= 3));
    // slabs of one or two inputs: the first group is read on the main thread, the others on the reader thread
    // (once it has started; or on the main thread too, without one)
    const slabBytes = Math.max(...objects.map((o) => o.body.length)) * 2 + 2;
    const breaks = {
      'last sync marker': (body: Buffer) => Buffer.concat([body.subarray(0, -1), Buffer.from([body.at(-1)! ^ 0xff])]),
      'cut short': (body: Buffer) => body.subarray(0, -20),
    };
    for (const [what, spoil] of Object.entries(breaks)) {
      for (const at of [0, 1, 2, 3, objects.length - 1]) {
        const inputs = await writeInputs(objects.map((o, i) => (i === at ? { key: o.key, body: spoil(o.body) } : o)));
        const alone = await mergeFiles(inputs, path.join(dir, 'bad.avro'), { sync: SYNC, workers, checkCrc: true }).then(
          () => assert.fail('merged a broken input'),
          (err: Error) => err.message,
        );
        assert.match(alone, new RegExp(`^${objects[at]!.key}: (corrupt|truncated): block at byte \\d+`), `${what} at ${at}`);
        await readerStarted(); // (a failed job's reader thread is stopped)
        await assert.rejects(mergeFiles(inputs, path.join(dir, 'bad.avro'), { sync: SYNC, workers, slabBytes, readerThreadMinBytes: 0 }), (err: Error) => err.message === alone, `${what} at ${at}`);
        await assert.rejects(mergeFiles(inputs, path.join(dir, 'bad.avro'), { sync: SYNC, workers, slabBytes, readerThreadMinBytes: Infinity }), (err: Error) => err.message === alone, `${what} here at ${at}`);
      }
    }
  });

  it('finds a block whose CRC does not match, unless told not to check', async () => {
    const [first, ...rest] = await generateDay(makeSeries({ associated: 2, disassociated: 1 }, 6), DAY);
    const inputs = await writeInputs([{ key: first!.key, body: breakFirstCrc(first!.body) }, ...rest]);
    await assert.rejects(mergeFiles(inputs, path.join(dir, 'crc.avro'), { sync: SYNC, workers, checkCrc: true }), /CRC32 does not match/);
    await assert.rejects(mergeFiles(inputs, path.join(dir, 'crc.avro'), { sync: SYNC, workers, checkCrc: true, wholeFileMax: 0 }), /CRC32 does not match/);
    const unchecked = await mergeFiles(inputs, path.join(dir, 'crc.avro'), { sync: SYNC, workers });
    assert.equal(unchecked.records, recordsOf([first!, ...rest]).length);
  });

  it('is reproducible: same inputs and sync give the same bytes', async () => {
    const objects = await generateDay(makeSeries({ associated: 2, disassociated: 1 }), DAY);
    const inputs = await writeInputs(objects);
    await mergeFiles(inputs, path.join(dir, 'a.avro'), { sync: SYNC, workers });
    await mergeFiles(inputs, path.join(dir, 'b.avro'), { sync: SYNC, workers });
    assert.deepEqual(await readFile(path.join(dir, 'a.avro')), await readFile(path.join(dir, 'b.avro')));
  });

  it('recompresses inputs with another codec (transcode path)', async () => {
    const series = makeSeries({ associated: 2, disassociated: 2 });
    const snappyObjects = await generateDay(series, DAY, { exports: [0, 1] });
    const deflateObjects = await generateDay(series, DAY, { exports: [2], codec: 'deflate' });
    const nullObjects = await generateDay(series, DAY, { exports: [3], codec: 'null' });
    const all: ColdObject[] = [...snappyObjects, ...deflateObjects, ...nullObjects];
    const out = path.join(dir, 'transcode.avro');
    const result = await mergeFiles(await writeInputs(all), out, { sync: SYNC, workers });
    assert.equal(result.path, 'transcode');
    const merged = await decodeAvro(await readFile(out));
    assert.equal(merged.codec, 'snappy');
    assert.deepEqual(sortedKeys(merged.records), sortedKeys(all.flatMap((o) => o.records)));
  });

  it('decodes and re-encodes inputs with an older compatible schema (decode path)', async () => {
    const series = makeSeries({ associated: 3, disassociated: 1 });
    const current = await generateDay(series, DAY, { exports: [0, 1, 2] });
    // an older writer schema without recordVersion: resolves into the current one with null
    const oldSchema = { ...RAW_SCHEMA, fields: RAW_SCHEMA.fields.filter((f) => f.name !== 'recordVersion') };
    const oldType = avro.Type.forSchema(oldSchema as unknown as avro.Schema);
    const old = await generateDay(series, DAY, { exports: [3] });
    const oldObjects = await Promise.all(
      old.map(async (o) => {
        const records = o.records.map((r) => ({ ...r, recordVersion: null }));
        return { ...o, records, body: await encodeAvro(records.map(({ recordVersion: _v, ...rest }) => rest), 'snappy', oldType) };
      }),
    );
    const out = path.join(dir, 'decode.avro');
    const result = await mergeFiles(await writeInputs([...current, ...oldObjects]), out, { sync: SYNC, workers });
    assert.equal(result.path, 'decode');
    const merged = await decodeAvro(await readFile(out));
    assert.deepEqual(merged.schema, avro.Type.forSchema(RAW_SCHEMA as unknown as avro.Schema).schema());
    assert.deepEqual(sortedKeys(merged.records), sortedKeys([...current, ...oldObjects].flatMap((o) => o.records)));
  });

  it('writes every byte in order when pieces straddle its per-call write size (128 KiB)', async () => {
    const file = path.join(dir, 'writer.avro');
    const fd = openSync(file, 'w');
    const writer = new ContainerWriter(fd, SYNC);
    writer.writeHeader('"null"', 'null');
    writer.flush();
    const header = await readFile(file);
    const pieces = [1, 200 * 1024, 3, 128 * 1024, 1024 * 1024 + 7, 5, 64 * 1024].map((n) => randomBytes(n));
    for (const p of pieces) writer.writeRaw(p);
    writer.flush();
    closeSync(fd);
    const written = await readFile(file);
    assert.equal(writer.bytesWritten, written.length);
    assert.ok(written.equals(Buffer.concat([header, ...pieces])));
  });
});
