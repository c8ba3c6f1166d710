import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { FatalError } from './errors.js';

/**
 * A named profile that neither shared file has: the SDK would only say it
 * could load no credentials, so this is checked before any request.
 */
export function missingProfile(profile: string | undefined, env: NodeJS.ProcessEnv = process.env): FatalError | undefined {
  if (profile === undefined) return undefined;
  const files = profileFiles(env);
  if (files.some((f) => f.profiles.includes(profile))) return undefined;
  const known = [...new Set(files.flatMap((f) => f.profiles))];
  return new FatalError(`profile '${profile}' not found in ${files.map((f) => f.file).join(', ')}; check --profile or credentials.profile (profiles there: ${known.join(', ') || 'none'})`);
}

/** The shared AWS config and credentials files (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/), with the profiles each names. */
function profileFiles(env: NodeJS.ProcessEnv = process.env): { file: string; profiles: string[] }[] {
  const files = [env.AWS_CONFIG_FILE || path.join(homedir(), '.aws', 'config'), env.AWS_SHARED_CREDENTIALS_FILE || path.join(homedir(), '.aws', 'credentials')];
  return files.map((file) => {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      // absent: no profiles there
    }
    const profiles = [...text.matchAll(/^\s*\[\s*(?:profile\s+)?([^\]\s]+)\s*\]/gm)].map((m) => m[1]!);
    return { file, profiles };
  });
}
import type { RetryClass } from './retry-policy.js';

interface AwsLikeError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

const PERMISSION: Record<string, string> = {
  ListObjectsV2: 's3:ListBucket',
  GetObject: 's3:GetObject',
  HeadObject: 's3:GetObject',
  PutObject: 's3:PutObject',
  CreateMultipartUpload: 's3:PutObject',
  UploadPart: 's3:PutObject',
  CompleteMultipartUpload: 's3:PutObject',
  DeleteObjects: 's3:DeleteObject',
  ListMultipartUploads: 's3:ListBucketMultipartUploads',
  AbortMultipartUpload: 's3:AbortMultipartUpload',
  ListTimeSeries: 'iotsitewise:ListTimeSeries',
};

const CREDENTIAL_ERRORS = new Set([
  'CredentialsProviderError',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'ExpiredTokenException',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'TokenRefreshRequired',
]);

/**
 * Turns a permanent AWS fault into one line naming the bucket (or API), the
 * operation and the fix; returns undefined for anything else.
 */
export function permanentFault(err: unknown, operation: string, target: string): FatalError | undefined {
  const e = err as AwsLikeError;
  const name = e.name ?? e.code ?? '';
  const status = e.$metadata?.httpStatusCode;
  if (name === 'NoSuchBucket') return new FatalError(`${operation} on ${target}: no such bucket; check the bucket name and region`, { cause: err });
  if (CREDENTIAL_ERRORS.has(name)) {
    return new FatalError(`${operation} on ${target}: AWS credentials missing, invalid or expired (${name}); set a profile (--profile, credentials.profile) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY`, { cause: err });
  }
  // an archived object (GLACIER, DEEP_ARCHIVE, an archive tier): a fault of that object, not of the role
  if (name === 'InvalidObjectState') return undefined;
  const kms = /kms:(\w+)/.exec(e.message ?? '');
  if ((name === 'AccessDenied' || name === 'KMS.AccessDeniedException' || status === 403) && kms) {
    const key = /(arn:aws[\w-]*:kms:[^\s"',;]+)/.exec(e.message ?? '')?.[1] ?? "the bucket's KMS key";
    return new FatalError(`${operation} on ${target}: access denied by KMS; the role needs kms:${kms[1]} on ${key}`, { cause: err });
  }
  if (name === 'AccessDenied' || name === 'AccessDeniedException' || status === 403) {
    return new FatalError(`${operation} on ${target}: access denied; the role needs ${PERMISSION[operation] ?? operation} there`, { cause: err });
  }
  if (/Region is missing/i.test(e.message ?? '')) {
    return new FatalError(`${operation} on ${target}: no AWS region; set aws.region in the config, AWS_REGION, or a region in the profile`, { cause: err });
  }
  if (name === 'PermanentRedirect' || name === 'AuthorizationHeaderMalformed' || status === 301) {
    return new FatalError(`${operation} on ${target}: the bucket is in another region; set aws.region or AWS_REGION`, { cause: err });
  }
  return undefined;
}

const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET']);

/** Worth another try: 5xx, throttling, resets, timeouts, bodies cut short. */
export function isTransient(err: unknown): boolean {
  const e = err as AwsLikeError & { $retryable?: unknown };
  const status = e.$metadata?.httpStatusCode ?? 0;
  const name = e.name ?? '';
  // 501 NotImplemented (a store without an optional API) will not change on a retry
  if (status === 501 || name === 'NotImplemented') return false;
  return (
    status >= 500 ||
    status === 429 ||
    e.$retryable !== undefined ||
    TRANSIENT_CODES.has(e.code ?? '') ||
    /Throttl|SlowDown|TimeoutError|RequestTimeout|TooManyRequests|InternalError|ServiceUnavailable/.test(name) ||
    /socket hang up|premature close|aborted|ECONNRESET|truncated download/i.test(e.message ?? '')
  );
}

const THROTTLING = /Throttl|SlowDown|TooManyRequests/;
/** No connection at all: a wrong endpoint or no network, not a busy server. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

export function isUnreachable(err: unknown): boolean {
  return UNREACHABLE_CODES.has((err as AwsLikeError).code ?? '');
}

/** How the retry policy should treat a fault: throttling backs off longer than other transient faults. */
export function retryClass(err: unknown): RetryClass {
  // a conditional write that raced another one (S3's 409): the condition holds or fails on the next try
  if ((err as AwsLikeError).name === 'ConditionalRequestConflict') return 'retry';
  if (isUnreachable(err)) return 'unreachable';
  if (!isTransient(err)) return 'fail';
  const e = err as AwsLikeError;
  return e.$metadata?.httpStatusCode === 429 || e.$metadata?.httpStatusCode === 503 || THROTTLING.test(e.name ?? '') ? 'throttled' : 'retry';
}
