/** Opening a merge's inputs and reading their headers, shared by the same-schema and mixed-schema paths. */
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import type avro from 'avsc';
import { avsc } from '../shared/load-on-use.js';
import { AvroFormatError } from './avro-format-error.js';
import { ByteReader } from './byte-reader.js';
import { SUPPORTED_CODECS } from './codec.js';
import { parseWholeHeader, readHeader, SYNC_SIZE, type ContainerHeader } from './container.js';
import type { MergeInput } from './merge-options.js';

const READ_CHUNK = 1024 * 1024;

/** An input opened for copying: a small file in memory, or a large one as a stream. */
export type Opened = { input: MergeInput; whole: Buffer } | { input: MergeInput; stream: ByteReader };

export interface Schema {
  type: avro.Type;
  text: string;
  fingerprint: string;
}

/** Parsed schemas by their text, for one merge. */
export class Schemas {
  private readonly byText = new Map<string, Schema>();

  of(header: ContainerHeader, name: string): Schema {
    let schema = this.byText.get(header.schemaText);
    if (!schema) {
      let type: avro.Type;
      try {
        type = avsc().Type.forSchema(JSON.parse(header.schemaText) as avro.Schema);
      } catch (err) {
        throw new AvroFormatError(name, `invalid schema in header (${(err as Error).message})`);
      }
      schema = { type, text: header.schemaText, fingerprint: type.fingerprint('sha256').toString('hex') };
      this.byText.set(header.schemaText, schema);
    }
    return schema;
  }
}

/**
 * The block copy writes the inputs' schema text as it is, so it only checks
 * that it is JSON; the general path parses it fully.
 */
export function validSchemaText(header: ContainerHeader, name: string): string {
  try {
    JSON.parse(header.schemaText);
  } catch (err) {
    throw new AvroFormatError(name, `invalid schema in header (${(err as Error).message})`);
  }
  return header.schemaText;
}

export function checkCodec(header: ContainerHeader, name: string): void {
  if (!(SUPPORTED_CODECS as readonly string[]).includes(header.codec)) {
    throw new AvroFormatError(name, `codec '${header.codec}' is not supported (supported: ${SUPPORTED_CODECS.join(', ')})`);
  }
}

/** `bytes` read for `input`, checked against the size download verified. */
export function checkedSize(input: MergeInput, bytes: Buffer): Buffer {
  if (input.size !== undefined && bytes.length !== input.size) {
    throw new AvroFormatError(input.name, `its local copy ${input.file} has ${bytes.length > input.size ? 'more' : 'fewer'} bytes than the ${input.size} downloaded; run download again`);
  }
  return bytes;
}

/**
 * Opens an input on this thread: small files are read synchronously (they
 * are in the page cache right after a download), large ones streamed.
 */
export function openInput(input: MergeInput, wholeFileMax: number): Opened {
  const fd = openSync(input.file, 'r');
  try {
    const size = input.size ?? fstatSync(fd).size;
    if (size <= wholeFileMax) {
      // its own memory (not the shared pool), so it can be handed to a worker without a copy;
      // one byte more than expected, so a file that grew is noticed too
      const room = Buffer.allocUnsafeSlow(size + 1);
      return { input, whole: checkedSize(input, room.subarray(0, readSync(fd, room, 0, size + 1, 0))) };
    }
  } finally {
    closeSync(fd);
  }
  return { input, stream: new ByteReader(createReadStream(input.file, { highWaterMark: READ_CHUNK })) };
}

export async function closeInput(opened: Opened): Promise<void> {
  if ('stream' in opened) await opened.stream.close();
}

/**
 * Reads inputs' headers. A day's files nearly always repeat one header byte
 * for byte but for the sync marker at its end, so a header equal to the last
 * one parsed is taken as it is.
 */
export class HeaderReader {
  private last: { bytes: Buffer; header: ContainerHeader } | undefined;

  async of(opened: Opened): Promise<{ header: ContainerHeader; length: number }> {
    if ('stream' in opened) {
      const header = await readHeader(opened.stream, opened.input.name);
      return { header, length: opened.stream.offset };
    }
    const buf = opened.whole;
    const last = this.last;
    const n = last?.bytes.length ?? 0;
    if (last && buf.length >= n + SYNC_SIZE && buf.compare(last.bytes, 0, n, 0, n) === 0) {
      return { header: { ...last.header, sync: buf.subarray(n, n + SYNC_SIZE) }, length: n + SYNC_SIZE };
    }
    const parsed = parseWholeHeader(buf, opened.input.name);
    this.last = { bytes: Buffer.from(buf.subarray(0, parsed.length - SYNC_SIZE)), header: parsed.header };
    return parsed;
  }
}
