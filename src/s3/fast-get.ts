import http from 'node:http';
import https from 'node:https';
import type { S3Client } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import type { Timeouts } from '../shared/retry-policy.js';
import { fromHttpHeaders, type IntegrityHeaders } from './content-check.js';

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

/** RFC 3986 escaping, as SigV4 canonicalises a path: encodeURIComponent leaves !'()* as they are. */
const uriEscape = (segment: string) => encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * GetObject for the download hot path: one SigV4-signed HTTP GET over a
 * keep-alive agent, the body collected into one buffer. The SDK's middleware
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
    const { protocol, hostname, port, host } = this.base;
    // joined, not resolved as a URL: a key's '..' segments stay as they are
    const path = `${this.base.pathname}${key.split('/').map(uriEscape).join('/')}`;
    const headers: Record<string, string> = { host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'x-amz-checksum-mode': 'ENABLED' };
    if (etag) headers['if-match'] = `"${etag}"`;
    const signed = await this.signer.sign(
      { method: 'GET', protocol, hostname, port: port ? Number(port) : undefined, path, query: {}, headers },
      { signingDate: new Date(Date.now() + (this.client.config.systemClockOffset ?? 0)) },
    );
    const request = protocol === 'https:' ? https.request : http.request;
    return new Promise((resolve, reject) => {
      const req = request({ protocol, hostname, port, path, method: 'GET', headers: signed.headers, agent: this.agent, signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          const status = res.statusCode ?? 0;
          if (status === 200) {
            const length = Number(res.headers['content-length'] ?? body.length);
            if (body.length !== length) reject(Object.assign(new Error(`truncated download of ${key}: ${body.length} of ${length} bytes`), { code: 'ECONNRESET' }));
            else resolve({ body, headers: fromHttpHeaders(res.headers) });
            return;
          }
          const xml = body.toString('utf8');
          const code = /<Code>([^<]*)<\/Code>/.exec(xml)?.[1] ?? `Http${status}`;
          const message = /<Message>([^<]*)<\/Message>/.exec(xml)?.[1] ?? `HTTP ${status} for GET ${key}`;
          reject(new S3HttpError(code, message, status));
        });
      });
      const timedOut = (what: string) => req.destroy(Object.assign(new Error(`GET ${key}: ${what}`), { name: 'TimeoutError', code: 'ETIMEDOUT' }));
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
