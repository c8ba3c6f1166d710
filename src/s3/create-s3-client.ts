import { Agent } from 'node:https';
import { Agent as HttpAgent } from 'node:http';
import { S3Client } from '@aws-sdk/client-s3';
import { CONNECT_TIMEOUT_MS, DEFAULT_TIMEOUTS, type Timeouts } from '../shared/retry-policy.js';

export interface S3ClientSettings {
  region?: string;
  endpoint?: string;
  forcePathStyle: boolean;
  profile?: string;
  /** Connections the client may keep open. */
  maxSockets: number;
  timeouts?: Timeouts;
}

export function createS3Client(settings: S3ClientSettings): S3Client {
  const agentOptions = { keepAlive: true, maxSockets: settings.maxSockets };
  return new S3Client({
    endpoint: settings.endpoint,
    forcePathStyle: settings.forcePathStyle,
    // A custom endpoint (a local or S3-compatible store) rarely cares about the region.
    region: settings.region ?? (settings.endpoint ? 'us-east-1' : undefined),
    profile: settings.profile,
    // one attempt per call: every retry is the retry policy's (src/shared/retry-policy.ts)
    maxAttempts: 1,
    // Stream bodies would otherwise go out aws-chunked with a CRC32 trailer, which
    // S3-compatible stores reject or store verbatim; we verify uploads ourselves.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      connectionTimeout: CONNECT_TIMEOUT_MS,
      // without throwOnRequestTimeout the handler only logs that the time is up, and waits on
      requestTimeout: (settings.timeouts ?? DEFAULT_TIMEOUTS).firstByteMs,
      throwOnRequestTimeout: true,
      socketTimeout: (settings.timeouts ?? DEFAULT_TIMEOUTS).idleMs,
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new Agent(agentOptions),
    },
  });
}
