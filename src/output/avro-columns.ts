/**
 * Avro records of a flat schema (primitive fields, or unions of null and a
 * primitive, as SiteWise's raw and agg schemas are) decoded straight into
 * column arrays: no object per record and no JavaScript string per value.
 * A string or bytes column holds a code per row and each distinct value's
 * bytes once (a series' id and its quality repeat on every row). This is the
 * Parquet path's decoder; avsc decodes the schemas it cannot (nested types),
 * whose records are then appended here value by value (appendValue).
 */
import { BlockCursor, type FlatField, type Primitive } from '../avro/flat-schema.js';

/** One column, growable: numbers (int64 as two 32-bit words), or codes of distinct values; a validity bit per row. */
export class ColumnData {
  length = 0;
  numbers: Float64Array;
  words: Int32Array;
  codes: Int32Array;
  /** The distinct values of a string or bytes column, by code, and their bytes in all. */
  values: Uint8Array[] = [];
  valueBytes = 0;
  private codeOf = new Map<string, number>();
  private last = -1;
  private lastView: DataView | undefined;
  valid: Uint8Array;

  constructor(
    readonly type: Exclude<Primitive, 'null'>,
    rows = 1024,
  ) {
    // whole bytes of validity bits: ensure() takes their number as the room for values
    const capacity = roomFor(rows);
    const strings = type === 'string' || type === 'bytes';
    this.numbers = new Float64Array(type === 'long' || strings ? 0 : capacity);
    this.words = new Int32Array(type === 'long' ? capacity * 2 : 0);
    this.codes = new Int32Array(strings ? capacity : 0);
    this.valid = new Uint8Array((capacity + 7) >> 3);
  }

  /** Stores row `at`'s int64 as two 32-bit words (no BigInt per value). */
  setLong(at: number, n: number): void {
    const hi = Math.floor(n / 4294967296);
    this.words[2 * at] = n - hi * 4294967296;
    this.words[2 * at + 1] = hi;
  }

  /** The code of the value raw[start..end) (`view` over raw): the last row's (one compare: a series' id and quality come in runs), a known one's, or a new one's. */
  code(raw: Uint8Array, view: DataView, start: number, end: number): number {
    const last = this.lastView;
    const length = end - start;
    if (last !== undefined && last.byteLength === length) {
      // four bytes at a time: a third of the time of a byte loop on a series id
      let k = 0;
      while (k + 4 <= length && last.getInt32(k) === view.getInt32(start + k)) k += 4;
      if (k + 4 > length) {
        while (k < length && last.getUint8(k) === raw[start + k]) k++;
        if (k === length) return this.last;
      }
    }
    // latin1: one character per byte, so equal keys are equal bytes
    const key = Buffer.from(raw.buffer, raw.byteOffset + start, length).toString('latin1');
    let code = this.codeOf.get(key);
    if (code === undefined) {
      code = this.values.length;
      // a copy: a view would hold the whole block
      this.values.push(Uint8Array.prototype.slice.call(raw, start, end));
      this.valueBytes += length;
      this.codeOf.set(key, code);
    }
    const value = this.values[code]!;
    this.last = code;
    this.lastView = new DataView(value.buffer, value.byteOffset, value.byteLength);
    return code;
  }

  /** Appends a value as avsc decodes it (null, number, boolean, string, Buffer). */
  appendValue(v: unknown): void {
    const at = this.length;
    this.ensure(1);
    this.length++;
    if (v === null || v === undefined) return;
    if (this.type === 'string' || this.type === 'bytes') {
      const b = typeof v === 'string' ? Buffer.from(v) : (v as Buffer);
      this.codes[at] = this.code(b, new DataView(b.buffer, b.byteOffset, b.length), 0, b.length);
    } else if (this.type === 'long') this.setLong(at, v as number);
    else this.numbers[at] = v === true ? 1 : v === false ? 0 : (v as number);
    this.valid[at >> 3]! |= 1 << (at & 7);
  }

  /** Room for `rows` more rows (their validity bits cleared). */
  ensure(rows: number): void {
    const need = this.length + rows;
    if (need <= this.valid.length * 8) return;
    const cap = roomFor(Math.max(need, this.valid.length * 16));
    this.valid = copyInto(new Uint8Array((cap + 7) >> 3), this.valid);
    if (this.numbers.length) this.numbers = copyInto(new Float64Array(cap), this.numbers);
    if (this.words.length) this.words = copyInto(new Int32Array(cap * 2), this.words);
    if (this.codes.length) this.codes = copyInto(new Int32Array(cap), this.codes);
  }

  /** Appends the rows of `from` (the same type, whose distinct values this column then shares) in the order `order` gives. */
  gather(from: ColumnData, order: ArrayLike<number>): void {
    const n = order.length;
    this.ensure(n);
    const base = this.length;
    const [fromValid, valid] = [from.valid, this.valid];
    for (let k = 0; k < n; k++) {
      const i = order[k]!;
      const at = base + k;
      if ((fromValid[i >> 3]! >> (i & 7)) & 1) valid[at >> 3]! |= 1 << (at & 7);
    }
    if (this.codes.length) {
      this.values = from.values;
      this.codeOf = from.codeOf;
    }
    // runs of consecutive rows (each input is in time order already, so a series' order is a few long runs) are copied at once
    for (let k = 0; k < n; ) {
      const first = order[k]!;
      let run = 1;
      while (k + run < n && order[k + run] === first + run) run++;
      const at = base + k;
      if (this.codes.length) this.codes.set(from.codes.subarray(first, first + run), at);
      else if (this.words.length) this.words.set(from.words.subarray(2 * first, 2 * (first + run)), 2 * at);
      else this.numbers.set(from.numbers.subarray(first, first + run), at);
      k += run;
    }
    this.length += n;
  }

