import { createWriteStream, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { permanentFault, retryClass } from '../shared/aws-errors.js';
import { checksumOf } from '../shared/checksums.js';
import { createRetryPolicy, DEFAULT_TIMEOUTS, type RetryPolicy, type Timeouts } from '../shared/retry-policy.js';
import { ObjectArchivedError, ObjectChangedError, ObjectGoneError, PreconditionFailedError, type ConditionalSupport, type Downloaded, type ObjectInfo, type ObjectStore, type PutOptions, type StoredObject } from '../store/object-store.js';
import { ContentChecker, fromSdkOutput, MismatchError, type IntegrityHeaders } from './content-check.js';
import { FastGet, type ListPage } from './fast-get.js';
import { abortUploads, fileDigests, PART_SIZE, uploadParts, type ServerSideEncryptionSettings } from './multipart-upload.js';
import { isNotFound, isPreconditionFailed, orMissing, unquote } from './s3-responses.js';
import { verifyStored } from './verify-upload.js';

/** Objects up to this size are downloaded into memory and written at once; memory: concurrency x this at most. */
const IN_MEMORY_DOWNLOAD_MAX = 1024 * 1024;
/** Connections of the download path when the caller does not say (the SDK client has its own). */
const DEFAULT_DOWNLOAD_SOCKETS = 64;

export { PART_SIZE } from './multipart-upload.js';

/** What a download found, from its checker and headers (an unversioned object's version reads 'null'). */
function downloaded(checker: ContentChecker, headers: IntegrityHeaders): Downloaded {
  const versionId = headers.versionId && headers.versionId !== 'null' ? headers.versionId : undefined;
  return { check: checker.check, ...(versionId ? { versionId } : {}) };
}

export interface S3BucketOptions {
  /** The run's retry policy (default: a standard one). */
  retry?: RetryPolicy;
  /** Connections of the hand-signed download path. */
  downloadSockets?: number;
  /** Server-side encryption asked of every PUT (aws.sse, aws.sse_kms_key_id). */
  sse?: ServerSideEncryptionSettings;
  /** Of the hand-signed download path (the SDK client has its own, set where it was made). */
  timeouts?: Timeouts;
}

/**
 * The ObjectStore over one S3 bucket: the only place that talks S3. Every
 * request goes through the run's retry policy (the SDK client itself makes
 * one attempt), and permanent faults become one clear line.
 */
export class S3Bucket implements ObjectStore {
  private fastGet: Promise<FastGet | undefined> | undefined;
  /** How If-Match is sent on PUT: quoted, as HTTP and AWS have it, unless the probe found the store wants it bare. */
  private ifMatchQuoted = true;

  private readonly retry: RetryPolicy;
  private readonly downloadSockets: number;
  private readonly sse: ServerSideEncryptionSettings;
  private readonly timeouts: Timeouts;

  constructor(
    readonly client: S3Client,
    readonly name: string,
    options: S3BucketOptions = {},
  ) {
    this.retry = options.retry ?? createRetryPolicy();
    this.downloadSockets = options.downloadSockets ?? DEFAULT_DOWNLOAD_SOCKETS;
    this.sse = options.sse ?? {};
    this.timeouts = options.timeouts ?? DEFAULT_TIMEOUTS;
  }

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

  /**
   * A one-key listing: the bucket exists, is in the client's region, and the
   * role may list it (what every command does first). A listing, not
   * HeadBucket, because its errors carry a code (a HEAD's 403 cannot tell bad
   * credentials from a missing permission).
   */
  async checkAccess(signal?: AbortSignal): Promise<void> {
    await this.call('ListObjectsV2', undefined, () => this.client.send(new ListObjectsV2Command({ Bucket: this.name, MaxKeys: 1 }), { abortSignal: signal }), signal);
  }

  async list(prefix: string, signal?: AbortSignal): Promise<ObjectInfo[]> {
    const objects: ObjectInfo[] = [];
    for await (const page of this.listPages(prefix, signal)) objects.push(...page);
    return objects;
  }

  async *listPages(prefix: string, signal?: AbortSignal): AsyncGenerator<ObjectInfo[]> {
    const fast = await this.fast().catch(() => undefined);
    let token: string | undefined;
    do {
      const page = await this.call('ListObjectsV2', prefix, () => (fast ? fast.listPage(prefix, token, signal) : this.sdkListPage(prefix, token, signal)), signal);
      yield page.objects;
      if (page.truncated && !page.next) throw new Error(`${this.target(prefix)}: the listing says it has more keys but gives no continuation token`);
      token = page.truncated ? page.next : undefined;
    } while (token);
  }

  /** listPage through the SDK: for a bucket the hand-signed path does not serve. */
  private async sdkListPage(prefix: string, token: string | undefined, signal?: AbortSignal): Promise<ListPage> {
    const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.name, Prefix: prefix, ContinuationToken: token }), { abortSignal: signal });
    const objects = (page.Contents ?? []).flatMap((o) => (o.Key === undefined ? [] : [{ key: o.Key, size: o.Size ?? 0, etag: unquote(o.ETag), ...(o.StorageClass ? { storageClass: o.StorageClass } : {}) }]));
    return { objects, truncated: page.IsTruncated === true, next: page.NextContinuationToken };
  }

  /** The hand-signed GET and LIST path (undefined where the bucket needs what it does not do). */
  private fast(): Promise<FastGet | undefined> {
    return (this.fastGet ??= FastGet.create(this.client, this.name, this.downloadSockets, this.timeouts));
  }

  async head(key: string, signal?: AbortSignal): Promise<(ObjectInfo & { lastModified?: Date }) | undefined> {
    return this.call(
      'HeadObject',
      key,
      async () => {
        const r = await orMissing(this.client.send(new HeadObjectCommand({ Bucket: this.name, Key: key }), { abortSignal: signal }));
        return r && { key, size: r.ContentLength ?? 0, etag: unquote(r.ETag), ...(r.LastModified ? { lastModified: r.LastModified } : {}) };
      },
      signal,
    );
  }

  async getBuffer(key: string, signal?: AbortSignal): Promise<Buffer | undefined> {
    return (await this.read(key, signal))?.body;
  }

  async read(key: string, signal?: AbortSignal): Promise<StoredObject | undefined> {
    return this.call(
      'GetObject',
      key,
      async () => {
        const r = await orMissing(this.client.send(new GetObjectCommand({ Bucket: this.name, Key: key }), { abortSignal: signal }));
        return r && { body: Buffer.from(await r.Body!.transformToByteArray()), etag: unquote(r.ETag) };
      },
      signal,
    );
  }

  async readRange(key: string, range: { start: number; end: number }, signal?: AbortSignal): Promise<Buffer | undefined> {
    const header = `bytes=${range.start}-${range.end - 1}`;
    return this.call(
      'GetObject',
      key,
      async () => {
        const r = await orMissing(this.client.send(new GetObjectCommand({ Bucket: this.name, Key: key, Range: header }), { abortSignal: signal }));
        return r && Buffer.from(await r.Body!.transformToByteArray());
      },
      signal,
    );
  }

  /**
   * Create, create again (must fail), update on a wrong ETag (must fail),
   * update on the right one, quoted as HTTP has it and, where that fails,
   * unquoted: Ceph RGW 16.2 compares If-Match on PUT with the bare ETag.
   */
  async probeConditionalWrites(scratchKey: string, signal?: AbortSignal): Promise<ConditionalSupport> {
    const refused = (p: Promise<unknown>) =>
      p.then(
        () => false,
        (err: unknown) => {
          if (err instanceof PreconditionFailedError) return true;
          throw err;
        },
      );
    const etag = async () => (await this.head(scratchKey, signal))?.etag;
    // a put refused after a retry may have landed on its first attempt: whether it did shows in the ETag
    const updated = async (before: string | undefined, body: string) => !(await refused(this.put(scratchKey, body, { ifMatch: before ?? '' }, signal))) || (await etag()) !== before;
    try {
      // the key is this run's alone: a refusal here is the store honouring the condition on a retried create
      const created = await this.put(scratchKey, 'probe 1', { ifNoneMatch: '*' }, signal).catch((err: unknown) => {
        if (err instanceof PreconditionFailedError) return undefined;
        throw err;
      });
      // both at once (one round trip less at start-up): a store that honours conditions refuses both and the object stays as created
      const [createIfAbsent, wrongRefused] = await Promise.all([
        refused(this.put(scratchKey, 'probe 2', { ifNoneMatch: '*' }, signal)),
        refused(this.put(scratchKey, 'probe 3', { ifMatch: '0'.repeat(32) }, signal)),
      ]);
      if (!wrongRefused) return { createIfAbsent, updateIfMatch: false };
      const current = createIfAbsent && created?.etag ? created.etag : await etag();
      if (await updated(current, 'probe 4')) return { createIfAbsent, updateIfMatch: true };
      this.ifMatchQuoted = false;
      if (await updated(await etag(), 'probe 5')) return { createIfAbsent, updateIfMatch: true };
      this.ifMatchQuoted = true;
      return { createIfAbsent, updateIfMatch: false };
    } finally {
      await this.deleteKeys([scratchKey], signal).catch(() => undefined);
    }
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
   * Downloads to `file`, checked against the listed size and the best check
   * the response allows (see content-check.ts), and says which check that
   * was. A small object is written in one piece under its final name (a
   * rename per object is measurable on thousands); one killed mid-write is
   * caught by download's resume check, and merge reads a day only once
   * download wrote its manifest. A large one goes through a temporary name.
   */
  async download(object: ObjectInfo, file: string, signal?: AbortSignal): Promise<Downloaded> {
    const tmp = `${file}.part`;
    const checkSize = (size: number) => {
      if (size !== object.size) throw new MismatchError(`truncated download of ${object.key}: ${size} of ${object.size} bytes`);
    };
    const attempt = async (): Promise<Downloaded> => {
      const fast = object.size <= IN_MEMORY_DOWNLOAD_MAX ? await this.fast() : undefined;
      if (fast) {
        // Small objects (nearly all cold-tier files): one lean GET, one buffer, one synchronous
        // write. Creating a file costs ~0.3 ms of system time here; done in place it saves the
        // thread-pool hand-offs, which cost more CPU than they free on a busy 2-core machine.
        const { body, headers } = await fast.get(object.key, object.etag, signal);
        try {
          checkSize(body.length);
          const checker = new ContentChecker(headers);
          checker.update(body);
          checker.verify(`download of ${object.key}`);
          try {
            writeFileSync(file, body);
          } catch (err) {
            rmSync(file, { force: true });
            throw err;
          }
          return downloaded(checker, headers);
        } finally {
          fast.release(body);
        }
      }
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.name, Key: object.key, IfMatch: `"${object.etag}"`, ChecksumMode: 'ENABLED' }), {
        abortSignal: signal,
      });
      const body = r.Body as Readable;
      const headers = fromSdkOutput(r);
      const checker = new ContentChecker(headers);
      let size = 0;
      body.on('data', (chunk: Buffer) => {
        checker.update(chunk);
        size += chunk.length;
      });
      await pipeline(body, createWriteStream(tmp), { signal }).catch((err: unknown) => {
        // the SDK checks a returned checksum itself too, and fails the body when it does not match
        if (!signal?.aborted && /checksum/i.test((err as Error).message)) throw new MismatchError(`download of ${object.key}: ${(err as Error).message}`);
        throw err;
      });
      checkSize(size);
      checker.verify(`download of ${object.key}`);
      renameSync(tmp, file);
      return downloaded(checker, headers);
    };
    const where = this.target(object.key);
    return this.call('GetObject', object.key, attempt, signal).catch(async (err: unknown) => {
      await rm(tmp, { force: true });
      if (isPreconditionFailed(err)) throw new ObjectChangedError(`${where} changed after it was listed (its ETag is no longer ${object.etag}); run download again`, { cause: err });
      if (isNotFound(err)) throw new ObjectGoneError(object.key, { cause: err });
      if ((err as { name?: string }).name === 'InvalidObjectState') {
        throw new ObjectArchivedError(`${where} is archived (its storage class or tier needs a restore before it can be read); restore it (aws s3api restore-object) and run again`, { cause: err });
      }
      throw err;
    });
  }

  async put(key: string, body: Buffer | string, options: PutOptions = {}, signal?: AbortSignal): Promise<ObjectInfo> {
    return this.putObject(key, body, checksumOf('CRC32', typeof body === 'string' ? Buffer.from(body) : body), options, signal);
  }

  /** put, with the body's CRC32 (base64) already known. */
  private async putObject(key: string, body: Buffer | string, crc32: string, options: PutOptions, signal: AbortSignal | undefined): Promise<ObjectInfo> {
    const { contentType = 'application/octet-stream', ifNoneMatch, ifMatch } = options;
    const condition = ifNoneMatch || ifMatch !== undefined ? { ifNoneMatch, ifMatch } : undefined;
    try {
      const r = await this.call(
        'PutObject',
        key,
        () =>
          this.client.send(
            new PutObjectCommand({
              Bucket: this.name,
              Key: key,
              Body: body,
              ContentType: contentType,
              // S3 checks it on receipt (stores that ignore checksums ignore it)
              ChecksumCRC32: crc32,
              IfNoneMatch: ifNoneMatch,
              IfMatch: ifMatch === undefined ? undefined : this.ifMatchQuoted ? `"${ifMatch}"` : ifMatch,
              ...this.sse,
            }),
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
   * retried on its own), with its CRC32 for S3 to check on receipt, and
   * verifies the stored object (verifyStored). An upload that does not verify
   * is sent again; one that never does is deleted, not left in the bucket.
   */
  async uploadFile(key: string, file: string, options: { contentType: string; onBytes?: (loaded: number) => void }, signal?: AbortSignal): Promise<ObjectInfo> {
    const digests = await fileDigests(file, PART_SIZE);
    const once = async (): Promise<ObjectInfo> => {
      if (digests.size <= PART_SIZE) {
        await this.putObject(key, await readFile(file, { signal }), digests.crc32, { contentType: options.contentType }, signal);
        options.onBytes?.(digests.size);
      } else {
        const upload = { client: this.client, bucket: this.name, key, file, digests, sse: this.sse, ...options };
        await uploadParts(upload, (operation, fn) => this.call(operation, key, fn, signal), signal);
      }
      const head = () =>
        this.call('HeadObject', key, () => orMissing(this.client.send(new HeadObjectCommand({ Bucket: this.name, Key: key, ChecksumMode: 'ENABLED' }), { abortSignal: signal })), signal);
      return verifyStored({ key, where: this.target(key), head, readBack: () => this.getStream(key, signal) }, file, digests);
    };
    // each request above was retried already: here only a stored object that did not verify is sent again
    return this.retry.run(once, (err) => (err instanceof MismatchError ? 'retry' : 'fail'), signal).catch(async (err: unknown) => {
      if (err instanceof MismatchError) await this.deleteKeys([key], signal).catch(() => undefined);
      throw err;
    });
  }

  async abortUploads(prefix: string, isOurs: (key: string) => boolean, signal?: AbortSignal): Promise<number> {
    return abortUploads({ client: this.client, bucket: this.name, prefix, isOurs }, (operation, key, fn) => this.call(operation, key, fn, signal), signal);
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
