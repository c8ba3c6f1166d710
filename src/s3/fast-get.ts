import http from 'node:http';
import https from 'node:https';
import type { S3Client } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import type { Timeouts } from '../shared/retry-policy.js';
import type { ObjectInfo } from '../store/object-store.js';
import { fromHttpHeaders, type IntegrityHeaders } from './content-check.js';
import { unquote } from './s3-responses.js';

/** An error shaped like the SDK's (name = S3 error code, $metadata.httpStatusCode), so retries and fault messages treat both alike. */
export class S3HttpError extends Error {
  readonly $metadata: { httpStatusCode: number };
  constructor(code: string, message: string, status: number) {
    super(message);
    this.name = code;
    this.$metadata = { httpStatusCode: status };
  }
}

type Agent = http.Agent | https.Agent;

/**
 * Response buffers, reused: each body is copied into one as its bytes come,
 * so the socket's chunks die young and no body is new garbage: it spares a
 * copy and the collection of a buffer per object (three 1 GB days, 18,813
 * objects, downloaded in 29-34 s where they took 39-46 s). Sized
 * in powers of two; those in use are the GETs in flight (concurrency x the
 * objects' size rounded up: 64 x 256 KiB for the usual cold-tier file), and
 * at most POOL_MAX_BYTES wait to be used again.
 */
const POOL_MAX_BYTES = 32 * 2 ** 20;
/**
 * The waiting buffers are dropped once no GET has taken or given back one for this long:
 * `run` merges and uploads for tens of seconds after its last download, and
 * would otherwise hold up to POOL_MAX_BYTES it no longer uses.
 */
const POOL_IDLE_MS = 2_000;

class BodyPool {
  private readonly free = new Map<number, Buffer[]>();
  private readonly ours = new WeakSet<ArrayBufferLike>();
  /** Bytes waiting in `free`, at most POOL_MAX_BYTES (objects of many sizes would otherwise keep a set of each). */
  private idleBytes = 0;
  /** Restarted by every take() and give(): fires once the pool has been idle for POOL_IDLE_MS. */
  private readonly idle = setTimeout(() => this.dropIdle(), POOL_IDLE_MS).unref();
  take(length: number): Buffer {
    this.idle.refresh();
    // 4 KiB and up: each buffer has a memory block of its own, not a slice of Node's shared pool
    const size = 2 ** Math.ceil(Math.log2(Math.max(length, 4096)));
    const reused = this.free.get(size)?.pop();
    if (reused) {
      this.idleBytes -= size;
      return reused;
    }
    const fresh = Buffer.allocUnsafe(size);
    this.ours.add(fresh.buffer);
    return fresh;
  }
  private dropIdle(): void {
    this.free.clear();
    this.idleBytes = 0;
  }
  /** Takes back a buffer take() gave (or a part of one); any other is left to the GC. */
  give(body: Buffer): void {
    this.idle.refresh();
    if (!this.ours.has(body.buffer) || this.idleBytes + body.buffer.byteLength > POOL_MAX_BYTES) return;
    this.idleBytes += body.buffer.byteLength;
    const whole = Buffer.from(body.buffer, 0, body.buffer.byteLength);
    const list = this.free.get(whole.length) ?? [];
    list.push(whole);
    this.free.set(whole.length, list);
  }
}

/** RFC 3986 escaping, as SigV4 canonicalises a path: encodeURIComponent leaves !'()* as they are. */
const uriEscape = (segment: string) => encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * GetObject for the download hot path: one SigV4-signed HTTP GET over a
 * keep-alive agent, the body collected into one (reused) buffer. The SDK's middleware
 * stack (endpoint rules, serde, retry bookkeeping) costs about 1 ms of CPU per
 * request, most of a download's CPU on thousands of small objects. This uses
 * the client's own credentials, endpoint rules, signer settings and clock
 * offset, resolved once per bucket; retries are the caller's (the retry policy).
 */
export class FastGet {
  private constructor(
    private readonly client: S3Client,
    private readonly base: URL,
    private readonly signer: SignatureV4,
    private readonly agent: Agent,
    private readonly timeouts: Timeouts,
  ) {}

  private readonly bodies = new BodyPool();

  /** Hands a body that get() returned back for reuse; it must not be read after. */
  release(body: Buffer): void {
    this.bodies.give(body);
  }

