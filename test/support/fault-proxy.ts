/**
 * An HTTP proxy on loopback between the CLI and the S3 server that fails a
 * share of requests the way networks and S3 do: 500 InternalError, 503
 * SlowDown, a reset before forwarding, or a reset after the server has done
 * the work (the client never hears that it succeeded). Rules can also answer
 * chosen requests with a fixed error (AccessDenied...). Seeded, so a failing
 * run can be replayed.
 */
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import http from 'node:http';
import { checksumOf } from '../../src/shared/checksums.js';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AddressInfo } from 'node:net';
import { prng } from './generate-cold-tier.js';

export interface ProxyRequest {
  method: string;
  path: string;
  /** The x-amz-server-side-encryption the client asked for, if any. */
  sse?: string;
  /** The session token the request was signed with, if any. */
  token?: string;
  /** When the proxy received it, and when its answer ended (ms since the epoch). */
  at?: number;
  done?: number;
}

export interface FaultRule {
  match: (r: ProxyRequest) => boolean;
  status: number;
  code: string;
  /** How many matching requests to fail; unlimited if unset. */
  times?: number;
  /** The error's Message (default: that the proxy injected it). */
  message?: string;
}

/** How a bucket's ETags look through the proxy, as AWS shows them: SSE-KMS (not MD5, with the SSE header) or multipart-style (`<hex>-N`). */
export type EtagStyle = 'kms' | 'multipart';

export interface FaultProxy {
  endpoint: string;
  /** Buckets whose ETags the proxy rewrites (stable per object), in headers and listings, mapping If-Match back. */
  etagStyle: Record<string, EtagStyle>;
  /** Buckets whose object GETs carry x-amz-checksum-crc32 (of the bytes as stored), as S3 returns it with x-amz-checksum-mode. */
  checksums: Set<string>;
  /** Objects a lifecycle rule moved to an archive class: listings show `storageClass`, and GETs get 403 InvalidObjectState. */
  archived?: { match: (key: string) => boolean; storageClass: string };
  /** Requests accepted and never answered ('no-answer'), or answered with half the body and then silence ('stop-body'). */
  stall: { match: (r: ProxyRequest) => boolean; times?: number; mode: 'no-answer' | 'stop-body' }[];
  /** Responses whose body gets one byte flipped (its middle), headers and ETag kept: a fault no TCP checksum caught. */
  alter: { match: (r: ProxyRequest) => boolean; times?: number }[];
  /** Share of requests (0..1) failed at random. */
  failureRate: number;
  /** Share of requests (0..1) answered 503 SlowDown, as S3 does under load. */
  throttleRate: number;
  /** Outages: from the first request `trigger` matches, every request is answered 503 SlowDown for `ms`. Each happens once. */
  outages: { trigger: (r: ProxyRequest) => boolean; ms: number; until?: number }[];
  /** Added before each request is forwarded, as a distant region adds it. */
  latencyMs: number;
  /** More delay for the requests `match` accepts (a slow listing page, say), on top of latencyMs. */
  slow: { match: (r: ProxyRequest) => boolean; ms: number }[];
  rules: FaultRule[];
  log: (ProxyRequest & { fault?: string })[];
  stop(): Promise<void>;
}

const KINDS = ['500', '503', 'reset-before', 'reset-after'] as const;

/** Keys to sign again a request whose conditional headers the proxy mapped back to the server's ETags. */
export interface ProxyCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

/** SHA-256 (HMAC with a secret) in the shape SigV4's signer takes. */
class Sha256 {
  private hash: Hash | Hmac;
  private readonly secret: string | Uint8Array | undefined;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.secret = secret === undefined || typeof secret === 'string' ? secret : Sha256.bytes(secret);
    this.hash = Sha256.start(this.secret);
  }
  private static bytes(data: ArrayBuffer | ArrayBufferView): Uint8Array {
    return ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
  }
  private static start(secret?: string | Uint8Array): Hash | Hmac {
    return secret === undefined ? createHash('sha256') : createHmac('sha256', secret);
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(typeof data === 'string' ? data : Sha256.bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
  reset(): void {
    this.hash = Sha256.start(this.secret);
  }
}

/** SigV4 again, over the headers the client signed (SignedHeaders), at the client's own x-amz-date. */
async function signAgain(headers: http.IncomingHttpHeaders, method: string, url: string, credentials: ProxyCredentials): Promise<http.IncomingHttpHeaders> {
  const auth = String(headers.authorization ?? '');
  const signedNames = /SignedHeaders=([^,]+)/.exec(auth)?.[1]?.split(';') ?? [];
  const date = String(headers['x-amz-date'] ?? '');
  const signingDate = new Date(`${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`);
  const [pathname, search = ''] = url.split('?');
  const query: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(search)) query[k] = v;
  const toSign: Record<string, string> = {};
  for (const name of signedNames) if (name !== 'authorization' && headers[name] !== undefined) toSign[name] = String(headers[name]);
  const host = String(headers.host ?? '');
  const signer = new SignatureV4({ credentials, region: credentials.region, service: 's3', sha256: Sha256, uriEscapePath: false });
  const signed = await signer.sign({ method, protocol: 'http:', hostname: host.split(':')[0]!, path: pathname!, query, headers: toSign }, { signingDate });
  return { ...headers, authorization: signed.headers.authorization };
}

