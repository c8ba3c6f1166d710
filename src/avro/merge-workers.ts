import { BlockPool } from './block-pool.js';
import { ReaderThreads } from './read-ahead.js';

/**
 * The threads merges use, owned by whoever runs them (one per run): a reader
 * thread that reads and re-frames inputs ahead of the writer, and block
 * workers for CRC checks and conversions, each started on first use.
 */
export class MergeWorkers {
  readonly readers = new ReaderThreads();
  private pool: BlockPool | undefined;

  get blocks(): BlockPool {
    this.pool ??= new BlockPool();
    return this.pool;
  }

  async close(): Promise<void> {
    await this.readers.close();
    await this.pool?.close();
  }
}
