import { createHash } from 'node:crypto';
import { createWriteStream, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
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
import { permanentFault, retryClass } from '../shared/aws-errors.js';
import { createRetryPolicy, type RetryPolicy } from '../shared/retry-policy.js';
import { PreconditionFailedError, type ObjectInfo, type ObjectStore, type PutOptions } from '../store/object-store.js';
import { FastGet } from './fast-get.js';
import { fileEtags, PART_SIZE, uploadParts } from './multipart-upload.js';

/** Objects up to this size are downloaded into memory and written at once; memory: concurrency x this at most. */
const IN_MEMORY_DOWNLOAD_MAX = 4 * 1024 * 1024;
/** Connections of the download path when the caller does not say (the SDK client has its own). */
const DEFAULT_DOWNLOAD_SOCKETS = 64;

const unquote = (etag: string | undefined) => (etag ?? '').replace(/"/g, '');

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

/** The response, or undefined where the key has no object. */
async function orMissing<T>(request: Promise<T>): Promise<T | undefined> {
  try {
    return await request;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

function isPreconditionFailed(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'PreconditionFailed' || e.$metadata?.httpStatusCode === 412;
}

/** A stored object or a download that does not match what was expected: worth sending or fetching again. */
class MismatchError extends Error {
  readonly code = 'ECONNRESET';
}

/**
 * The ObjectStore over one S3 bucket: the only place that talks S3. Every
 * request goes through the run's retry policy (the SDK client itself makes
 * one attempt), and permanent faults become one clear line.
 */
export { PART_SIZE } from './multipart-upload.js';

export class S3Bucket implements ObjectStore {
  private fastGet: Promise<FastGet | undefined> | undefined;

  /** `downloadSockets`: connections of the hand-signed download path. */
  constructor(
    readonly client: S3Client,
    readonly name: string,
    private readonly retry: RetryPolicy = createRetryPolicy(),
    private readonly downloadSockets = DEFAULT_DOWNLOAD_SOCKETS,
  ) {}

  private target(key: string | undefined): string {
    return key === undefined ? `s3://${this.name}` : `s3://${this.name}/${key}`;
  }

  private async call<T>(operation: string, key: string | undefined, fn: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    try {
      return await this.retry.run(fn, retryClass, signal);
    } catch (err) {
      throw permanentFault(err, operation, this.target(key)) ?? err;
    }
  }

  async list(prefix: string, signal?: AbortSignal): Promise<ObjectInfo[]> {
    return this.call(
      'ListObjectsV2',
      prefix,
      async () => {
        const objects: ObjectInfo[] = [];
        for await (const page of paginateListObjectsV2({ client: this.client }, { Bucket: this.name, Prefix: prefix }, { abortSignal: signal })) {
          for (const o of page.Contents ?? []) {
            if (o.Key !== undefined) objects.push({ key: o.Key, size: o.Size ?? 0, etag: unquote(o.ETag) });
          }
        }
        return objects;
      },
      signal,
    );
  }

  async head(key: string, signal?: AbortSignal): Promise<ObjectInfo | undefined> {
    return this.call(
      'HeadObject',
      key,
      async () => {
        const r = await orMissing(this.client.send(new HeadObjectCommand({ Bucket: this.name, Key: key }), { abortSignal: signal }));
        return r && { key, size: r.ContentLength ?? 0, etag: unquote(r.ETag) };
      },
      signal,
    );
  }

  async getBuffer(key: string, signal?: AbortSignal): Promise<Buffer | undefined> {
    return this.call(
      'GetObject',
      key,
      async () => {
        const r = await orMissing(this.client.send(new GetObjectCommand({ Bucket: this.name, Key: key }), { abortSignal: signal }));
        return r && Buffer.from(await r.Body!.transformToByteArray());
      },
      signal,
    );
  }

  async getStream(key: string, signal?: AbortSignal): Promise<Readable> {
    return this.call(
      'GetObject',
      key,
      async () => (await this.client.send(new GetObjectCommand({ Bucket: this.name, Key: key }), { abortSignal: signal })).Body as Readable,
      signal,
    );
  }

  /**
   * Downloads to `file` and checks size and (for single-part ETags) MD5
   * against the listing. A small object is written in one piece under its
   * final name (a rename per object is measurable on thousands); one killed
   * mid-write is caught by download's resume check (size and MD5), and merge
   * reads a day only once download wrote its manifest. A large one goes
   * through a temporary name.
   */
  async download(object: ObjectInfo, file: string, signal?: AbortSignal): Promise<void> {
    const tmp = `${file}.part`;
    const verify = (size: number, md5: string) => {
      if (size !== object.size) throw new MismatchError(`truncated download of ${object.key}: ${size} of ${object.size} bytes`);
      if (/^[0-9a-f]{32}$/.test(object.etag) && md5 !== object.etag) throw new MismatchError(`download of ${object.key} does not match its ETag (MD5)`);
    };
    this.fastGet ??= FastGet.create(this.client, this.name, this.downloadSockets);
    const attempt = async () => {
      const fast = object.size <= IN_MEMORY_DOWNLOAD_MAX ? await this.fastGet : undefined;
      if (fast) {
        // Small objects (nearly all cold-tier files): one lean GET, one buffer, one synchronous
        // write. Creating a file costs ~0.3 ms of system time here; done in place it saves the
        // thread-pool hand-offs, which cost more CPU than they free on a busy 2-core machine.
        const body = await fast.get(object.key, object.etag, signal);
        verify(body.length, createHash('md5').update(body).digest('hex'));
        try {
          writeFileSync(file, body);
        } catch (err) {
          rmSync(file, { force: true });
          throw err;
        }
        return;
      }
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.name, Key: object.key, IfMatch: `"${object.etag}"` }), { abortSignal: signal });
      const body = r.Body as Readable;
      const md5 = createHash('md5');
      let size = 0;
      body.on('data', (chunk: Buffer) => {
        md5.update(chunk);
        size += chunk.length;
      });
      await pipeline(body, createWriteStream(tmp), { signal });
      verify(size, md5.digest('hex'));
      renameSync(tmp, file);
    };
    await this.call('GetObject', object.key, attempt, signal).catch(async (err: unknown) => {
      await rm(tmp, { force: true });
      if (isPreconditionFailed(err)) {
        throw new Error(`${this.target(object.key)} changed after it was listed (its ETag is no longer ${object.etag}); run download again`, { cause: err });
      }
      throw err;
    });
  }

  async put(key: string, body: Buffer | string, options: PutOptions = {}, signal?: AbortSignal): Promise<ObjectInfo> {
    const { contentType = 'application/octet-stream', ifNoneMatch, ifMatch } = options;
    const condition = ifNoneMatch || ifMatch !== undefined ? { ifNoneMatch, ifMatch } : undefined;
    try {
      const r = await this.call(
        'PutObject',
        key,
        () =>
          this.client.send(
            new PutObjectCommand({ Bucket: this.name, Key: key, Body: body, ContentType: contentType, IfNoneMatch: ifNoneMatch, IfMatch: ifMatch === undefined ? undefined : `"${ifMatch}"` }),
            { abortSignal: signal },
          ),
        signal,
      );
      return { key, size: Buffer.byteLength(body), etag: unquote(r.ETag) };
    } catch (err) {
      if (condition && isPreconditionFailed(err)) throw new PreconditionFailedError(this.target(key), condition, { cause: err });
      throw err;
    }
  }

  /**
   * Uploads a local file (in PART_SIZE parts above PART_SIZE, each part
   * retried on its own) and verifies the stored object: its size, and its ETag
   * against the MD5 (single part) or MD5 of part MD5s (multipart) computed
   * here. An upload that does not verify is sent again.
   */
  async uploadFile(key: string, file: string, options: { contentType: string; onBytes?: (loaded: number) => void }, signal?: AbortSignal): Promise<ObjectInfo> {
    const expected = await fileEtags(file, PART_SIZE);
    const once = async (): Promise<ObjectInfo> => {
      if (expected.size <= PART_SIZE) {
        await this.put(key, await readFile(file, { signal }), { contentType: options.contentType }, signal);
        options.onBytes?.(expected.size);
      } else {
        await uploadParts({ client: this.client, bucket: this.name, key, file, size: expected.size, ...options }, (operation, fn) => this.call(operation, key, fn, signal), signal);
      }
      const stored = await this.head(key, signal);
      if (!stored || stored.size !== expected.size || !expected.etags.includes(stored.etag)) {
        throw new MismatchError(`upload of ${file} to ${this.target(key)} did not verify (stored ${stored?.size ?? 'nothing'} bytes, ETag ${stored?.etag ?? '-'}; expected ${expected.size} bytes)`);
      }
      return stored;
    };
    // each request above was retried already: here only a stored object that did not verify is sent again
    return this.retry.run(once, (err) => (err instanceof MismatchError ? 'retry' : 'fail'), signal);
  }

  async abortUploads(prefix: string, isOurs: (key: string) => boolean, signal?: AbortSignal): Promise<number> {
    const stale: { key: string; uploadId: string }[] = [];
    try {
      let keyMarker: string | undefined;
      let uploadIdMarker: string | undefined;
      do {
        const page = await this.call(
          'ListMultipartUploads',
          prefix,
          () => this.client.send(new ListMultipartUploadsCommand({ Bucket: this.name, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }), { abortSignal: signal }),
          signal,
        );
        for (const u of page.Uploads ?? []) if (u.Key && u.UploadId && isOurs(u.Key)) stale.push({ key: u.Key, uploadId: u.UploadId });
        [keyMarker, uploadIdMarker] = page.IsTruncated ? [page.NextKeyMarker, page.NextUploadIdMarker] : [undefined, undefined];
      } while (keyMarker);
    } catch (err) {
      if ((err as { name?: string }).name === 'NotImplemented') return 0;
      throw err;
    }
    for (const u of stale) {
      await this.call(
        'AbortMultipartUpload',
        u.key,
        () => this.client.send(new AbortMultipartUploadCommand({ Bucket: this.name, Key: u.key, UploadId: u.uploadId }), { abortSignal: signal }),
        signal,
      );
    }
    return stale.length;
  }

  async deleteKeys(keys: string[], signal?: AbortSignal): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      await this.call(
        'DeleteObjects',
        batch[0],
        async () => {
          const r = await this.client.send(new DeleteObjectsCommand({ Bucket: this.name, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }), { abortSignal: signal });
          if (r.Errors?.length) throw new Error(`could not delete ${r.Errors.map((e) => `${e.Key} (${e.Code})`).join(', ')}`);
        },
        signal,
      );
    }
  }

  /** Closes the download path's connections. */
  async destroy(): Promise<void> {
    // a path that failed to set up has nothing to close (its error was reported where it was used)
    (await this.fastGet?.catch(() => undefined))?.destroy();
  }
}
