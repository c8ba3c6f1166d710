import type { Limiter } from '../shared/limit.js';
import type { ObjectInfo } from './object-store.js';

/**
 * A listing under way: its pages are fetched one after another from the
 * start (each request under `limit`, the run's bound on requests in flight)
 * and kept, and any number of readers take them as they come, or all at
 * once. A reader of the pages can start on the first keys while the last are
 * still being listed. Memory: the whole listing, as a plain list would hold.
 */
export class Listing {
  private readonly pages: ObjectInfo[][] = [];
  private finished = false;
  private failure: { error: unknown } | undefined;
  private waiting: (() => void)[] = [];

  constructor(source: AsyncIterable<ObjectInfo[]>, limit: Limiter = (task) => task()) {
    void this.fill(source, limit);
  }

  private async fill(source: AsyncIterable<ObjectInfo[]>, limit: Limiter): Promise<void> {
    const it = source[Symbol.asyncIterator]();
    try {
      for (;;) {
        const next = await limit(() => it.next());
        if (next.done) break;
        this.pages.push(next.value);
        this.wake();
      }
    } catch (error) {
      this.failure = { error };
    }
    this.finished = true;
    this.wake();
  }

  private wake(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ObjectInfo[]> {
    for (let i = 0; ; i++) {
      while (i >= this.pages.length && !this.finished) await new Promise<void>((resolve) => this.waiting.push(resolve));
      if (i < this.pages.length) yield this.pages[i]!;
      else if (this.failure) throw this.failure.error;
      else return;
    }
  }

  /** Every key, once the last page is in. */
  async all(): Promise<ObjectInfo[]> {
    const objects: ObjectInfo[] = [];
    for await (const page of this) objects.push(...page);
    return objects;
  }

  /** Whether the listing holds no key: known at the first key, or at its end. */
  async isEmpty(): Promise<boolean> {
    for await (const page of this) if (page.length > 0) return false;
    return true;
  }
}
