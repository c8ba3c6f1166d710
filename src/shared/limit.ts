/** Runs a task when a place is free; of the tasks waiting, those of the lowest `priority` first (default 0), in order of arrival. */
export type Limiter = <T>(task: () => Promise<T>, priority?: number) => Promise<T>;

/** Runs at most `n` of the given tasks at once: the waiting ones by priority, then in order of arrival. */
export function createLimiter(n: number): Limiter {
  let active = 0;
  const waiting: { priority: number; start: () => void }[] = [];
  return async <T>(task: () => Promise<T>, priority = 0): Promise<T> => {
    if (active < n) active++;
    else {
      // the place is handed over by the task that ends (still counted): none arriving meanwhile can take it
      await new Promise<void>((start) => {
        let at = waiting.length;
        while (at > 0 && waiting[at - 1]!.priority > priority) at--;
        waiting.splice(at, 0, { priority, start });
      });
    }
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next) next.start();
      else active--;
    }
  };
}

/** `limit` with every task at `priority`. */
export const atPriority =
  (limit: Limiter, priority: number): Limiter =>
  (task) =>
    limit(task, priority);

/**
 * Maps with at most `n` tasks in flight. On the first failure no new task is
 * started; the ones running are awaited, then the first error is thrown.
 */
export async function mapLimit<T, R>(items: readonly T[], n: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!, i);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  if (failure) throw failure.error;
  return results;
}

/**
 * mapLimit over items that arrive in batches (a listing's pages): work on a
 * batch starts as it comes. On the first failure, of a task or of the
 * batches, no new task is started; the ones running are awaited, then the
 * first error is thrown.
 */
export async function forEachLimit<T>(batches: AsyncIterable<readonly T[]>, n: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue: T[] = [];
  let next = 0;
  let ended = false;
  let failure: { error: unknown } | undefined;
  let idle: (() => void)[] = [];
  const wake = () => {
    const waiting = idle;
    idle = [];
    for (const resolve of waiting) resolve();
  };
  const worker = async () => {
    for (;;) {
      while (next >= queue.length && !ended && !failure) await new Promise<void>((resolve) => idle.push(resolve));
      if (failure || next >= queue.length) return;
      try {
        await fn(queue[next++]!);
      } catch (error) {
        failure ??= { error };
        wake();
      }
    }
  };
  const workers = Array.from({ length: n }, worker);
  try {
    for await (const batch of batches) {
      if (failure) break;
      queue.push(...batch);
      wake();
    }
  } catch (error) {
    failure ??= { error };
  }
  ended = true;
  wake();
  await Promise.all(workers);
  if (failure) throw failure.error;
}
