import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, ListMultipartUploadsCommand, UploadPartCommand, type S3Client } from '@aws-sdk/client-s3';
import { createChecksum } from '../shared/checksums.js';
import { mapLimit } from '../shared/limit.js';

/** Parts of multipart uploads; also the memory bound: at most UPLOAD_QUEUE x PART_SIZE bytes buffered per upload. */
export const PART_SIZE = 8 * 1024 * 1024;
/** Two: with 4 (32 MiB of parts) an upload beside a Parquet day's memory took `run` past 200 MB. */
export const UPLOAD_QUEUE = 2;

/** Sends one request under the caller's retry policy, naming the operation in its faults. */
export type Call = <T>(operation: string, fn: () => Promise<T>) => Promise<T>;

export interface PartsUpload {
  client: S3Client;
  bucket: string;
  key: string;
  file: string;
  digests: FileDigests;
  contentType: string;
  /** Server-side encryption asked of every PUT. */
  sse: ServerSideEncryptionSettings;
  onBytes?: (loaded: number) => void;
}

/** `aws.sse` and `aws.sse_kms_key_id`, as the SDK's PutObject and CreateMultipartUpload fields. */
export interface ServerSideEncryptionSettings {
  ServerSideEncryption?: 'AES256' | 'aws:kms' | 'aws:kms:dsse';
  SSEKMSKeyId?: string;
}

/**
 * A multipart upload of a local file in PART_SIZE parts, UPLOAD_QUEUE at a
 * time, each part read from the file when sent and retried on its own. Each
 * part carries its CRC32 and the whole its full-object CRC32, which S3 checks
 * on receipt (stores that ignore checksums ignore them). On
 * failure the upload is aborted (best effort: a killed run's are aborted by
 * the next upload of the day).
 */
export async function uploadParts(upload: PartsUpload, call: Call, signal?: AbortSignal): Promise<void> {
  const { client, bucket: Bucket, key: Key, file, digests, onBytes } = upload;
  const size = digests.size;
  const { UploadId } = await call('CreateMultipartUpload', () =>
    client.send(new CreateMultipartUploadCommand({ Bucket, Key, ContentType: upload.contentType, ChecksumAlgorithm: 'CRC32', ChecksumType: 'FULL_OBJECT', ...upload.sse }), { abortSignal: signal }),
  );
  const numbers = Array.from({ length: Math.ceil(size / PART_SIZE) }, (_, i) => i + 1);
  let loaded = 0;
  let fh: FileHandle | undefined;
  try {
    fh = await open(file, 'r');
    const handle = fh;
    // one buffer per part in flight, reused: a day's file passes through UPLOAD_QUEUE x PART_SIZE bytes, not a new 8 MiB buffer a part for the GC to find
    const buffers = Array.from({ length: Math.min(UPLOAD_QUEUE, numbers.length) }, () => Buffer.allocUnsafe(Math.min(PART_SIZE, size)));
    const parts = await mapLimit(numbers, UPLOAD_QUEUE, async (PartNumber) => {
      const start = (PartNumber - 1) * PART_SIZE;
      const buffer = buffers.pop()!;
      const body = await readRange(handle, buffer, start, Math.min(PART_SIZE, size - start));
      const ChecksumCRC32 = digests.partCrc32s[PartNumber - 1];
      const r = await call('UploadPart', () => client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: body, ChecksumCRC32 }), { abortSignal: signal }));
      buffers.push(buffer);
      loaded += body.length;
      onBytes?.(loaded);
      return { PartNumber, ETag: r.ETag, ChecksumCRC32 };
    });
    await call('CompleteMultipartUpload', () =>
      client.send(
        new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts }, ChecksumCRC32: digests.crc32, ChecksumType: 'FULL_OBJECT' }),
        { abortSignal: signal },
      ),
    );
  } catch (err) {
    // S3 bills the parts of an unfinished upload
    await client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => undefined);
    throw err;
  } finally {
    await fh?.close();
  }
}

