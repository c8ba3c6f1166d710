/**
 * output.dedupe: latest, for an Avro file: of the records that share
 * (seriesId, timeInSeconds, offsetInNanos), only the one with the largest
 * recordVersion is kept (a missing or null version is the smallest; between
 * equal versions, the first in the file).
 *
 * Two passes over the merged file, neither holding more than one block and
 * one series' records. The first reads each block's keys: for each series in
 * it, the first and last key and whether its keys rise. A block whose range
 * for a series meets another block's range for that series, or whose keys do
 * not rise, may hold a duplicate: it is "hot". The second pass copies every
 * other block as stored, and then, series by series, reads the hot blocks
 * again, keeps each key's latest record (its bytes as they were), and writes
 * them in new blocks. Exports of one series seldom overlap in time, so nearly
 * every block is copied.
 */
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import type avro from 'avsc';
import { avsc } from '../shared/load-on-use.js';
import { BlockCursor, flatFields, type FlatField } from './flat-schema.js';
import { AvroFormatError } from './avro-format-error.js';
import { ByteReader } from './byte-reader.js';
import { compressBlock, decompressBlock } from './codec.js';
import { readHeader, SYNC_SIZE, type ContainerHeader } from './container.js';
import { ContainerWriter } from './container-writer.js';

/** Records per block written for the deduplicated series. */
const BLOCK_RECORDS = 4096;

export const KEY_FIELDS = ['seriesId', 'timeInSeconds', 'offsetInNanos'] as const;

export interface DedupeResult {
  records: number;
  dropped: number;
  bytesOut: number;
  /** Blocks copied as stored, and blocks whose records were compared (hot). */
  copiedBlocks: number;
  hotBlocks: number;
}

/** A record's key and version, and where its bytes lie in the block. */
type Visit = (series: string, time: number, offset: number, version: number | bigint, start: number, end: number) => void;
type KeyReader = (raw: Buffer, count: number, visit: Visit) => void;

/** Where a series' keys in one block start and end, and whether they rise. */
interface Span {
  t0: number;
  o0: number;
  t1: number;
  o1: number;
  rising: boolean;
}

interface BlockInfo {
  /** Where its data starts in the file, and its size and count. */
  at: number;
  size: number;
  count: number;
  spans: Map<string, Span>;
  hot: boolean;
}

const before = (t: number, o: number, t2: number, o2: number) => t < t2 || (t === t2 && o < o2);

/** Writes `inFile` to `outFile` with each key's latest record only. */
export async function dedupeLatest(inFile: string, outFile: string, name: string, sync: Buffer): Promise<DedupeResult> {
  const { header, keys, blocks } = await scan(inFile, name);
  for (const b of blocks) for (const span of b.spans.values()) if (!span.rising) b.hot = true;
  markOverlaps(blocks);

  const inFd = openSync(inFile, 'r');
  const outFd = openSync(outFile, 'w');
  try {
    const writer = new ContainerWriter(outFd, sync);
    writer.writeHeader(header.schemaText, header.codec);
    let records = 0;
    const read = (b: BlockInfo) => {
      const data = Buffer.allocUnsafe(b.size);
      if (readSync(inFd, data, 0, b.size, b.at) !== b.size) throw new AvroFormatError(name, `block at byte ${b.at} was cut while being read`);
      return data;
    };
    for (const b of blocks) {
      if (b.hot) continue;
      writer.writeBlock(b.count, read(b));
      records += b.count;
    }
    const hot = blocks.filter((b) => b.hot);
    const hotSeries = [...new Set(hot.flatMap((b) => [...b.spans.keys()]))].sort();
    let dropped = 0;
    let cached: { block: BlockInfo; raw: Buffer } | undefined;
    for (const series of hotSeries) {
      const found: { time: number; offset: number; version: number | bigint; bytes: Buffer }[] = [];
      for (const b of hot) {
        if (!b.spans.has(series)) continue;
        if (cached?.block !== b) cached = { block: b, raw: decompressBlock(header.codec, read(b), name, blocks.indexOf(b)) };
        const raw = cached.raw;
        readKeys(keys, raw, b, name, (s, time, offset, version, start, end) => {
          if (s === series) found.push({ time, offset, version, bytes: raw.subarray(start, end) });
        });
      }
      // stable: between equal versions the first read stays first
      found.sort((a, b) => a.time - b.time || a.offset - b.offset || (b.version > a.version ? 1 : b.version < a.version ? -1 : 0));
      const kept = found.filter((r, i) => i === 0 || r.time !== found[i - 1]!.time || r.offset !== found[i - 1]!.offset);
      dropped += found.length - kept.length;
      for (let i = 0; i < kept.length; i += BLOCK_RECORDS) {
        const part = kept.slice(i, i + BLOCK_RECORDS);
        writer.writeBlock(part.length, compressBlock(header.codec, Buffer.concat(part.map((r) => r.bytes))));
      }
      records += kept.length;
    }
    writer.flush();
    return { records, dropped, bytesOut: writer.bytesWritten, copiedBlocks: blocks.length - hot.length, hotBlocks: hot.length };
  } finally {
    closeSync(inFd);
    closeSync(outFd);
  }
}

