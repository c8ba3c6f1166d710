/** Input that is not a valid Avro object-container file; `file` names it for the user. */
export class AvroFormatError extends Error {
  constructor(readonly file: string, readonly detail: string) {
    super(`${file}: ${detail}`);
    this.name = 'AvroFormatError';
  }
}
