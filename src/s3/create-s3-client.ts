import { Agent } from 'node:https';
import { Agent as HttpAgent } from 'node:http';
import { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../config/load-config.js';

/** Per-attempt limits; the SDK retries a failed attempt (standard mode, backoff). */
const CONNECT_TIMEOUT_MS = 5_000;
export const REQUEST_TIMEOUT_MS = 60_000;
export const MAX_ATTEMPTS = 6;

export function createS3Client(config: Config): S3Client {
  const agentOptions = { keepAlive: true, maxSockets: config.concurrency + 4 };
  return new S3Client({
    endpoint: config.s3Endpoint,
    forcePathStyle: config.s3ForcePathStyle,
    // A custom endpoint (a local or S3-compatible store) rarely cares about the region.
    region: config.region ?? (config.s3Endpoint ? 'us-east-1' : undefined),
    profile: config.profile,
    maxAttempts: MAX_ATTEMPTS,
    // Stream bodies would otherwise go out aws-chunked with a CRC32 trailer, which
    // S3-compatible stores reject or store verbatim; we verify uploads ourselves.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      connectionTimeout: CONNECT_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new Agent(agentOptions),
    },
  });
}
