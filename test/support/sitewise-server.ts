/**
 * A local stand-in for the AWS IoT SiteWise ListTimeSeries API, speaking its
 * REST-JSON protocol (GET /timeseries/?timeSeriesType=..&maxResults=..&nextToken=..)
 * so the real @aws-sdk/client-iotsitewise client talks to it. It pages, and
 * can answer the first requests with 429 ThrottlingException.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SeriesSpec } from './generate-cold-tier.js';

export interface SiteWiseServer {
  endpoint: string;
  requests: { type: string | null; maxResults: number; nextToken: string | null }[];
  /** Answer this many next requests with a throttling error. */
  throttleNext: number;
  /** Accept this many next requests and never answer them. */
  stallNext: number;
  /** Answer every request with this error (e.g. 403 AccessDeniedException). */
  failWith?: { status: number; type: string };
  stop(): Promise<void>;
}

export async function startSiteWise(series: SeriesSpec[]): Promise<SiteWiseServer> {
  const state: SiteWiseServer = { endpoint: '', requests: [], throttleNext: 0, stallNext: 0, stop: async () => {} };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET' || url.pathname.replace(/\/$/, '') !== '/timeseries') {
      send(404, { message: `no route ${req.method} ${url.pathname}` }, { 'x-amzn-errortype': 'ResourceNotFoundException' });
      return;
    }
    const type = url.searchParams.get('timeSeriesType');
    const maxResults = Number(url.searchParams.get('maxResults') ?? '50');
    const nextToken = url.searchParams.get('nextToken');
    state.requests.push({ type, maxResults, nextToken });
    if (state.failWith) {
      send(state.failWith.status, { message: 'injected by the test server' }, { 'x-amzn-errortype': state.failWith.type });
      return;
    }
    if (state.stallNext > 0) {
      state.stallNext--;
      return;
    }
    if (state.throttleNext > 0) {
      state.throttleNext--;
      send(429, { message: 'Rate exceeded' }, { 'x-amzn-errortype': 'ThrottlingException' });
      return;
    }
    if (!Number.isInteger(maxResults) || maxResults < 1 || maxResults > 250) {
      send(400, { message: 'maxResults must be 1..250' }, { 'x-amzn-errortype': 'InvalidRequestException' });
      return;
    }
    const matching = series.filter((s) => type === null || (type === 'ASSOCIATED') === s.associated);
    const start = nextToken ? Number(Buffer.from(nextToken, 'base64url').toString()) : 0;
    const page = matching.slice(start, start + maxResults);
    const end = start + page.length;
    send(200, {
      TimeSeriesSummaries: page.map((s) => ({
        timeSeriesId: s.associated ? `ts-${s.id.slice(0, 8)}` : s.id,
        ...(s.associated ? { assetId: s.assetId, propertyId: s.propertyId } : { alias: s.alias }),
        dataType: s.dataType,
        timeSeriesCreationDate: 1672531200,
        timeSeriesLastUpdateDate: 1672531200,
        timeSeriesArn: `arn:aws:iotsitewise:us-east-1:123456789012:time-series/${s.id}`,
      })),
      ...(end < matching.length ? { nextToken: Buffer.from(String(end)).toString('base64url') } : {}),
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.stop = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}
