/**
 * Node's modules that a command may never need, loaded on first use, not at
 * start-up: each of these costs a millisecond or more to load, and a small
 * day's merge takes some 35 ms beyond its bytes (`npm run bench -- --startup`).
 * require() keeps what it loaded, so later calls are a lookup.
 */
import { createRequire } from 'node:module';
import type * as WorkerThreads from 'node:worker_threads';
import type * as Zlib from 'node:zlib';

const requireHere = createRequire(import.meta.url);

/** node:zlib: CRC32 and deflate. */
export const zlib = () => requireHere('node:zlib') as typeof Zlib;
/** node:worker_threads: the reader, block and decoder threads. */
export const threads = () => requireHere('node:worker_threads') as typeof WorkerThreads;
