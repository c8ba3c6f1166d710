import type avro from 'avsc';
import { mapLimit } from '../shared/limit.js';
import { AvroFormatError } from './avro-format-error.js';
import { checkCodec, closeInput, HeaderReader, openInput, type Schema, type Schemas } from './merge-inputs.js';
import { WHOLE_FILE_MAX, type MergeInput, type MergeOptions, type MergeResult } from './merge-options.js';
import { OutputFile } from './output-file.js';

/** Headers read at once when the schemas differ. */
const PREFETCH = 8;

function fieldNames(type: avro.Type): string[] {
  const schema = type.schema() as { fields?: { name: string }[] };
  return (schema.fields ?? []).map((f) => f.name);
}

/**
 * The inputs do not share one schema text: the output takes the schema most
 * inputs have, and an input with another schema is accepted only if its
 * records resolve into that schema with no field dropped; if not, the merge
 * fails naming the file.
 */
export async function mergeMixedSchemas(inputs: MergeInput[], outFile: string, options: MergeOptions, schemas: Schemas): Promise<MergeResult> {
  const headers = new HeaderReader();
  const wholeFileMax = options.wholeFileMax ?? WHOLE_FILE_MAX;
  const found = await mapLimit(inputs, PREFETCH, async (input) => {
    const opened = openInput(input, wholeFileMax);
    try {
      const { header } = await headers.of(opened);
      checkCodec(header, input.name);
      return { input, schema: schemas.of(header, input.name) };
    } finally {
      await closeInput(opened);
    }
  });
  const groups = new Map<string, { schema: Schema; inputs: MergeInput[] }>();
  for (const h of found) {
    const group = groups.get(h.schema.fingerprint) ?? { schema: h.schema, inputs: [] };
    group.inputs.push(h.input);
    groups.set(h.schema.fingerprint, group);
  }
  const ranked = [...groups.values()].sort((a, b) => b.inputs.length - a.inputs.length);
  const main = ranked[0]!;
  for (const other of ranked.slice(1)) {
    const missing = fieldNames(other.schema.type).filter((f) => !fieldNames(main.schema.type).includes(f));
    let resolvable = missing.length === 0;
    try {
      if (resolvable) main.schema.type.createResolver(other.schema.type);
    } catch {
      resolvable = false;
    }
    if (!resolvable) {
      throw new AvroFormatError(
        other.inputs[0]!.name,
        `schema differs from the rest of its day (${main.inputs.length} files, e.g. ${main.inputs[0]!.name})` +
          (missing.length ? `: fields ${missing.join(', ')} have no place in it` : ': records cannot be converted'),
      );
    }
  }
  const out = await OutputFile.create(outFile, main.schema.text, options, schemas);
  try {
    for (const group of ranked) {
      for (const input of group.inputs) {
        const opened = openInput(input, wholeFileMax);
        try {
          const { header, length } = await headers.of(opened);
          await out.append(opened, header, length, group === main ? undefined : main.schema.text);
        } finally {
          await closeInput(opened);
        }
      }
    }
    return await out.finish();
  } finally {
    await out.close();
  }
}
