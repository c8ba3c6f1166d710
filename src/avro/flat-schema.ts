/**
 * Flat Avro record schemas (every field a primitive, or a union of null and
 * one primitive), as SiteWise's raw and agg schemas are: what the columnar
 * decoder (output/avro-columns.ts) and dedupe's key reader walk field by
 * field without avsc.
 */
export type Primitive = 'null' | 'boolean' | 'int' | 'long' | 'float' | 'double' | 'bytes' | 'string';
const PRIMITIVES: readonly string[] = ['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string'];

/** A field of the flat schema: its name and the union branches it may take (one for a plain field). */
export interface FlatField {
  name: string;
  branches: Primitive[];
}

/** The schema's fields if it is flat (every field a primitive or a union of primitives), else undefined. */
export function flatFields(schema: { fields?: { name: string; type: unknown }[] }): FlatField[] | undefined {
  const fields: FlatField[] = [];
  for (const f of schema.fields ?? []) {
    const branches = (Array.isArray(f.type) ? f.type : [f.type]).map((t: unknown) => (typeof t === 'string' ? t : (t as { type?: unknown })?.type));
    if (!branches.every((b): b is Primitive => typeof b === 'string' && PRIMITIVES.includes(b))) return undefined;
    // the columnar kinds take one non-null type per field
    if (new Set(branches.filter((b) => b !== 'null')).size !== 1) return undefined;
    fields.push({ name: f.name, branches });
  }
  return fields.length > 0 ? fields : undefined;
}

/**
 * A position in a decompressed block, reading Avro's zig-zag varint longs
 * without an object per value: the record walkers of the columnar decoder
 * and of dedupe share it.
 */
export class BlockCursor {
  pos = 0;

  constructor(readonly raw: Uint8Array) {}

  long(): number {
    const raw = this.raw;
    let p = this.pos;
    // the checks once when ten bytes (the longest varint) remain; the first 28 bits in integer arithmetic
    if (p + 10 > raw.length) return this.longNearEnd();
    let b = raw[p++]!;
    let n = b & 0x7f;
    if (b >= 0x80) {
      b = raw[p++]!;
      n |= (b & 0x7f) << 7;
      if (b >= 0x80) {
        b = raw[p++]!;
        n |= (b & 0x7f) << 14;
        if (b >= 0x80) {
          b = raw[p++]!;
          n |= (b & 0x7f) << 21;
          let scale = 2 ** 28;
          while (b >= 0x80) {
            if (scale > 2 ** 63) throw new RangeError('a varint longer than 10 bytes');
            b = raw[p++]!;
            n += (b & 0x7f) * scale;
            scale *= 128;
          }
        }
      }
    }
    this.pos = p;
    return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
  }

  /**
   * A long exactly, over the whole 64-bit range: a number where it is within
   * 2^52, else a BigInt (`<` and `>` compare the two exactly). long() is
   * exact only up to 2^53, and turns negative values below -2^52 positive.
   */
  exactLong(): number | bigint {
    const start = this.pos;
    const n = this.long();
    if (Math.abs(n) < 2 ** 52) return n;
    let u = 0n;
    for (let p = start, shift = 0n; p < this.pos; p++, shift += 7n) u |= BigInt(this.raw[p]! & 0x7f) << shift;
    u = BigInt.asUintN(64, u);
    return u & 1n ? -(u >> 1n) - 1n : u >> 1n;
  }

  /** A long into words[2 at] (its low 32 bits) and words[2 at + 1] (its high 32 bits), exact over the whole 64-bit range. */
  longInto(words: Int32Array, at: number): void {
    const raw = this.raw;
    let p = this.pos;
    let [lo, hi, shift, b] = [0, 0, 0, 0x80];
    while (b >= 0x80) {
      if (p >= raw.length) throw new RangeError('a record runs past the end of its block');
      if (shift > 63) throw new RangeError('a varint longer than 10 bytes');
      b = raw[p++]!;
      const v = b & 0x7f;
      if (shift < 32) {
        lo |= v << shift;
        // the fifth byte's top 3 bits are bits 32-34
        if (shift > 25) hi |= v >>> (32 - shift);
      } else hi |= v << (shift - 32);
      shift += 7;
    }
    this.pos = p;
    // zig-zag, over both words
    const negative = lo & 1;
    lo = (lo >>> 1) | (hi << 31);
    hi >>>= 1;
    words[2 * at] = negative ? ~lo : lo;
    words[2 * at + 1] = negative ? ~hi : hi;
  }

  /** long() near the end of the block, each byte checked. */
  private longNearEnd(): number {
    const raw = this.raw;
    let n = 0;
    let scale = 1;
    for (;;) {
      if (this.pos >= raw.length) throw new RangeError('a record runs past the end of its block');
      const b = raw[this.pos++]!;
      n += (b & 0x7f) * scale;
      if (b < 0x80) break;
      scale *= 128;
      if (scale > 2 ** 63) throw new RangeError('a varint longer than 10 bytes');
    }
    return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
  }
}
