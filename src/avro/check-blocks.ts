import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { AvroFormatError } from './avro-format-error.js';
import { ByteReader } from './byte-reader.js';
import { decompressBlock } from './codec.js';
import { parseWholeHeader, readBlocks, readHeader } from './container.js';
import { WHOLE_FILE_MAX, type MergeInput } from './merge-options.js';
import type { MergeWorkers } from './merge-workers.js';

/** Files checked at once (each is held in memory meanwhile: at most this x WHOLE_FILE_MAX). */
const FILES_IN_FLIGHT = 8;

async function checkOne(input: MergeInput, workers: MergeWorkers): Promise<void> {
  if ((input.size ?? 0) <= WHOLE_FILE_MAX) {
    const buf = await readFile(input.file);
    const { header, length } = parseWholeHeader(buf, input.name);
    await workers.blocks.run({ kind: 'verify', blocks: buf.subarray(length), sync: header.sync, codec: header.codec, name: input.name });
    return;
  }
  const reader = new ByteReader(createReadStream(input.file, { highWaterMark: 1024 * 1024 }));
  try {
    const header = await readHeader(reader, input.name);
    let index = 0;
    for await (const block of readBlocks(reader, header, input.name)) decompressBlock(header.codec, block.data, input.name, index++);
  } finally {
    await reader.close();
  }
}

/**
 * Decompresses every block of each input and checks its CRC, on the block
 * workers: for inputs whose download had no content check (no checksum
 * returned and an ETag that is not an MD5). Every bad input is named.
 */
export async function checkBlocks(inputs: MergeInput[], workers: MergeWorkers): Promise<void> {
  const found: { index: number; err: Error }[] = [];
  let next = 0;
  const worker = async () => {
    while (next < inputs.length) {
      const index = next++;
      await checkOne(inputs[index]!, workers).catch((err: Error) => found.push({ index, err }));
    }
  };
  await Promise.all(Array.from({ length: Math.min(FILES_IN_FLIGHT, inputs.length) }, worker));
  const failures = found.sort((a, b) => a.index - b.index).map((f) => f.err);
  if (failures.length === 1) throw failures[0]!;
  if (failures.length > 1) {
    const detail = failures.map((f) => f.message).join('; ');
    throw new AvroFormatError(`${failures.length} objects`, `bad content: ${detail}`);
  }
}
