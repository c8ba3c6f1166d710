import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, UploadPartCommand, type S3Client } from '@aws-sdk/client-s3';
import { mapLimit } from '../shared/limit.js';

/** Parts of multipart uploads; also the memory bound: at most UPLOAD_QUEUE x PART_SIZE bytes buffered per upload. */
export const PART_SIZE = 8 * 1024 * 1024;
export const UPLOAD_QUEUE = 4;

/** Sends one request under the caller's retry policy, naming the operation in its faults. */
export type Call = <T>(operation: string, fn: () => Promise<T>) => Promise<T>;

export interface PartsUpload {
  client: S3Client;
  bucket: string;
  key: string;
  file: string;
  size: number;
  contentType: string;
  onBytes?: (loaded: number) => void;
}

/**
 * A multipart upload of a local file in PART_SIZE parts, UPLOAD_QUEUE at a
 * time, each part read from the file when sent and retried on its own. On
 * failure the upload is aborted (best effort: a killed run's are aborted by
 * the next upload of the day).
 */
export async function uploadParts(upload: PartsUpload, call: Call, signal?: AbortSignal): Promise<void> {
  const { client, bucket: Bucket, key: Key, file, size, onBytes } = upload;
  const { UploadId } = await call('CreateMultipartUpload', () => client.send(new CreateMultipartUploadCommand({ Bucket, Key, ContentType: upload.contentType }), { abortSignal: signal }));
  const numbers = Array.from({ length: Math.ceil(size / PART_SIZE) }, (_, i) => i + 1);
  let loaded = 0;
  let fh: FileHandle | undefined;
  try {
    fh = await open(file, 'r');
    const handle = fh;
    const parts = await mapLimit(numbers, UPLOAD_QUEUE, async (PartNumber) => {
      const start = (PartNumber - 1) * PART_SIZE;
      const body = await readRange(handle, start, Math.min(PART_SIZE, size - start));
      const r = await call('UploadPart', () => client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: body }), { abortSignal: signal }));
      loaded += body.length;
      onBytes?.(loaded);
      return { PartNumber, ETag: r.ETag };
    });
    await call('CompleteMultipartUpload', () => client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts } }), { abortSignal: signal }));
  } catch (err) {
    // S3 bills the parts of an unfinished upload
    await client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => undefined);
    throw err;
  } finally {
    await fh?.close();
  }
}

async function readRange(fh: FileHandle, start: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  for (let at = 0; at < length; ) {
    const { bytesRead } = await fh.read(buf, at, length - at, start + at);
    if (bytesRead === 0) throw new Error(`${length - at} bytes short reading a part at byte ${start}: the file changed while it was uploaded`);
    at += bytesRead;
  }
  return buf;
}

/** The ETags S3 may give a file: plain MD5, or MD5 of part MD5s with the part count. */
export async function fileEtags(file: string, partSize: number): Promise<{ size: number; etags: string[] }> {
  const whole = createHash('md5');
  const parts: Buffer[] = [];
  let part = createHash('md5');
  let inPart = 0;
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
    whole.update(chunk);
    size += chunk.length;
    for (let at = 0; at < chunk.length; ) {
      const take = Math.min(partSize - inPart, chunk.length - at);
      part.update(chunk.subarray(at, at + take));
      inPart += take;
      at += take;
      if (inPart === partSize) {
        parts.push(part.digest());
        part = createHash('md5');
        inPart = 0;
      }
    }
  }
  if (inPart > 0) parts.push(part.digest());
  const etags = [whole.digest('hex')];
  if (parts.length > 1) etags.push(`${createHash('md5').update(Buffer.concat(parts)).digest('hex')}-${parts.length}`);
  return { size, etags };
}
