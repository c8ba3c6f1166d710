#!/bin/sh
// (bundle.mjs puts the line that starts Node after this one: it gives Node a smaller young
// generation than the default, so peak memory stays well under 200 MB)
/**
 * The bin. Runs the bundled CLI (cli.cjs beside it) through a V8 code cache
 * kept next to it, so every start after the first skips compiling the bundle:
 * about 30 ms of a 0.25 s start on the machine the README's figures come from.
 * (Node 22 can do this itself, module.enableCompileCache; the project supports
 * Node 20.) V8 checks a cache against the source and its own version and flags,
 * and one it rejects is replaced; one that cannot be written (a read-only
 * install) is simply not kept. A cache holds the functions its run compiled, so
 * each command keeps its own: a merge after a first `--help` would otherwise
 * compile most of its code at every start (some 7 ms of a small day's merge).
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

const file = fileURLToPath(new URL('./cli.cjs', import.meta.url));
/** The commands with a cache of their own; anything else (help, version, a typo) shares one. */
const COMMANDS = ['download', 'merge', 'repartition', 'upload', 'run', 'compact', 'athena-ddl', 'completion'];
const command = process.argv.slice(2).find((a) => COMMANDS.includes(a)) ?? 'other';
const cacheFile = `${file}.${command}.v8-cache`;
function readCache(): Buffer | undefined {
  try {
    return readFileSync(cacheFile);
  } catch {
    return undefined; // first start: written at exit
  }
}
const cachedData = readCache();
const source = readFileSync(file, 'utf8');
const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: file, cachedData });
if (!cachedData || script.cachedDataRejected) {
  // at exit, so the functions this run compiled are in it too
  process.once('exit', () => {
    const tmp = `${cacheFile}.${process.pid}`;
    try {
      writeFileSync(tmp, script.createCachedData());
      renameSync(tmp, cacheFile);
    } catch {
      // read-only: start without a cache next time as well
    }
  });
}
const cjsModule = { exports: {} };
(script.runInThisContext() as (...args: unknown[]) => void)(cjsModule.exports, createRequire(file), cjsModule, file, path.dirname(file));
