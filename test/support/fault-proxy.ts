/**
 * An HTTP proxy on loopback between the CLI and the S3 server that fails a
 * share of requests the way networks and S3 do: 500 InternalError, 503
 * SlowDown, a reset before forwarding, or a reset after the server has done
 * the work (the client never hears that it succeeded). Rules can also answer
 * chosen requests with a fixed error (AccessDenied...). Seeded, so a failing
 * run can be replayed.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { prng } from './generate-cold-tier.js';

export interface ProxyRequest {
  method: string;
  path: string;
}

export interface FaultRule {
  match: (r: ProxyRequest) => boolean;
  status: number;
  code: string;
  /** How many matching requests to fail; unlimited if unset. */
  times?: number;
}

export interface FaultProxy {
  endpoint: string;
  /** Share of requests (0..1) failed at random. */
  failureRate: number;
  /** Added before each request is forwarded, as a distant region adds it. */
  latencyMs: number;
  rules: FaultRule[];
  log: (ProxyRequest & { fault?: string })[];
  stop(): Promise<void>;
}

const KINDS = ['500', '503', 'reset-before', 'reset-after'] as const;

export async function startFaultProxy(target: string, seed = 1): Promise<FaultProxy> {
  const rand = prng(seed);
  const upstream = new URL(target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const state: FaultProxy = { endpoint: '', failureRate: 0, latencyMs: 0, rules: [], log: [], stop: async () => {} };
  const errorXml = (code: string) => `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected by the test proxy</Message></Error>`;

  const server = http.createServer((req, res) => {
    const entry: ProxyRequest & { fault?: string } = { method: req.method ?? 'GET', path: req.url ?? '/' };
    state.log.push(entry);
    const rule = state.rules.find((r) => (r.times === undefined || r.times > 0) && r.match(entry));
    if (rule) {
      if (rule.times !== undefined) rule.times--;
      entry.fault = rule.code;
      req.resume();
      res.writeHead(rule.status, { 'content-type': 'application/xml' });
      res.end(errorXml(rule.code));
      return;
    }
    const kind = rand() < state.failureRate ? KINDS[Math.floor(rand() * KINDS.length)]! : undefined;
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
    const forward = () => http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent },
      (up) => {
        if (kind === 'reset-after') {
          up.resume();
          up.on('end', () => req.socket.destroy());
          return;
        }
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    const send = () => {
      const upstreamRequest = forward();
      upstreamRequest.on('error', () => req.socket.destroy());
      req.pipe(upstreamRequest);
    };
    if (state.latencyMs > 0) setTimeout(send, state.latencyMs);
    else send();
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
