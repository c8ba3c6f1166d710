/**
 * Avro records of a flat schema (primitive fields, or unions of null and a
 * primitive, as SiteWise's raw and agg schemas are) decoded straight into
 * column arrays: no object per record and no JavaScript string per value
 * (strings stay UTF-8 bytes from the block to the Parquet page). This is the
 * Parquet path's decoder; avsc decodes the schemas it cannot (nested types),
 * whose records are then appended here value by value (appendValue).
 */
import { BlockCursor, type FlatField, type Primitive } from '../avro/flat-schema.js';

/** One column, growable: numbers (int64 as two 32-bit words), or UTF-8/bytes with offsets; a validity bit per row. */
export class ColumnData {
  length = 0;
  numbers: Float64Array;
  words: Int32Array;
  bytes: Uint8Array;
  byteLength = 0;
  offsets: Int32Array;
  valid: Uint8Array;

  constructor(
    readonly type: Exclude<Primitive, 'null'>,
    capacity = 1024,
  ) {
    this.numbers = new Float64Array(type === 'long' || type === 'string' || type === 'bytes' ? 0 : capacity);
    this.words = new Int32Array(type === 'long' ? capacity * 2 : 0);
    this.offsets = new Int32Array(type === 'string' || type === 'bytes' ? capacity + 1 : 0);
    this.bytes = new Uint8Array(type === 'string' || type === 'bytes' ? capacity * 16 : 0);
    this.valid = new Uint8Array((capacity + 7) >> 3);
  }

  grow1(): void {
    this.grow(1);
  }

  /** Stores row `at`'s int64 as two 32-bit words (no BigInt per value). */
  setLong(at: number, n: number): void {
    const hi = Math.floor(n / 4294967296);
    this.words[2 * at] = n - hi * 4294967296;
    this.words[2 * at + 1] = hi;
  }

  /** Appends a value as avsc decodes it (null, number, boolean, string, Buffer). */
  appendValue(v: unknown): void {
    if (v === null || v === undefined) return this.push(NULL_ROW, 0);
    if (this.type === 'string' || this.type === 'bytes') {
      const b = typeof v === 'string' ? Buffer.from(v) : (v as Buffer);
      return this.appendBytes(b, 0, b.length);
    }
    const at = this.length;
    this.grow(1);
    if (this.type === 'long') this.setLong(at, v as number);
    else this.numbers[at] = v === true ? 1 : v === false ? 0 : (v as number);
    this.valid[at >> 3]! |= 1 << (at & 7);
    this.length++;
  }

  /** Appends a non-null string or bytes value: `raw[start..end)`. */
  appendBytes(raw: Uint8Array, start: number, end: number): void {
    const at = this.length;
    this.grow(1, end - start);
    const bytes = this.bytes;
    let to = this.byteLength;
    // a loop for short values (a subarray is an object per value), one copy for long ones (series ids are 36-73 bytes)
    if (end - start > 24) {
      bytes.set(raw.subarray(start, end), to);
      to += end - start;
    } else for (let i = start; i < end; i++) bytes[to++] = raw[i]!;
    this.byteLength = to;
    this.offsets[at + 1] = this.byteLength;
    this.valid[at >> 3]! |= 1 << (at & 7);
    this.length++;
  }

  private grow(rows: number, bytes = 0): void {
    const need = this.length + rows;
    if (need > this.valid.length * 8) {
      const cap = Math.max(need, this.valid.length * 16);
      this.valid = copyInto(new Uint8Array((cap + 7) >> 3), this.valid);
      if (this.numbers.length) this.numbers = copyInto(new Float64Array(cap), this.numbers);
      if (this.words.length) this.words = copyInto(new Int32Array(cap * 2), this.words);
      if (this.offsets.length) this.offsets = copyInto(new Int32Array(cap + 1), this.offsets);
    }
    if (this.byteLength + bytes > this.bytes.length) this.bytes = copyInto(new Uint8Array(Math.max(this.byteLength + bytes, this.bytes.length * 2)), this.bytes.subarray(0, this.byteLength));
  }

  /** Appends row `i` of `from` (the same type). */
  push(from: ColumnData, i: number): void {
    const at = this.length;
    if ((from.valid[i >> 3]! >> (i & 7)) & 1) {
      if (this.offsets.length) {
        const start = from.offsets[i]!;
        const end = from.offsets[i + 1]!;
        this.grow(1, end - start);
        this.bytes.set(from.bytes.subarray(start, end), this.byteLength);
        this.byteLength += end - start;
      } else {
        this.grow(1);
        if (this.words.length) {
          this.words[2 * at] = from.words[2 * i]!;
          this.words[2 * at + 1] = from.words[2 * i + 1]!;
        } else this.numbers[at] = from.numbers[i]!;
      }
      this.valid[at >> 3]! |= 1 << (at & 7);
    } else this.grow(1);
    if (this.offsets.length) this.offsets[at + 1] = this.byteLength;
    this.length++;
  }

