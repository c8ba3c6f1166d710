/**
 * Pulls exact byte counts and Avro varints out of a chunked stream (a file
 * stream or an S3 body). Holds at most one chunk plus the bytes asked for, so
 * memory is bounded by the stream's chunk size and the largest block.
 */
export class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private done = false;
  private readonly it: AsyncIterator<Uint8Array> | Iterator<Uint8Array>;
  /** Bytes consumed so far, for error messages. */
  offset = 0;

  /** A stream, or a list of buffers (a whole small file read at once). */
  constructor(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>) {
    this.it = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]();
  }

  /** Makes `n` bytes available; false if the stream ends first. */
  private async fill(n: number): Promise<boolean> {
    while (this.buf.length - this.pos < n) {
      if (this.done) return false;
      const next = await this.it.next();
      if (next.done) {
        this.done = true;
        return false;
      }
      const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
      this.buf = this.pos === this.buf.length ? chunk : Buffer.concat([this.buf.subarray(this.pos), chunk]);
      this.pos = 0;
    }
    return true;
  }

  /** Up to `n` bytes from the current position, without consuming them (fewer at the end of the stream). */
  async peek(n: number): Promise<Buffer> {
    await this.fill(n);
    return this.buf.subarray(this.pos, this.pos + n);
  }

  skip(n: number): void {
    this.pos += n;
    this.offset += n;
  }

  /** Exactly `n` bytes, or undefined when the stream ends first. */
  async read(n: number): Promise<Buffer | undefined> {
    if (!(await this.fill(n))) return undefined;
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    this.offset += n;
    return out;
  }

  /** A zig-zag varint long; undefined at a clean end of stream, throws on a cut one. */
  async readLong(): Promise<number | undefined> {
    await this.fill(10);
    if (this.pos >= this.buf.length) return undefined;
    const { value, length } = decodeLong(this.buf, this.pos);
    this.pos += length;
    this.offset += length;
    return value;
  }

  /** Stops reading the source (closes a file stream early). */
  async close(): Promise<void> {
    await this.it.return?.();
  }
}

export function decodeLong(buf: Buffer, pos: number): { value: number; length: number } {
  let n = 0;
  let scale = 1;
  let i = pos;
  for (;;) {
    if (i >= buf.length || i - pos >= 10) throw new RangeError('truncated or invalid varint');
    const b = buf[i++]!;
    n += (b & 0x7f) * scale;
    if (b < 0x80) break;
    scale *= 128;
  }
  const value = n % 2 === 0 ? n / 2 : -(n + 1) / 2;
  return { value, length: i - pos };
}

export function encodeLong(value: number): Buffer {
  let n = value >= 0 ? value * 2 : -value * 2 - 1;
  const bytes: number[] = [];
  while (n >= 0x80) {
    bytes.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  bytes.push(n);
  return Buffer.from(bytes);
}
