import { writeSync, writevSync } from 'node:fs';
import { encodeLong } from './byte-reader.js';
import { MAGIC } from './container.js';

/**
 * Writes an object-container file through a list of pending pieces, flushed in
 * synchronous writes: into the page cache these cost about what cat's writes
 * cost, where an asynchronous write pays a thread-pool round trip each.
 * Memory: about FLUSH_BYTES plus one block.
 */
export class ContainerWriter {
  private static readonly FLUSH_BYTES = 1024 * 1024;
  /** Below the kernel's IOV_MAX (1024) pieces per writev. */
  private static readonly FLUSH_PIECES = 512;
  /**
   * At most this much per write call. Linux (6.x) sizes the page-cache folios a
   * write allocates by the bytes it is given: 1 MiB writes take 1 MiB folios,
   * which the allocator often carves out of memory a VM has handed back to its
   * host (free page reporting), and filling those took 4-9 x longer (512 MB:
   * 0.8-1.3 s instead of 0.13 s, in half the runs). 256 KiB writes still did
   * at times beside a loopback S3 server; 128 KiB and 64 KiB writes never did
   * (64 KiB cost ~20 ms more per 512 MB in calls).
   */
  private static readonly WRITE_BYTES = 128 * 1024;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  bytesWritten = 0;

  constructor(private readonly fd: number, private readonly sync: Buffer) {}

  writeHeader(schemaText: string, codec: string): void {
    const entry = (k: string, v: Buffer) => [encodeLong(Buffer.byteLength(k)), Buffer.from(k), encodeLong(v.length), v];
    this.push([MAGIC, encodeLong(2), ...entry('avro.schema', Buffer.from(schemaText)), ...entry('avro.codec', Buffer.from(codec)), encodeLong(0), this.sync]);
  }

  writeBlock(count: number, data: Buffer): void {
    this.push([encodeLong(count), encodeLong(data.length), data, this.sync]);
  }

  /** Appends blocks already framed with this file's sync marker. */
  writeRaw(blocks: Buffer): void {
    this.push([blocks]);
  }

  flush(): void {
    let batch: Buffer[] = [];
    let batchBytes = 0;
    for (let piece of this.pending) {
      while (piece.length > 0) {
        const take = Math.min(piece.length, ContainerWriter.WRITE_BYTES - batchBytes);
        batch.push(piece.subarray(0, take));
        batchBytes += take;
        piece = piece.subarray(take);
        if (batchBytes === ContainerWriter.WRITE_BYTES) {
          this.writeAll(batch, batchBytes);
          batch = [];
          batchBytes = 0;
        }
      }
    }
    if (batchBytes > 0) this.writeAll(batch, batchBytes);
    this.pending = [];
    this.pendingBytes = 0;
  }

  private writeAll(pieces: Buffer[], bytes: number): void {
    const written = writevSync(this.fd, pieces);
    if (written < bytes) {
      // a short write (rare for regular files): write the rest piece by piece
      let rest = Buffer.concat(pieces, bytes).subarray(written);
      while (rest.length > 0) rest = rest.subarray(writeSync(this.fd, rest));
    }
    this.bytesWritten += bytes;
  }

  private push(parts: Buffer[]): void {
    for (const p of parts) {
      this.pending.push(p);
      this.pendingBytes += p.length;
    }
    if (this.pendingBytes >= ContainerWriter.FLUSH_BYTES || this.pending.length >= ContainerWriter.FLUSH_PIECES) this.flush();
  }
}
