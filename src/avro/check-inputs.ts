import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { AvroFormatError } from './avro-format-error.js';
import { ByteReader } from './byte-reader.js';
import { decompressBlock } from './codec.js';
import { BlockFramer, parseWholeHeader, readBlocks, readHeader } from './container.js';
import { checkCodec, checkedSize } from './merge-inputs.js';
import { WHOLE_FILE_MAX, type MergeInput } from './merge-options.js';
import type { MergeWorkers } from './merge-workers.js';

/** Files checked at once (each is held in memory meanwhile: at most this x WHOLE_FILE_MAX). */
const FILES_IN_FLIGHT = 8;

/** One input's framing (header, codec, every block and sync marker, its size), and with `crc` every block's CRC. */
async function checkOne(input: MergeInput, workers: MergeWorkers, crc: boolean): Promise<void> {
  if ((input.size ?? 0) <= WHOLE_FILE_MAX) {
    const buf = checkedSize(input, await readFile(input.file));
    const { header, length } = parseWholeHeader(buf, input.name);
    checkCodec(header, input.name);
    if (crc) await workers.blocks.run({ kind: 'verify', blocks: buf.subarray(length), sync: header.sync, codec: header.codec, name: input.name });
    else new BlockFramer().forEachBlock(buf, length, header, input.name, () => {});
    return;
  }
  const reader = new ByteReader(createReadStream(input.file, { highWaterMark: 1024 * 1024 }));
  try {
    const header = await readHeader(reader, input.name);
    checkCodec(header, input.name);
    let index = 0;
    for await (const block of readBlocks(reader, header, input.name)) if (crc) decompressBlock(header.codec, block.data, input.name, index++);
  } finally {
    await reader.close();
  }
}

/**
 * Checks every input (CRCs on the block workers) and returns what is wrong
 * with each bad one, in input order. Used for inputs whose download had no
 * content check (with `crc`), and after a merge failed, so that a day's
 * message names all its bad objects, not only the first.
 */
export async function findBadInputs(inputs: MergeInput[], workers: MergeWorkers, options: { crc: boolean }): Promise<Error[]> {
  const found: { index: number; err: Error }[] = [];
  let next = 0;
  const worker = async () => {
    while (next < inputs.length) {
      const index = next++;
      await checkOne(inputs[index]!, workers, options.crc).catch((err: Error) => found.push({ index, err }));
    }
  };
  await Promise.all(Array.from({ length: Math.min(FILES_IN_FLIGHT, inputs.length) }, worker));
  return found.sort((a, b) => a.index - b.index).map((f) => f.err);
}

/** One error for all of them: the error itself when there is one. */
export function allBad(failures: Error[]): Error {
  return failures.length === 1 ? failures[0]! : new AvroFormatError(`${failures.length} bad objects`, failures.map((f) => f.message).join('; '));
}
