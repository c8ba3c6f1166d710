/**
 * Modules that a command may never need, loaded on first use, not at
 * start-up: Node's own cost a millisecond or more each, and a small day's
 * merge takes some 35 ms beyond its bytes (`npm run bench -- --startup`);
 * avsc, the snappy binding and DuckDB cost far more, and most runs never
 * touch them. Required, not imported: the bundled CLI runs in a vm script,
 * which has no dynamic import. require() keeps what it loaded, so later calls
 * are a lookup.
 */
import { createRequire } from 'node:module';
import type * as DuckDBBindings from '@duckdb/node-bindings';
import type * as DuckDB from '@duckdb/node-api';
import type avro from 'avsc';
import type * as WorkerThreads from 'node:worker_threads';
import type * as Zlib from 'node:zlib';
import type snappyLib from 'snappy';

const requireHere = createRequire(import.meta.url);

/** node:zlib: CRC32 and deflate. */
export const zlib = () => requireHere('node:zlib') as typeof Zlib;
/** node:worker_threads: the reader, block and decoder threads. */
export const threads = () => requireHere('node:worker_threads') as typeof WorkerThreads;
/** avsc: records of a schema other than the flat ones decoded here; a block copy of one schema never needs it. */
export const avsc = () => requireHere('avsc') as typeof avro;
/** The native snappy binding: a block copy never compresses or decompresses. */
export const snappy = () => requireHere('snappy') as typeof snappyLib;
/** DuckDB, the Parquet writer: the Avro path and the other commands never load it. */
export const duckdb = () => ({ bindings: requireHere('@duckdb/node-bindings') as typeof DuckDBBindings, api: requireHere('@duckdb/node-api') as typeof DuckDB });