export async function startFaultProxy(target: string, seed = 1, credentials?: ProxyCredentials): Promise<FaultProxy> {
  const rand = prng(seed);
  const upstream = new URL(target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const state: FaultProxy = { endpoint: '', etagStyle: {}, checksums: new Set(), stall: [], alter: [], failureRate: 0, throttleRate: 0, outages: [], latencyMs: 0, slow: [], rules: [], log: [], stop: async () => {} };
  const realEtags = new Map<string, string>();
  /** checksums: the CRC32 of each object PUT through the proxy, by path. */
  const storedCrcs = new Map<string, string>();
  const fakeEtag = (real: string, style: EtagStyle) => {
    const fake = createHash('md5').update(`${style}:${real}`).digest('hex') + (style === 'multipart' ? '-2' : '');
    realEtags.set(fake, real);
    return fake;
  };
  const errorXml = (code: string, message = 'injected by the test proxy') => `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;

  const server = http.createServer((req, res) => {
    const sseHeader = req.headers['x-amz-server-side-encryption'];
    const token = req.headers['x-amz-security-token'];
    const entry: ProxyRequest & { fault?: string } = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      sse: typeof sseHeader === 'string' ? sseHeader : undefined,
      token: typeof token === 'string' ? token : undefined,
      at: Date.now(),
    };
    res.on('close', () => (entry.done = Date.now()));
    state.log.push(entry);
    const rule = state.rules.find((r) => (r.times === undefined || r.times > 0) && r.match(entry));
    if (rule) {
      if (rule.times !== undefined) rule.times--;
      entry.fault = rule.code;
      req.resume();
      res.writeHead(rule.status, { 'content-type': 'application/xml' });
      res.end(errorXml(rule.code, rule.message));
      return;
    }
    const stall = state.stall.find((a) => (a.times === undefined || a.times > 0) && a.match(entry));
    if (stall?.times !== undefined) stall.times--;
    if (stall?.mode === 'no-answer') {
      entry.fault = 'no-answer';
      req.resume();
      return;
    }
    const now = Date.now();
    for (const o of state.outages) if (o.until === undefined && o.trigger(entry)) o.until = now + o.ms;
    const down = state.outages.some((o) => o.until !== undefined && now < o.until);
    const archivedKey = state.archived && req.method === 'GET' && !entry.path.includes('?') ? decodeURIComponent(entry.path.split('/').slice(2).join('/')) : undefined;
    if (archivedKey !== undefined && state.archived?.match(archivedKey)) {
      entry.fault = 'InvalidObjectState';
      req.resume();
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.end(errorXml('InvalidObjectState'));
      return;
    }
    const kind = down || (state.throttleRate > 0 && rand() < state.throttleRate) ? '503' : rand() < state.failureRate ? KINDS[Math.floor(rand() * KINDS.length)]! : undefined;
    entry.fault = kind;
    if (kind === '500' || kind === '503') {
      req.resume();
      res.writeHead(Number(kind), { 'content-type': 'application/xml' });
      res.end(errorXml(kind === '500' ? 'InternalError' : 'SlowDown'));
      return;
    }
    if (kind === 'reset-before') {
      req.socket.destroy();
      return;
    }
    const bucket = entry.path.split('?')[0]!.split('/')[1] ?? '';
    // parts of a multipart upload keep their ETags: the client sends them back to complete it
    const style = entry.path.includes('uploadId=') ? undefined : state.etagStyle[bucket];
    const alter = state.alter.find((a) => (a.times === undefined || a.times > 0) && a.match(entry));
    if (alter?.times !== undefined) alter.times--;
    let headers = { ...req.headers };
    let mapped = false;
    // a KMS bucket takes the SSE headers, as AWS does; the server behind may know no KMS
    if (style === 'kms' && entry.sse) {
      for (const h of Object.keys(headers)) if (h.startsWith('x-amz-server-side-encryption')) delete headers[h];
      mapped = true;
    }
    for (const h of ['if-match', 'if-none-match'] as const) {
      const v = headers[h];
      const real = style && typeof v === 'string' ? realEtags.get(v.replace(/"/g, '')) : undefined;
      if (real) {
        headers[h] = `"${real}"`;
        mapped = true;
      }
    }
    const forward = () =>
      http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent }, (up) => {
        if (kind === 'reset-after') {
          up.resume();
          up.on('end', () => req.socket.destroy());
          return;
        }
        if (stall) {
          entry.fault = 'stop-body';
          const chunks: Buffer[] = [];
          up.on('data', (c: Buffer) => chunks.push(c));
          up.on('end', () => {
            const body = Buffer.concat(chunks);
            res.writeHead(up.statusCode ?? 502, up.headers);
            res.write(body.subarray(0, body.length >> 1)); // and then nothing more
          });
          return;
        }
        const listing = state.archived && entry.path.includes('list-type=2');
        const checksum = state.checksums.has(bucket) && req.method === 'GET' && !entry.path.includes('?');
        const storedCrc = state.checksums.has(bucket) && req.method === 'HEAD' ? storedCrcs.get(entry.path.split('?')[0]!) : undefined;
        if (!style && !alter && !listing && !checksum && !storedCrc) {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        up.on('data', (c: Buffer) => chunks.push(c));
        up.on('end', () => {
          let body = Buffer.concat(chunks);
          const out = { ...up.headers };
          if (style) {
            if (typeof out.etag === 'string') out.etag = `"${fakeEtag(out.etag.replace(/"/g, ''), style)}"`;
            if (style === 'kms' && (up.statusCode ?? 0) < 300) out['x-amz-server-side-encryption'] = 'aws:kms';
            if (/xml/.test(String(out['content-type'] ?? ''))) {
              body = Buffer.from(body.toString('utf8').replace(/<ETag>(&quot;|")?([^<&"]+)(&quot;|")?<\/ETag>/g, (_m, q1: string | undefined, etag: string, q2: string | undefined) => `<ETag>${q1 ?? ''}${fakeEtag(etag, style)}${q2 ?? ''}</ETag>`));
            }
          }
          if (listing && state.archived) {
            const { match, storageClass } = state.archived;
            body = Buffer.from(
              body.toString('utf8').replace(/<Contents>([\s\S]*?)<\/Contents>/g, (whole, inner: string) => {
                const key = /<Key>([^<]*)<\/Key>/.exec(inner)?.[1];
                if (key === undefined || !match(key.replace(/&amp;/g, '&'))) return whole;
                const withClass = /<StorageClass>/.test(inner) ? inner.replace(/<StorageClass>[^<]*<\/StorageClass>/, `<StorageClass>${storageClass}</StorageClass>`) : `${inner}<StorageClass>${storageClass}</StorageClass>`;
                return `<Contents>${withClass}</Contents>`;
              }),
            );
          }
          if (storedCrc && (up.statusCode ?? 0) === 200) {
            out['x-amz-checksum-crc32'] = storedCrc;
            out['x-amz-checksum-type'] = 'FULL_OBJECT';
          }
          if (checksum && (up.statusCode ?? 0) === 200) {
            out['x-amz-checksum-crc32'] = checksumOf('CRC32', body);
            out['x-amz-checksum-type'] = 'FULL_OBJECT';
          }
          if (alter && (up.statusCode ?? 0) === 200 && body.length > 0) {
            entry.fault = 'altered';
            body = Buffer.from(body);
            body[body.length >> 1]! ^= 0x55;
          }
          if (req.method !== 'HEAD') {
            out['content-length'] = String(body.length);
            delete out['transfer-encoding'];
          }
          res.writeHead(up.statusCode ?? 502, out);
          res.end(body);
        });
      });
    const send = async () => {
      // the condition's value is signed: a server that checks signatures needs it signed again
      if (mapped && credentials) headers = await signAgain(headers, req.method ?? 'GET', req.url ?? '/', credentials);
      const upstreamRequest = forward();
      upstreamRequest.on('error', () => req.socket.destroy());
      if (!(state.checksums.has(bucket) && req.method === 'PUT' && !entry.path.includes('uploadId='))) {
        req.pipe(upstreamRequest);
        return;
      }
      // a store that keeps checksums: remember the CRC32 of what was stored, for its HEADs
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        storedCrcs.set(entry.path.split('?')[0]!, checksumOf('CRC32', body));
        upstreamRequest.end(body);
      });
    };
    const delay = state.latencyMs + (state.slow.find((x) => x.match(entry))?.ms ?? 0);
    if (delay > 0) setTimeout(() => void send(), delay);
    else void send();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.stop = () =>
    new Promise((resolve) => {
      agent.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}
