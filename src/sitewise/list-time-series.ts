import { IoTSiteWiseClient, ListTimeSeriesCommand, type ListTimeSeriesCommandOutput } from '@aws-sdk/client-iotsitewise';
import type { Config } from '../config/load-config.js';
import { permanentFault, sleep, isTransient } from '../s3/s3-errors.js';

export const PAGE_SIZE = 250;
/** Throttled pages wait longer each time, up to this, instead of failing the run. */
const MAX_BACKOFF_MS = 20_000;
const MAX_THROTTLED_TRIES = 12;

export function createSiteWiseClient(config: Config): IoTSiteWiseClient {
  return new IoTSiteWiseClient({
    endpoint: config.sitewiseEndpoint,
    region: config.region ?? (config.sitewiseEndpoint ? 'us-east-1' : undefined),
    profile: config.profile,
    // The SDK prefixes the host with `api.`; a custom endpoint is used as given.
    disableHostPrefix: config.sitewiseEndpoint !== undefined,
    maxAttempts: 3,
  });
}

/**
 * Every series id SiteWise knows for the type, in both forms a cold-tier key
 * can carry: the `timeSeriesId`, and `{assetId}_{propertyId}` for associated
 * series.
 */
export async function listTimeSeriesIds(client: IoTSiteWiseClient, type: 'ASSOCIATED' | 'DISASSOCIATED'): Promise<Set<string>> {
  const ids = new Set<string>();
  let nextToken: string | undefined;
  do {
    const page = await fetchPage(client, type, nextToken);
    for (const s of page.TimeSeriesSummaries ?? []) {
      if (s.timeSeriesId) ids.add(s.timeSeriesId);
      if (s.assetId && s.propertyId) ids.add(`${s.assetId}_${s.propertyId}`);
    }
    nextToken = page.nextToken;
  } while (nextToken);
  return ids;
}

async function fetchPage(client: IoTSiteWiseClient, type: 'ASSOCIATED' | 'DISASSOCIATED', nextToken: string | undefined): Promise<ListTimeSeriesCommandOutput> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.send(new ListTimeSeriesCommand({ timeSeriesType: type, maxResults: PAGE_SIZE, nextToken }));
    } catch (err) {
      const fatal = permanentFault(err, 'ListTimeSeries', 'the AWS IoT SiteWise API');
      if (fatal) throw fatal;
      if (!isTransient(err) || attempt >= MAX_THROTTLED_TRIES) throw err;
      await sleep(Math.min(MAX_BACKOFF_MS, 250 * 2 ** attempt) * (0.5 + Math.random()));
    }
  }
}