  /** Whether row `i` holds a value (not null). */
  has(i: number): boolean {
    return ((this.valid[i >> 3]! >> (i & 7)) & 1) === 1;
  }

  /** Row `i`'s long exactly: a number within 2^53, a BigInt beyond (`<` and `>` compare the two exactly). */
  longAt(i: number): number | bigint {
    const [lo, hi] = [this.words[2 * i]! >>> 0, this.words[2 * i + 1]!];
    return hi >= -0x200000 && hi < 0x200000 ? hi * 4294967296 + lo : (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** A number of row `i` (int64 joined from its words, exact within 2^53), for sorting. */
  numberAt(i: number): number {
    return this.words.length ? this.words[2 * i + 1]! * 4294967296 + (this.words[2 * i]! >>> 0) : this.numbers[i]!;
  }

  /** What crosses to another thread: the arrays (transferred) and the distinct values (copied). */
  parts(): ColumnParts {
    return { type: this.type, length: this.length, numbers: this.numbers, words: this.words, codes: this.codes, values: this.values, valid: this.valid };
  }

  static of(parts: ColumnParts): ColumnData {
    const c = new ColumnData(parts.type, 0);
    Object.assign(c, { length: parts.length, numbers: parts.numbers, words: parts.words, codes: parts.codes, values: parts.values, valid: parts.valid });
    return c;
  }

  reset(): void {
    this.length = 0;
    this.valid.fill(0);
    if (this.codes.length) {
      // new ones: a column gathered from this one keeps the old
      this.values = [];
      this.valueBytes = 0;
      this.codeOf = new Map();
      this.last = -1;
      this.lastView = undefined;
    }
  }
}

export type ColumnParts = Pick<ColumnData, 'type' | 'length' | 'numbers' | 'words' | 'codes' | 'values' | 'valid'>;

/** The buffers of `parts` that can move to another thread without a copy. */
export const transferable = (parts: ColumnParts): ArrayBuffer[] => [parts.numbers, parts.words, parts.codes, parts.valid].map((a) => a.buffer as ArrayBuffer);

/** Rows rounded up to a whole byte of validity bits: room for a row's bit is then room for its value. */
const roomFor = (rows: number) => (rows + 7) & ~7;

function copyInto<A extends Float64Array | Int32Array | Uint8Array>(to: A, from: A): A {
  to.set(from);
  return to;
}

/** How a field's non-null values are stored, as small integers for the decoder's switch. */
const KIND: Record<Exclude<Primitive, 'null'>, number> = { boolean: 0, int: 1, long: 2, float: 3, double: 4, string: 5, bytes: 5 };

/** Reads one block's records into `columns` (by field name; `fields` is the file's writer schema). Returns where the records end. */
export function decodeBlock(raw: Uint8Array, count: number, fields: FlatField[], columns: Map<string, ColumnData>): number {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const end = raw.length;
  const nf = fields.length;
  const targets: ColumnData[] = [];
  const kinds = new Int8Array(nf);
  // per field: the branch index that is null (-1 when none), and how many branches (a branch index precedes each value of more than one)
  const nullBranch = new Int8Array(nf);
  const branches = new Int8Array(nf);
  for (const [f, field] of fields.entries()) {
    const column = columns.get(field.name);
    if (!column) throw new RangeError(`field ${field.name} is not a column of the day's schema`);
    targets.push(column);
    const type = field.branches.find((b) => b !== 'null') ?? 'null';
    kinds[f] = type === 'null' ? -1 : KIND[type];
    nullBranch[f] = field.branches.indexOf('null');
    branches[f] = field.branches.length;
  }
  // the day's columns this file has no field for are null in its rows
  const absent = [...columns.values()].filter((c) => !targets.includes(c));
  for (const c of columns.values()) c.ensure(count);
  const cur = new BlockCursor(raw);
  for (let r = 0; r < count; r++) {
    for (const column of absent) column.length++;
    for (let f = 0; f < nf; f++) {
      const column = targets[f]!;
      const at = column.length++;
      if (branches[f]! > 1) {
        const branch = cur.long();
        if (branch < 0 || branch >= branches[f]!) throw new RangeError(`field ${fields[f]!.name}: a union branch index out of range`);
        if (branch === nullBranch[f]) continue;
      }
      switch (kinds[f]) {
        case -1:
          continue;
        case 0:
          if (cur.pos >= end) throw new RangeError('a record runs past the end of its block');
          column.numbers[at] = raw[cur.pos++]!;
          break;
        case 1:
          column.numbers[at] = cur.long();
          break;
        case 2:
          cur.longInto(column.words, at);
          break;
        case 3:
          if (cur.pos + 4 > end) throw new RangeError('a record runs past the end of its block');
          column.numbers[at] = view.getFloat32(cur.pos, true);
          cur.pos += 4;
          break;
        case 4:
          if (cur.pos + 8 > end) throw new RangeError('a record runs past the end of its block');
          column.numbers[at] = view.getFloat64(cur.pos, true);
          cur.pos += 8;
          break;
        default: {
          const len = cur.long();
          if (len < 0 || cur.pos + len > end) throw new RangeError(`field ${fields[f]!.name}: a string runs past the end of its block`);
          column.codes[at] = column.code(raw, view, cur.pos, cur.pos + len);
          cur.pos += len;
        }
      }
      column.valid[at >> 3]! |= 1 << (at & 7);
    }
  }
  return cur.pos;
}