/** The first pass: each block's place, and the span of each series' keys in it. */
async function scan(file: string, name: string): Promise<{ header: ContainerHeader; keys: KeyReader; blocks: BlockInfo[] }> {
  const reader = new ByteReader(createReadStream(file, { highWaterMark: 1024 * 1024 }));
  try {
    const header = await readHeader(reader, name);
    const keys = keyReader(header, name);
    const blocks: BlockInfo[] = [];
    let index = 0;
    for (;;) {
      const start = reader.offset;
      const count = await reader.readLong();
      if (count === undefined) break;
      const size = await reader.readLong();
      const at = reader.offset;
      const data = size === undefined || size < 0 ? undefined : await reader.read(size);
      const marker = data && (await reader.read(SYNC_SIZE));
      if (!data || !marker || !marker.equals(header.sync)) throw new AvroFormatError(name, `truncated or corrupt block at byte ${start}`);
      const spans = new Map<string, Span>();
      const block = { at, size: size!, count, spans, hot: false };
      readKeys(keys, decompressBlock(header.codec, data, name, index++), block, name, (series, t, o) => {
        const span = spans.get(series);
        if (!span) spans.set(series, { t0: t, o0: o, t1: t, o1: o, rising: true });
        else {
          if (!before(span.t1, span.o1, t, o)) span.rising = false;
          if (before(t, o, span.t0, span.o0)) [span.t0, span.o0] = [t, o];
          if (before(span.t1, span.o1, t, o)) [span.t1, span.o1] = [t, o];
        }
      });
      blocks.push(block);
    }
    return { header, keys, blocks };
  } finally {
    await reader.close();
  }
}

function readKeys(keys: KeyReader, raw: Buffer, block: BlockInfo, name: string, visit: Visit): void {
  try {
    keys(raw, block.count, visit);
  } catch (err) {
    if (err instanceof AvroFormatError) throw err;
    throw new AvroFormatError(name, `a record of the block at byte ${block.at} cannot be read (${(err as Error).message})`);
  }
}

/** Marks hot every block whose span of a series meets another block's span of it (a shared key is a meeting). */
function markOverlaps(blocks: BlockInfo[]): void {
  const bySeries = new Map<string, { block: BlockInfo; span: Span }[]>();
  for (const block of blocks) {
    for (const [series, span] of block.spans) {
      const list = bySeries.get(series);
      if (list) list.push({ block, span });
      else bySeries.set(series, [{ block, span }]);
    }
  }
  for (const list of bySeries.values()) {
    if (list.length < 2) continue;
    list.sort((a, b) => a.span.t0 - b.span.t0 || a.span.o0 - b.span.o0);
    let group = [list[0]!];
    let end = list[0]!.span;
    const close = () => {
      if (group.length > 1) for (const g of group) g.block.hot = true;
    };
    for (const item of list.slice(1)) {
      if (!before(end.t1, end.o1, item.span.t0, item.span.o0)) {
        group.push(item);
        if (before(end.t1, end.o1, item.span.t1, item.span.o1)) end = item.span;
      } else {
        close();
        group = [item];
        end = item.span;
      }
    }
    close();
  }
}