  /** undefined when the bucket needs something this path does not do (SigV4a, S3 Express): use the SDK. */
  static async create(client: S3Client, bucket: string, maxSockets: number, timeouts: Timeouts): Promise<FastGet | undefined> {
    const config = client.config;
    const custom = config.isCustomEndpoint && config.endpoint ? await config.endpoint() : undefined;
    const endpoint = config.endpointProvider({
      Bucket: bucket,
      Region: await config.region(),
      UseFIPS: await config.useFipsEndpoint(),
      UseDualStack: await config.useDualstackEndpoint(),
      ForcePathStyle: config.forcePathStyle,
      Accelerate: config.useAccelerateEndpoint,
      Endpoint: custom ? `${custom.protocol}//${custom.hostname}${custom.port ? `:${custom.port}` : ''}${custom.path}` : undefined,
    });
    const scheme = (endpoint.properties?.authSchemes as { name?: string; signingRegion?: string }[] | undefined)?.[0];
    if (scheme?.name !== 'sigv4' || !scheme.signingRegion) return undefined;
    const signer = new SignatureV4({ credentials: config.credentials, region: scheme.signingRegion, service: 's3', sha256: config.sha256, uriEscapePath: false });
    const base = new URL(endpoint.url.href.endsWith('/') ? endpoint.url.href : `${endpoint.url.href}/`);
    const agent = base.protocol === 'https:' ? new https.Agent({ keepAlive: true, maxSockets }) : new http.Agent({ keepAlive: true, maxSockets });
    return new FastGet(client, base, signer, agent, timeouts);
  }

  /**
   * The object's bytes and the headers that say how to check them (its
   * full-object checksum is asked for); with `etag`, only if it still has
   * that ETag (412 PreconditionFailed otherwise).
   */
  async get(key: string, etag?: string, signal?: AbortSignal): Promise<{ body: Buffer; headers: IntegrityHeaders }> {
    // joined, not resolved as a URL: a key's '..' segments stay as they are
    const path = `${this.base.pathname}${key.split('/').map(uriEscape).join('/')}`;
    const headers: Record<string, string> = { 'x-amz-checksum-mode': 'ENABLED' };
    if (etag) headers['if-match'] = `"${etag}"`;
    const res = await this.send(path, {}, headers, signal, `GET ${key}`);
    return new Promise((resolve, reject) => {
      const status = res.statusCode ?? 0;
      const declared = Number(res.headers['content-length']);
      // a 200 with its length into a pooled buffer, each chunk copied as it comes; anything else collected as it is
      const pooled = status === 200 && Number.isSafeInteger(declared) ? this.bodies.take(declared) : undefined;
      const chunks: Buffer[] = [];
      let received = 0;
      res.on('data', (c: Buffer) => {
        if (pooled && received + c.length <= pooled.length) c.copy(pooled, received);
        else chunks.push(c);
        received += c.length;
      });
      res.on('error', reject);
      res.on('end', () => {
        if (status !== 200) return reject(s3Error(Buffer.concat(chunks), status, `GET ${key}`));
        const length = Number.isSafeInteger(declared) ? declared : received;
        if (received !== length) reject(Object.assign(new Error(`truncated download of ${key}: ${received} of ${length} bytes`), { code: 'ECONNRESET' }));
        else resolve({ body: pooled ? pooled.subarray(0, received) : Buffer.concat(chunks), headers: fromHttpHeaders(res.headers) });
      });
    });
  }

  /**
   * One page of ListObjectsV2 (up to 1,000 keys) and the token of the next,
   * read from its XML here: the SDK's parser and response schema cost some
   * 0.1 ms of CPU a key, most of a listing's time on a busy machine.
   */
  async listPage(prefix: string, token: string | undefined, signal?: AbortSignal): Promise<ListPage> {
    const query: Record<string, string> = { 'list-type': '2', prefix, ...(token ? { 'continuation-token': token } : {}) };
    const res = await this.send(this.base.pathname, query, {}, signal, `LIST ${prefix}`);
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    if (res.statusCode !== 200) throw s3Error(body, res.statusCode ?? 0, `LIST ${prefix}`);
    return parseListPage(body.toString('utf8'), `LIST ${prefix}`);
  }

