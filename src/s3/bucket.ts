import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, renameSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { FastGet } from './fast-get.js';
import { permanentFault, withRetry } from './s3-errors.js';

export interface ObjectInfo {
  key: string;
  size: number;
  /** ETag without quotes. */
  etag: string;
}

/** Parts of multipart uploads; also the memory bound: at most UPLOAD_QUEUE x PART_SIZE bytes buffered per upload. */
export const PART_SIZE = 8 * 1024 * 1024;
export const UPLOAD_QUEUE = 4;

/** Objects up to this size are downloaded into memory and written at once; memory: concurrency x this at most. */
const IN_MEMORY_DOWNLOAD_MAX = 4 * 1024 * 1024;

const unquote = (etag: string | undefined) => (etag ?? '').replace(/"/g, '');

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

/** The only place that talks S3: one bucket, the operations this tool needs, faults turned into clear errors. */
export class Bucket {
  private fastGet: Promise<FastGet | undefined> | undefined;

  /** `maxSockets`: connections of the download path (the SDK client has its own). */
  constructor(readonly client: S3Client, readonly name: string, private readonly maxSockets = 64) {}

  private async call<T>(operation: string, key: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await withRetry(fn);
    } catch (err) {
      throw permanentFault(err, operation, key === undefined ? `s3://${this.name}` : `s3://${this.name}/${key}`) ?? err;
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    return this.call('ListObjectsV2', prefix, async () => {
      const objects: ObjectInfo[] = [];
      for await (const page of paginateListObjectsV2({ client: this.client }, { Bucket: this.name, Prefix: prefix })) {
        for (const o of page.Contents ?? []) {
          if (o.Key !== undefined) objects.push({ key: o.Key, size: o.Size ?? 0, etag: unquote(o.ETag) });
        }
      }
      return objects;
    });
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    return this.call('HeadObject', key, async () => {
      try {
        const r = await this.client.send(new HeadObjectCommand({ Bucket: this.name, Key: key }));
        return { key, size: r.ContentLength ?? 0, etag: unquote(r.ETag) };
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    });
  }

  /** The whole object, or undefined if there is none. For small objects (indexes, ledgers). */
  async getBuffer(key: string): Promise<Buffer | undefined> {
    return this.call('GetObject', key, async () => {
      try {
        const r = await this.client.send(new GetObjectCommand({ Bucket: this.name, Key: key }));
        return Buffer.from(await r.Body!.transformToByteArray());
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    });
  }

  /** A body stream for reading large objects through once. */
  async getStream(key: string): Promise<Readable> {
    return this.call('GetObject', key, async () => {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.name, Key: key }));
      return r.Body as Readable;
    });
  }

  /**
   * Downloads to `file` and checks size and (for single-part ETags) MD5
   * against the listing. A small object is written in one piece under its
   * final name (a rename per object is measurable on thousands); one killed
   * mid-write is caught by download's resume check (size and MD5), and merge
   * reads a day only once download wrote its manifest. A large one goes
   * through a temporary name.
   */
  async download(object: ObjectInfo, file: string): Promise<void> {
    const tmp = `${file}.part`;
    const verify = (size: number, md5: string) => {
      if (size !== object.size) throw Object.assign(new Error(`truncated download of ${object.key}: ${size} of ${object.size} bytes`), { code: 'ECONNRESET' });
      if (/^[0-9a-f]{32}$/.test(object.etag) && md5 !== object.etag) {
        throw Object.assign(new Error(`download of ${object.key} does not match its ETag (MD5)`), { code: 'ECONNRESET' });
      }
    };
    this.fastGet ??= FastGet.create(this.client, this.name, this.maxSockets);
    await this.call('GetObject', object.key, async () => {
      const fast = object.size <= IN_MEMORY_DOWNLOAD_MAX ? await this.fastGet : undefined;
      if (fast) {
        // Small objects (nearly all cold-tier files): one lean GET, one buffer, one synchronous
        // write. Creating a file costs ~0.3 ms of system time here; done in place it saves the
        // thread-pool hand-offs, which cost more CPU than they free on a busy 2-core machine.
        const body = await fast.get(object.key, object.etag);
        verify(body.length, createHash('md5').update(body).digest('hex'));
        try {
          writeFileSync(file, body);
        } catch (err) {
          rmSync(file, { force: true });
          throw err;
        }
        return;
      }
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.name, Key: object.key, IfMatch: `"${object.etag}"` }));
      const body = r.Body as Readable;
      const md5 = createHash('md5');
      let size = 0;
      body.on('data', (chunk: Buffer) => {
        md5.update(chunk);
        size += chunk.length;
      });
      await pipeline(body, createWriteStream(tmp));
      verify(size, md5.digest('hex'));
      renameSync(tmp, file);
    }).catch(async (err: unknown) => {
      await rm(tmp, { force: true });
      if ((err as { name?: string }).name === 'PreconditionFailed') {
        throw new Error(`s3://${this.name}/${object.key} changed after it was listed (its ETag is no longer ${object.etag}); run download again`, { cause: err });
      }
      throw err;
    });
  }

  async putBuffer(key: string, body: Buffer | string, contentType = 'application/octet-stream'): Promise<void> {
    await this.call('PutObject', key, () => this.client.send(new PutObjectCommand({ Bucket: this.name, Key: key, Body: body, ContentType: contentType })));
  }

  /**
   * Uploads a local file (multipart above PART_SIZE) and verifies the stored
   * object: its size, and its ETag against the MD5 (single part) or MD5 of
   * part MD5s (multipart) computed here.
   */
  async uploadFile(key: string, file: string, onBytes?: (loaded: number) => void): Promise<ObjectInfo> {
    const expected = await fileEtags(file, PART_SIZE);
    return this.call('PutObject', key, async () => {
      const upload = new Upload({
        client: this.client,
        params: { Bucket: this.name, Key: key, Body: createReadStream(file), ContentType: 'application/avro' },
        partSize: PART_SIZE,
        queueSize: UPLOAD_QUEUE,
        leavePartsOnError: false,
      });
      if (onBytes) upload.on('httpUploadProgress', (p) => onBytes(p.loaded ?? 0));
      await upload.done();
      const stored = await this.head(key);
      if (!stored || stored.size !== expected.size || !expected.etags.includes(stored.etag)) {
        throw Object.assign(new Error(`upload of ${file} to s3://${this.name}/${key} did not verify (stored ${stored?.size ?? 'nothing'} bytes, ETag ${stored?.etag ?? '-'}; expected ${expected.size} bytes)`), { code: 'ECONNRESET' });
      }
      return stored;
    });
  }

  /**
   * Aborts multipart uploads under `prefix` whose key `isOurs` says we started
   * (left by a run killed mid-upload; S3 bills their parts until aborted).
   * Returns how many; 0 where the server cannot list uploads.
   */
  async abortUploads(prefix: string, isOurs: (key: string) => boolean): Promise<number> {
    const stale: { key: string; uploadId: string }[] = [];
    try {
      let keyMarker: string | undefined;
      let uploadIdMarker: string | undefined;
      do {
        const page = await this.call('ListMultipartUploads', prefix, () =>
          this.client.send(new ListMultipartUploadsCommand({ Bucket: this.name, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker })),
        );
        for (const u of page.Uploads ?? []) if (u.Key && u.UploadId && isOurs(u.Key)) stale.push({ key: u.Key, uploadId: u.UploadId });
        [keyMarker, uploadIdMarker] = page.IsTruncated ? [page.NextKeyMarker, page.NextUploadIdMarker] : [undefined, undefined];
      } while (keyMarker);
    } catch (err) {
      if ((err as { name?: string }).name === 'NotImplemented') return 0;
      throw err;
    }
    for (const u of stale) {
      await this.call('AbortMultipartUpload', u.key, () => this.client.send(new AbortMultipartUploadCommand({ Bucket: this.name, Key: u.key, UploadId: u.uploadId })));
    }
    return stale.length;
  }

  /** Closes the download path's connections. */
  async destroy(): Promise<void> {
    // a path that failed to set up has nothing to close (its error was reported where it was used)
    (await this.fastGet?.catch(() => undefined))?.destroy();
  }

  async deleteKeys(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      await this.call('DeleteObjects', batch[0], async () => {
        const r = await this.client.send(new DeleteObjectsCommand({ Bucket: this.name, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
        if (r.Errors?.length) throw new Error(`could not delete ${r.Errors.map((e) => `${e.Key} (${e.Code})`).join(', ')}`);
      });
    }
  }
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
