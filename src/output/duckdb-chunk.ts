/**
 * Rows of ColumnData copied into a DuckDB data chunk (a vector of at most
 * 2,048 rows per column) through DuckDB's C API, without a JavaScript value
 * per row where it can be avoided:
 * - numbers and validity bits: one memory copy per column (an int64 is
 *   already two little-endian 32-bit words here, DuckDB's BIGINT layout);
 * - strings of at most 12 bytes: written as DuckDB's inlined `duckdb_string_t`
 *   (a 32-bit length, then the bytes, zero-padded to 16), one copy per column;
 * - a column that holds one value throughout the chunk (a series' id):
 *   a constant vector;
 * - other strings: one call per value.
 */
import type * as Bindings from '@duckdb/node-bindings';
import type { ColumnData } from './avro-columns.js';
import type { Column } from './series-source.js';

export const CHUNK_ROWS = 2048;

/** DuckDB's type for each kind of column. */
export function duckType(d: typeof Bindings, column: Column): Bindings.LogicalType {
  const types = { long: d.Type.BIGINT, int: d.Type.INTEGER, double: d.Type.DOUBLE, float: d.Type.FLOAT, boolean: d.Type.BOOLEAN, string: d.Type.VARCHAR, bytes: d.Type.BLOB };
  return d.create_logical_type(types[column.type]);
}

/** Inlined strings: the C API's duckdb_string_t for a value of at most this many bytes holds the bytes themselves. */
const INLINE_BYTES = 12;
const STRING_T = 16;

export class ChunkWriter {
  private readonly ints = new Int32Array(CHUNK_ROWS);
  private readonly floats = new Float32Array(CHUNK_ROWS);
  private readonly bools = new Uint8Array(CHUNK_ROWS);
  private readonly validity = new Uint8Array(CHUNK_ROWS / 8);
  private readonly strings = new Uint8Array(CHUNK_ROWS * STRING_T);
  private readonly stringView = new DataView(this.strings.buffer);

  constructor(private readonly d: typeof Bindings) {}

  /** Copies rows [at, at + n) of `column` into `vector`. */
  write(vector: Bindings.Vector, column: ColumnData, at: number, n: number): void {
    const d = this.d;
    const bits = this.validityOf(column.valid, at, n);
    const bytes = (n + 7) >> 3;
    let allValid = true;
    for (let b = 0; b < bytes - 1; b++) if (bits[b] !== 0xff) allValid = false;
    // the last byte's bits past n are not rows of this chunk
    const tailBits = (1 << (n - (bytes - 1) * 8)) - 1;
    if ((bits[bytes - 1]! & tailBits) !== tailBits) allValid = false;
    if (!allValid) {
      d.vector_ensure_validity_writable(vector);
      d.copy_data_to_vector_validity(vector, 0, bits.buffer as ArrayBuffer, bits.byteOffset, bytes);
    }
    switch (column.type) {
      case 'long':
        return d.copy_data_to_vector(vector, 0, column.words.buffer as ArrayBuffer, column.words.byteOffset + at * 8, n * 8);
      case 'double':
        return d.copy_data_to_vector(vector, 0, column.numbers.buffer as ArrayBuffer, column.numbers.byteOffset + at * 8, n * 8);
      case 'int':
      case 'float':
      case 'boolean': {
        const to = column.type === 'int' ? this.ints : column.type === 'float' ? this.floats : this.bools;
        const from = column.numbers;
        for (let i = 0; i < n; i++) to[i] = from[at + i]!;
        return d.copy_data_to_vector(vector, 0, to.buffer, 0, n * to.BYTES_PER_ELEMENT);
      }
      default:
        return this.writeStrings(vector, column, at, n, allValid);
    }
  }

  /** The validity bits of rows [at, at + n), from bit 0: a view where `at` is a multiple of 8 (a chunk's start in its series), else shifted into a copy (a row group's end cut the series there). */
  private validityOf(valid: Uint8Array, at: number, n: number): Uint8Array {
    const shift = at & 7;
    const first = at >> 3;
    if (shift === 0) return valid.subarray(first, first + ((n + 7) >> 3));
    const out = this.validity;
    for (let b = 0; b < (n + 7) >> 3; b++) out[b] = ((valid[first + b]! >> shift) | ((valid[first + b + 1] ?? 0) << (8 - shift))) & 0xff;
    return out;
  }

  private writeStrings(vector: Bindings.Vector, column: ColumnData, at: number, n: number, allValid: boolean): void {
    const d = this.d;
    const { codes, values } = column;
    const first = codes[at]!;
    let same = allValid;
    for (let i = at + 1; same && i < at + n; i++) same = codes[i] === first;
    if (same && values[first]!.length > INLINE_BYTES) {
      const value = values[first]!;
      return d.vector_reference_value(vector, column.type === 'bytes' ? d.create_blob(value) : d.create_varchar(Buffer.from(value.buffer, value.byteOffset, value.length).toString()));
    }
    const out = this.strings;
    out.fill(0, 0, n * STRING_T);
    const long: number[] = [];
    for (let i = 0; i < n; i++) {
      // a null row's code is whatever was there: its validity bit is what DuckDB reads
      if (!column.has(at + i)) continue;
      const value = values[codes[at + i]!]!;
      if (value.length > INLINE_BYTES) {
        long.push(i);
        continue;
      }
      this.stringView.setUint32(i * STRING_T, value.length, true);
      out.set(value, i * STRING_T + 4);
    }
    d.copy_data_to_vector(vector, 0, out.buffer, 0, n * STRING_T);
    for (const i of long) d.vector_assign_string_element_len(vector, i, values[codes[at + i]!]!);
  }
}
