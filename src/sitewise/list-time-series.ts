import { IoTSiteWiseClient, ListTimeSeriesCommand } from '@aws-sdk/client-iotsitewise';
import { permanentFault, retryClass } from '../shared/aws-errors.js';
import { CONNECT_TIMEOUT_MS, DEFAULT_TIMEOUTS, type RetryPolicy, type Timeouts } from '../shared/retry-policy.js';

export const PAGE_SIZE = 250;

export type SeriesType = 'ASSOCIATED' | 'DISASSOCIATED';

export interface SiteWiseSettings {
  region?: string;
  endpoint?: string;
  profile?: string;
  timeouts?: Timeouts;
}

export function createSiteWiseClient(settings: SiteWiseSettings): IoTSiteWiseClient {
  return new IoTSiteWiseClient({
    endpoint: settings.endpoint,
    region: settings.region ?? (settings.endpoint ? 'us-east-1' : undefined),
    profile: settings.profile,
    // The SDK prefixes the host with `api.`; a custom endpoint is used as given.
    disableHostPrefix: settings.endpoint !== undefined,
    // one attempt per call: every retry is the retry policy's (src/shared/retry-policy.ts)
    maxAttempts: 1,
    requestHandler: {
      connectionTimeout: CONNECT_TIMEOUT_MS,
      requestTimeout: (settings.timeouts ?? DEFAULT_TIMEOUTS).firstByteMs,
      throwOnRequestTimeout: true,
      socketTimeout: (settings.timeouts ?? DEFAULT_TIMEOUTS).idleMs,
    },
  });
}

/**
 * Every series id SiteWise knows for the type, in both forms a cold-tier key
 * can carry: the `timeSeriesId`, and `{assetId}_{propertyId}` for associated
 * series. Throttled pages back off under the retry policy instead of failing the run.
 */
export async function listTimeSeriesIds(client: IoTSiteWiseClient, type: SeriesType, retry: RetryPolicy, signal?: AbortSignal): Promise<Set<string>> {
  const ids = new Set<string>();
  let nextToken: string | undefined;
  do {
    const token = nextToken;
    const page = await retry
      .run(() => client.send(new ListTimeSeriesCommand({ timeSeriesType: type, maxResults: PAGE_SIZE, nextToken: token }), { abortSignal: signal }), retryClass, signal)
      .catch((err: unknown) => {
        throw permanentFault(err, 'ListTimeSeries', 'the AWS IoT SiteWise API') ?? err;
      });
    for (const s of page.TimeSeriesSummaries ?? []) {
      if (s.timeSeriesId) ids.add(s.timeSeriesId);
      if (s.assetId && s.propertyId) ids.add(`${s.assetId}_${s.propertyId}`);
    }
    nextToken = page.nextToken;
  } while (nextToken);
  return ids;
}
