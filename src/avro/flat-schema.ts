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
