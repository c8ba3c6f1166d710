import avro from 'avsc';
import { AvroFormatError } from './avro-format-error.js';
import { ByteReader } from './byte-reader.js';
import { decompressBlock } from './codec.js';
import { readBlocks, readHeader } from './container.js';

/**
 * Each record's encoded bytes, in file order, from an object-container stream.
 * Equal bytes under the same schema are equal records, so these make exact
 * fingerprints without building objects.
 */
export async function* readRecordSlices(source: AsyncIterable<Uint8Array>, name: string): AsyncGenerator<Buffer> {
  const reader = new ByteReader(source);
  try {
    const header = await readHeader(reader, name);
    const type = avro.Type.forSchema(JSON.parse(header.schemaText) as avro.Schema);
    let index = 0;
    for await (const block of readBlocks(reader, header, name)) {
      const raw = decompressBlock(header.codec, block.data, name, index++);
      let pos = 0;
      for (let i = 0; i < block.count; i++) {
        const { offset } = type.decode(raw, pos);
        if (offset < 0) throw new AvroFormatError(name, 'record runs past the end of its block');
        yield raw.subarray(pos, offset);
        pos = offset;
      }
    }
  } finally {
    await reader.close();
  }
}
