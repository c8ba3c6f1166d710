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

/** A ListTimeSeries summary, as the series catalog keeps it. */
export interface SeriesSummary {
  timeSeriesId: string;
  /** The id cold-tier file names carry: `{assetId}_{propertyId}` for an associated series, else the timeSeriesId. */
  fileId: string;
  alias?: string;
  assetId?: string;
  propertyId?: string;
  dataType?: string;
}

/** Every id a cold-tier key can carry for these series: the `timeSeriesId`, and `{assetId}_{propertyId}` for associated series. */
export function seriesIds(summaries: SeriesSummary[]): Set<string> {
  return new Set(summaries.flatMap((s) => [s.timeSeriesId, s.fileId]));
}

/** Every series SiteWise knows for the type. Throttled pages back off under the retry policy instead of failing the run. */
export async function listTimeSeries(client: IoTSiteWiseClient, type: SeriesType, retry: RetryPolicy, signal?: AbortSignal): Promise<SeriesSummary[]> {
  const found: SeriesSummary[] = [];
  let nextToken: string | undefined;
  do {
    const token = nextToken;
    const page = await retry
      .run(() => client.send(new ListTimeSeriesCommand({ timeSeriesType: type, maxResults: PAGE_SIZE, nextToken: token }), { abortSignal: signal }), retryClass, signal)
      .catch((err: unknown) => {
        throw permanentFault(err, 'ListTimeSeries', 'the AWS IoT SiteWise API') ?? err;
      });
    for (const s of page.TimeSeriesSummaries ?? []) {
      if (!s.timeSeriesId) continue;
      const associated = s.assetId && s.propertyId;
      found.push({
        timeSeriesId: s.timeSeriesId,
        fileId: associated ? `${s.assetId}_${s.propertyId}` : s.timeSeriesId,
        ...(s.alias ? { alias: s.alias } : {}),
        ...(associated ? { assetId: s.assetId, propertyId: s.propertyId } : {}),
        ...(s.dataType ? { dataType: s.dataType } : {}),
      });
    }
    nextToken = page.nextToken;
  } while (nextToken);
  return found;
}
