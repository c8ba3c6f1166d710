import { createReadStream } from 'node:fs';
import type { HeadObjectCommandOutput } from '@aws-sdk/client-s3';
import { createChecksum, type ChecksumAlgorithm } from '../shared/checksums.js';
import type { ObjectInfo } from '../store/object-store.js';
import { fromSdkOutput, fullObjectChecksum, MismatchError } from './content-check.js';
import type { FileDigests } from './multipart-upload.js';
import { unquote } from './s3-responses.js';

async function fileChecksum(file: string, algorithm: ChecksumAlgorithm): Promise<string> {
  const checksum = createChecksum(algorithm);
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) checksum.update(chunk as Buffer);
  return checksum.digest();
}

export interface StoredObject {
  key: string;
  /** For messages: s3://bucket/key. */
  where: string;
  /** HeadObject with its checksum asked for; undefined if nothing is stored. */
  head: () => Promise<HeadObjectCommandOutput | undefined>;
  /** The stored bytes, read through once. */
  readBack: () => Promise<AsyncIterable<unknown>>;
}

/**
 * The stored object matches the file: its size, and its full-object
 * checksum where the store returns one, else its ETag where that is an MD5
 * (no SSE-KMS, no SSE-C), else its bytes read back (a store that ignores
 * checksums, with KMS-style ETags). A MismatchError says what differed.
 */
export async function verifyStored(stored: StoredObject, file: string, digests: FileDigests): Promise<ObjectInfo> {
  const r = await stored.head();
  const fail = (why: string) => new MismatchError(`upload of ${file} to ${stored.where} did not verify (${why}; expected ${digests.size} bytes)`);
  if (!r) throw fail('stored nothing');
  const info = { key: stored.key, size: r.ContentLength ?? 0, etag: unquote(r.ETag) };
  if (info.size !== digests.size) throw fail(`stored ${info.size} bytes, ETag ${info.etag}`);
  const headers = fromSdkOutput(r);
  const full = fullObjectChecksum(headers);
  if (full) {
    const ours = full.algorithm === 'CRC32' ? digests.crc32 : await fileChecksum(file, full.algorithm);
    if (full.value !== ours) throw fail(`stored ${full.algorithm} ${full.value}, the file's ${ours}`);
  } else if (!headers.sse?.startsWith('aws:kms') && !headers.sseCustomerAlgorithm) {
    if (!digests.etags.includes(info.etag)) throw fail(`stored ETag ${info.etag}`);
  } else {
    const back = createChecksum('CRC32');
    for await (const chunk of await stored.readBack()) back.update(chunk as Buffer);
    const crc = back.digest();
    if (crc !== digests.crc32) throw fail(`read back with CRC32 ${crc}, the file's ${digests.crc32}`);
  }
  return info;
}