  /** Appends the rows of `from` (the same type) in the order `order` gives. */
  gather(from: ColumnData, order: ArrayLike<number>): void {
    const n = order.length;
    let bytes = 0;
    if (this.offsets.length) for (let k = 0; k < n; k++) bytes += from.offsets[order[k]! + 1]! - from.offsets[order[k]!]!;
    this.grow(n, bytes);
    const base = this.length;
    for (let k = 0; k < n; k++) {
      const i = order[k]!;
      const at = base + k;
      if ((from.valid[i >> 3]! >> (i & 7)) & 1) this.valid[at >> 3]! |= 1 << (at & 7);
    }
    // runs of consecutive rows (each input is in time order already, so a series' order is a few long runs) are copied at once
    for (let k = 0; k < n; ) {
      const first = order[k]!;
      let run = 1;
      while (k + run < n && order[k + run] === first + run) run++;
      const at = base + k;
      if (this.offsets.length) {
        const start = from.offsets[first]!;
        const end = from.offsets[first + run]!;
        this.bytes.set(from.bytes.subarray(start, end), this.byteLength);
        const shift = this.byteLength - start;
        for (let r = 1; r <= run; r++) this.offsets[at + r] = from.offsets[first + r]! + shift;
        this.byteLength += end - start;
      } else if (this.words.length) this.words.set(from.words.subarray(2 * first, 2 * (first + run)), 2 * at);
      else this.numbers.set(from.numbers.subarray(first, first + run), at);
      k += run;
    }
    this.length += n;
  }

  /** Whether row `i` holds a value (not null). */
  has(i: number): boolean {
    return ((this.valid[i >> 3]! >> (i & 7)) & 1) === 1;
  }

  /** A number of row `i` (int64 joined from its words), for sorting. */
  numberAt(i: number): number {
    return this.words.length ? this.words[2 * i + 1]! * 4294967296 + (this.words[2 * i]! >>> 0) : this.numbers[i]!;
  }

  reset(): void {
    this.length = 0;
    this.byteLength = 0;
    this.valid.fill(0);
  }
}

function copyInto<A extends Float64Array | Int32Array | Uint8Array>(to: A, from: A): A {
  to.set(from);
  return to;
}

/** Reads one block's records into `columns` (by field name; `fields` is the file's writer schema). Returns where the records end. */
export function decodeBlock(raw: Uint8Array, count: number, fields: FlatField[], columns: Map<string, ColumnData>): number {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const cur = new BlockCursor(raw);
  const targets = fields.map((f) => columns.get(f.name));
  // the day's columns this file has no field for are null in its rows
  const absent = [...columns.values()].filter((c) => !targets.includes(c));
  for (let r = 0; r < count; r++) {
    for (const column of absent) column.push(NULL_ROW, 0);
    for (let f = 0; f < fields.length; f++) {
      const field = fields[f]!;
      const column = targets[f];
      const type = field.branches.length === 1 ? field.branches[0]! : field.branches[cur.long()];
      if (type === undefined) throw new RangeError(`field ${field.name}: a union branch index out of range`);
      if (!column) throw new RangeError(`field ${field.name} is not a column of the day's schema`);
      const at = column.length;
      switch (type) {
        case 'null':
          column.push(NULL_ROW, 0);
          continue;
        case 'boolean':
          column.grow1();
          column.numbers[at] = raw[cur.pos++]!;
          break;
        case 'int':
          column.grow1();
          column.numbers[at] = cur.long();
          break;
        case 'long':
          column.grow1();
          column.setLong(at, cur.long());
          break;
        case 'float':
          column.grow1();
          column.numbers[at] = view.getFloat32(cur.pos, true);
          cur.pos += 4;
          break;
        case 'double':
          column.grow1();
          column.numbers[at] = view.getFloat64(cur.pos, true);
          cur.pos += 8;
          break;
        default: {
          const len = cur.long();
          if (len < 0 || cur.pos + len > raw.length) throw new RangeError(`field ${field.name}: a string runs past the end of its block`);
          column.appendBytes(raw, cur.pos, cur.pos + len);
          cur.pos += len;
          continue;
        }
      }
      column.valid[at >> 3]! |= 1 << (at & 7);
      column.length++;
    }
  }
  return cur.pos;
}

/** A one-row column whose row is null: pushed for a null value. */
const NULL_ROW = new ColumnData('int', 8);