  /** Signs and sends a GET; resolves once the response's headers are in (its body is the caller's to read). */
  private async send(path: string, query: Record<string, string>, extra: Record<string, string>, signal: AbortSignal | undefined, what: string): Promise<http.IncomingMessage> {
    const { protocol, hostname, port, host } = this.base;
    const headers: Record<string, string> = { host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...extra };
    const signed = await this.signer.sign(
      { method: 'GET', protocol, hostname, port: port ? Number(port) : undefined, path, query, headers },
      { signingDate: new Date(Date.now() + (this.client.config.systemClockOffset ?? 0)) },
    );
    const search = Object.entries(query)
      .map(([k, v]) => `${uriEscape(k)}=${uriEscape(v)}`)
      .join('&');
    const request = protocol === 'https:' ? https.request : http.request;
    return new Promise((resolve, reject) => {
      const req = request({ protocol, hostname, port, path: search ? `${path}?${search}` : path, method: 'GET', headers: signed.headers, agent: this.agent, signal }, resolve);
      const timedOut = (why: string) => req.destroy(Object.assign(new Error(`${what}: ${why}`), { name: 'TimeoutError', code: 'ETIMEDOUT' }));
      const firstByte = setTimeout(() => timedOut(`no answer within ${this.timeouts.firstByteMs} ms`), this.timeouts.firstByteMs);
      req.once('response', () => clearTimeout(firstByte));
      req.once('close', () => clearTimeout(firstByte));
      req.setTimeout(this.timeouts.idleMs, () => timedOut(`the connection was silent for ${this.timeouts.idleMs} ms`));
      req.on('error', reject);
      req.end();
    });
  }

  destroy(): void {
    this.agent.destroy();
  }
}

/** An S3 error response as the SDK would raise it: its code as the name. */
function s3Error(body: Buffer, status: number, what: string): S3HttpError {
  const xml = body.toString('utf8');
  const code = /<Code>([^<]*)<\/Code>/.exec(xml)?.[1] ?? `Http${status}`;
  const message = /<Message>([^<]*)<\/Message>/.exec(xml)?.[1] ?? `HTTP ${status} for ${what}`;
  return new S3HttpError(code, xmlText(message), status);
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** A page of a listing: its keys, and whether more follow (under `next`, the continuation token). */
export interface ListPage {
  objects: ObjectInfo[];
  truncated: boolean;
  next?: string;
}

/** An XML element's text: its five named entities and numeric character references decoded. */
function xmlText(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (whole, name: string) => {
    if (name[0] !== '#') return ENTITIES[name] ?? whole;
    return String.fromCodePoint(name[1] === 'x' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10));
  });
}

/** The elements read, each pattern made once: a listing reads four for every key. */
const ELEMENTS = new Map(['Key', 'Size', 'ETag', 'StorageClass', 'IsTruncated', 'NextContinuationToken'].map((name) => [name, new RegExp(`<${name}>([^<]*)</${name}>`)]));

const element = (xml: string, name: string) => {
  const m = ELEMENTS.get(name)!.exec(xml);
  return m ? xmlText(m[1]!) : undefined;
};

/** A ListObjectsV2 response: each Contents' key, size, ETag (unquoted) and storage class, and the next page's token. */
function parseListPage(xml: string, what: string): ListPage {
  const end = xml.lastIndexOf('</Contents>');
  // the result's own elements come before the first Contents or after the last
  const outside = end < 0 ? xml : xml.slice(0, xml.indexOf('<Contents>')) + xml.slice(end);
  if (!outside.includes('<ListBucketResult')) throw new Error(`${what}: the answer is not a ListObjectsV2 result`);
  const objects: ObjectInfo[] = [];
  for (const part of end < 0 ? [] : xml.slice(xml.indexOf('<Contents>'), end).split('<Contents>')) {
    const key = element(part, 'Key');
    if (key === undefined) continue;
    const storageClass = element(part, 'StorageClass');
    objects.push({ key, size: Number(element(part, 'Size') ?? 0), etag: unquote(element(part, 'ETag')), ...(storageClass ? { storageClass } : {}) });
  }
  return { objects, truncated: element(outside, 'IsTruncated') === 'true', next: element(outside, 'NextContinuationToken') };
}
