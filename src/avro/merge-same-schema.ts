import { slabInputSource } from './input-source.js';
import { checkCodec, checkedSize, closeInput, HeaderReader, openInput, validSchemaText, type Opened, type Schemas } from './merge-inputs.js';
import { READER_THREAD_MIN_BYTES, SLAB_BYTES, WHOLE_FILE_MAX, type MergeInput, type MergeOptions, type MergeResult } from './merge-options.js';
import { OutputFile } from './output-file.js';

/**
 * One pass, the normal case: every input has the first one's schema text and
 * its blocks are copied. Undefined (the output abandoned) as soon as an input
 * has another schema.
 */
export async function mergeSameSchema(inputs: MergeInput[], outFile: string, options: MergeOptions, schemas: Schemas): Promise<MergeResult | undefined> {
  let out: OutputFile | undefined;
  let schemaText: string | undefined;
  const headers = new HeaderReader();
  const wholeFileMax = options.wholeFileMax ?? WHOLE_FILE_MAX;

  /** Appends an input no reader re-framed (`whole`: its bytes, if read); false if its schema is not the others'. */
  const append = async (input: MergeInput, whole: Buffer | undefined): Promise<boolean> => {
    const opened: Opened = whole ? { input, whole: checkedSize(input, whole) } : openInput(input, wholeFileMax);
    try {
      const { header, length } = await headers.of(opened);
      checkCodec(header, input.name);
      // the same text is the same schema; another text, even an equivalent one, takes the general path
      schemaText ??= validSchemaText(header, input.name);
      if (header.schemaText !== schemaText) return false;
      out ??= await OutputFile.create(outFile, schemaText, options, schemas);
      await out.append(opened, header, length);
      return true;
    } finally {
      await closeInput(opened);
    }
  };

  try {
    if (options.checkCrc) {
      // the bytes go on to CRC checks on the block workers: each input is read into memory of its own
      for (const input of inputs) if (!(await append(input, undefined))) return undefined;
      return await out!.finish();
    }
    const source = slabInputSource(inputs, {
      slabBytes: Math.min(wholeFileMax + 1, options.slabBytes ?? SLAB_BYTES),
      sync: options.sync,
      threads: options.workers.readers,
      threadMinBytes: options.readerThreadMinBytes ?? READER_THREAD_MIN_BYTES,
      release: () => out?.writer.flush(),
    });
    let appended = 0;
    for await (const read of source.groups()) {
      for (const e of read.entries) {
        if (e.index !== appended++) throw new Error(`internal: input ${e.index} read out of order`);
        const input = inputs[e.index]!;
        if ('error' in e) throw Object.assign(new Error(e.error.message), { code: e.error.code });
        const bytes = 'tooLarge' in e ? undefined : Buffer.from(read.slab, e.start, e.end - e.start);
        // a framed input's header equals one appended before it (each reader leaves its first as read), so `out` exists
        if (bytes && 'framed' in e && e.framed) out!.appendFramed(bytes, e.framed);
        else if (!(await append(input, bytes))) return undefined;
      }
    }
    if (appended !== inputs.length) throw new Error(`internal: ${inputs.length - appended} inputs were not read`);
    return await out!.finish();
  } finally {
    await out?.close();
  }
}