/** How to read a record's key, version and length in this file's schema: a field skipper for flat schemas, avsc for others. */
function keyReader(header: ContainerHeader, name: string): KeyReader {
  let schema: { fields?: { name: string; type: unknown }[] };
  try {
    schema = JSON.parse(header.schemaText) as typeof schema;
  } catch (err) {
    throw new AvroFormatError(name, `invalid schema in header (${(err as Error).message})`);
  }
  const names = (schema.fields ?? []).map((f) => f.name);
  const missing = KEY_FIELDS.filter((k) => !names.includes(k));
  if (missing.length > 0) throw new AvroFormatError(name, `output.dedupe: latest needs the fields ${KEY_FIELDS.join(', ')}; its schema has no ${missing.join(', ')}`);
  const flat = flatFields(schema);
  return flat ? flatKeyReader(flat) : avscKeyReader(schema);
}

function flatKeyReader(fields: FlatField[]): KeyReader {
  const roles = fields.map((f) => ['seriesId', 'timeInSeconds', 'offsetInNanos', 'recordVersion'].indexOf(f.name));
  return (raw, count, visit) => {
    const cur = new BlockCursor(raw);
    let lastSeries = '';
    let lastStart = -1;
    let lastEnd = -1;
    for (let r = 0; r < count; r++) {
      const start = cur.pos;
      let series = '';
      let time = 0;
      let offset = 0;
      let version: number | bigint = -Infinity;
      for (let f = 0; f < fields.length; f++) {
        const field = fields[f]!;
        const type = field.branches.length === 1 ? field.branches[0]! : field.branches[cur.long()];
        let value: number | bigint = -Infinity;
        switch (type) {
          case 'null':
            break;
          case 'boolean':
            cur.pos += 1;
            break;
          case 'int':
          case 'long':
            // the version exactly (it may pass 2^53); a time and offset are within it
            value = roles[f] === 3 ? cur.exactLong() : cur.long();
            break;
          case 'float':
            cur.pos += 4;
            break;
          case 'double':
            cur.pos += 8;
            break;
          case 'string':
          case 'bytes': {
            const len = cur.long();
            if (roles[f] === 0) {
              // one string per run of records of one series, not one per record
              if (lastStart < 0 || len !== lastEnd - lastStart || raw.compare(raw, lastStart, lastEnd, cur.pos, cur.pos + len) !== 0) lastSeries = raw.toString('utf8', cur.pos, cur.pos + len);
              lastStart = cur.pos;
              lastEnd = cur.pos + len;
              series = lastSeries;
            }
            cur.pos += len;
            break;
          }
          default:
            throw new RangeError(`field ${field.name}: a union branch index out of range`);
        }
        if (roles[f] === 1) time = Number(value);
        else if (roles[f] === 2) offset = Number(value);
        else if (roles[f] === 3) version = value;
      }
      if (cur.pos > raw.length) throw new RangeError('a record runs past the end of its block');
      visit(series, time, offset, version, start, cur.pos);
    }
  };
}

function avscKeyReader(schema: object): KeyReader {
  const type = avsc().Type.forSchema(schema as avro.Schema, { wrapUnions: false });
  return (raw, count, visit) => {
    let pos = 0;
    for (let r = 0; r < count; r++) {
      const d = type.decode(raw, pos);
      if (d.offset < 0) throw new RangeError('a record runs past the end of its block');
      const v = d.value as Record<string, unknown>;
      visit(String(v.seriesId), Number(v.timeInSeconds), Number(v.offsetInNanos), typeof v.recordVersion === 'number' ? v.recordVersion : -Infinity, pos, d.offset);
      pos = d.offset;
    }
  };
}