/**
 * Aborts multipart uploads under `prefix` whose key `isOurs` says we started
 * (left by a run killed mid-upload; S3 bills their parts until aborted).
 * Returns how many; 0 where the server cannot list uploads.
 */
export async function abortUploads(
  target: { client: S3Client; bucket: string; prefix: string; isOurs: (key: string) => boolean },
  call: <T>(operation: string, key: string, fn: () => Promise<T>) => Promise<T>,
  signal?: AbortSignal,
): Promise<number> {
  const { client, bucket, prefix, isOurs } = target;
  const stale: { key: string; uploadId: string }[] = [];
  try {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await call(
        'ListMultipartUploads',
        prefix,
        () => client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }), { abortSignal: signal }),
      );
      for (const u of page.Uploads ?? []) if (u.Key && u.UploadId && isOurs(u.Key)) stale.push({ key: u.Key, uploadId: u.UploadId });
      [keyMarker, uploadIdMarker] = page.IsTruncated ? [page.NextKeyMarker, page.NextUploadIdMarker] : [undefined, undefined];
    } while (keyMarker);
  } catch (err) {
    if ((err as { name?: string }).name === 'NotImplemented') return 0;
    throw err;
  }
  for (const u of stale) {
    await call(
      'AbortMultipartUpload',
      u.key,
      () => client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.key, UploadId: u.uploadId }), { abortSignal: signal }),
    );
  }
  return stale.length;
}

/** Reads `length` bytes at `start` into the front of `into`; returns that part of it. */
async function readRange(fh: FileHandle, into: Buffer, start: number, length: number): Promise<Buffer> {
  const buf = into.subarray(0, length);
  for (let at = 0; at < length; ) {
    const { bytesRead } = await fh.read(buf, at, length - at, start + at);
    if (bytesRead === 0) throw new Error(`${length - at} bytes short reading a part at byte ${start}: the file changed while it was uploaded`);
    at += bytesRead;
  }
  return buf;
}

/** What a local file's upload must match: its size, the ETags S3 may give it, and its CRC32, whole and per part. */
export interface FileDigests {
  size: number;
  /** Plain MD5, and for a multipart upload MD5 of part MD5s with the part count. */
  etags: string[];
  /** base64, as x-amz-checksum-crc32. */
  crc32: string;
  partCrc32s: string[];
}

export async function fileDigests(file: string, partSize: number): Promise<FileDigests> {
  const whole = createHash('md5');
  const wholeCrc = createChecksum('CRC32');
  const parts: Buffer[] = [];
  const partCrc32s: string[] = [];
  let part = createHash('md5');
  let partCrc = createChecksum('CRC32');
  let inPart = 0;
  let size = 0;
  const endPart = () => {
    parts.push(part.digest());
    partCrc32s.push(partCrc.digest());
    part = createHash('md5');
    partCrc = createChecksum('CRC32');
    inPart = 0;
  };
  const digest = (chunk: Buffer) => {
    whole.update(chunk);
    wholeCrc.update(chunk);
    size += chunk.length;
    for (let at = 0; at < chunk.length; ) {
      const take = Math.min(partSize - inPart, chunk.length - at);
      const piece = chunk.subarray(at, at + take);
      part.update(piece);
      partCrc.update(piece);
      inPart += take;
      at += take;
      if (inPart === partSize) endPart();
    }
  };
  // one buffer, read into again and again (a stream would allocate a new one for each MiB)
  const buffer = Buffer.allocUnsafe(1024 * 1024);
  const fh = await open(file, 'r');
  try {
    for (let n; (n = (await fh.read(buffer, 0, buffer.length, null)).bytesRead) > 0; ) digest(buffer.subarray(0, n));
  } finally {
    await fh.close();
  }
  if (inPart > 0) endPart();
  const etags = [whole.digest('hex')];
  if (parts.length > 1) etags.push(`${createHash('md5').update(Buffer.concat(parts)).digest('hex')}-${parts.length}`);
  return { size, etags, crc32: wholeCrc.digest(), partCrc32s };
}
