/**
 * The seam between the tool and a bucket. Domain code (selection, the
 * destination's commit, adoption) sees only this; src/s3 implements it.
 * Modelled on object_store's put modes: an unconditional put, create-if-absent
 * (`ifNoneMatch: '*'`) and update-if-unchanged (`ifMatch`), the last two
 * failing with a typed PreconditionFailedError rather than overwriting.
 */
import type { ChecksumAlgorithm } from '../shared/checksums.js';

export interface ObjectInfo {
  key: string;
  size: number;
  /** ETag without quotes. */
  etag: string;
  /** As the listing gives it, when it does (STANDARD, GLACIER, ...). */
  storageClass?: string;
  /** The version read, in a versioned bucket: recorded in the ledger. */
  versionId?: string;
}

/** Storage classes whose objects cannot be read until restored (GET: 403 InvalidObjectState). */
export const ARCHIVE_CLASSES: readonly string[] = ['GLACIER', 'DEEP_ARCHIVE'];

/** An object listed but gone by the time it was read (deleted, or expired by a lifecycle rule). */
export class ObjectGoneError extends Error {
  constructor(readonly key: string, options?: { cause?: unknown }) {
    super(`${key} was deleted after it was listed`, options);
    this.name = 'ObjectGoneError';
  }
}

/** An object that changed between its listing and its read (another ETag now). */
export class ObjectChangedError extends Error {
  override readonly name = 'ObjectChangedError';
}

/** An object in an archive storage class (or an archive tier of INTELLIGENT_TIERING): it must be restored before it can be read. */
export class ObjectArchivedError extends Error {
  override readonly name = 'ObjectArchivedError';
}

/**
 * What a download's bytes were checked against: a full-object checksum the
 * store returned, the ETag where it is an MD5, or nothing ('none': the caller
 * must check the content itself).
 */
export type ContentCheck = ChecksumAlgorithm | 'MD5' | 'none';

/** What a download found: the check its bytes passed, and the version it read in a versioned bucket. */
export interface Downloaded {
  check: ContentCheck;
  versionId?: string;
}

/** What a conditional put asks of the store. */
export interface PutCondition {
  /** `'*'`: only if no object has the key. */
  ifNoneMatch?: '*';
  /** Only if the object's ETag (unquoted) is still this one. */
  ifMatch?: string;
}

export interface PutOptions extends PutCondition {
  contentType?: string;
}

/** A conditional put (or read) whose condition did not hold: nothing was written. */
export class PreconditionFailedError extends Error {
  constructor(
    readonly target: string,
    readonly condition: PutCondition,
    options?: { cause?: unknown },
  ) {
    super(`${target}: precondition failed (${condition.ifNoneMatch ? 'an object already exists' : `its ETag is no longer ${condition.ifMatch ?? '?'}`})`, options);
    this.name = 'PreconditionFailedError';
  }
}

/** A small object read whole, with the ETag a later conditional put names. */
export interface StoredObject {
  body: Buffer;
  /** ETag without quotes. */
  etag: string;
}

/**
 * What a store does with conditions on PUT, found by a probe: AWS S3 honours
 * both (since 2024), Ceph RGW 16.2 too, s3rver neither.
 */
export interface ConditionalSupport {
  /** `If-None-Match: *` fails on an existing key. */
  createIfAbsent: boolean;
  /** `If-Match` fails on another ETag and succeeds on the current one. */
  updateIfMatch: boolean;
}

export interface ObjectStore {
  /** The bucket's name, for messages. */
  readonly name: string;
  /** Checks once, before any work, that the bucket exists and may be used; a FatalError says what is wrong. */
  checkAccess(signal?: AbortSignal): Promise<void>;
  /** Every object under `prefix`, all pages, in key order. */
  list(prefix: string, signal?: AbortSignal): Promise<ObjectInfo[]>;
  /** The same, a page at a time as the store answers (each page's request retried on its own), so work on the first keys can start before the last are listed. */
  listPages(prefix: string, signal?: AbortSignal): AsyncIterable<ObjectInfo[]>;
  head(key: string, signal?: AbortSignal): Promise<(ObjectInfo & { lastModified?: Date }) | undefined>;
  /** The whole object, or undefined if there is none. For small objects (indexes, ledgers). */
  getBuffer(key: string, signal?: AbortSignal): Promise<Buffer | undefined>;
  /** getBuffer with the ETag, for a conditional put to follow. */
  read(key: string, signal?: AbortSignal): Promise<StoredObject | undefined>;
  /** Bytes `start` to `end` (exclusive) of the object at `key` (fewer where it is shorter); undefined if it does not exist. (No suffix ranges: s3rver answers them one byte long.) */
  readRange(key: string, range: { start: number; end: number }, signal?: AbortSignal): Promise<Buffer | undefined>;
  /**
   * Finds out, with a few writes to `scratchKey` (deleted after), whether the
   * store honours conditional puts, and adapts how this store sends them.
   */
  probeConditionalWrites(scratchKey: string, signal?: AbortSignal): Promise<ConditionalSupport>;
  /** A body stream for reading a large object through once. */
  getStream(key: string, signal?: AbortSignal): Promise<AsyncIterable<Buffer>>;
  /** Downloads `object` to `file`, checked against its listed size and whatever content check the store offers; says which. */
  download(object: ObjectInfo, file: string, signal?: AbortSignal): Promise<Downloaded>;
  /** Throws PreconditionFailedError when a condition is given and does not hold. */
  put(key: string, body: Buffer | string, options?: PutOptions, signal?: AbortSignal): Promise<ObjectInfo>;
  /** Uploads a local file (multipart when large) and verifies what was stored. */
  uploadFile(key: string, file: string, options: { contentType: string; onBytes?: (loaded: number) => void }, signal?: AbortSignal): Promise<ObjectInfo>;
  deleteKeys(keys: string[], signal?: AbortSignal): Promise<void>;
  /** Aborts unfinished multipart uploads under `prefix` whose key `isOurs` accepts; returns how many. */
  abortUploads(prefix: string, isOurs: (key: string) => boolean, signal?: AbortSignal): Promise<number>;
}
