import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

/**
 * A real S3 server on loopback for tests. S3_BACKEND=s3rver (default) starts
 * s3rver in a child process; S3_BACKEND=rgw uses the Ceph RADOS Gateway that
 * .ci/run (test/rgw/up.sh) started, found through S3_ENDPOINT and the AWS_* keys.
 */
export interface S3Backend {
  kind: 's3rver' | 'rgw';
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  client: S3Client;
  /** Environment for a child process (the CLI) to reach this server. */
  env: Record<string, string>;
  createBucket(label: string): Promise<string>;
  /** Stops the server process and starts it again on the same port and data (s3rver; RGW: nothing). */
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
}

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const here = path.dirname(fileURLToPath(import.meta.url));

export function backendKind(): 's3rver' | 'rgw' {
  const kind = process.env.S3_BACKEND ?? 's3rver';
  if (kind !== 's3rver' && kind !== 'rgw') throw new Error(`S3_BACKEND must be s3rver or rgw, not ${kind}`);
  return kind;
}

export async function startS3(): Promise<S3Backend> {
  const kind = backendKind();
  let endpoint: string;
  let accessKeyId: string;
  let secretAccessKey: string;
  let stopServer = async () => {};
  let pause = async () => {};
  let resume = async () => {};
  if (kind === 'rgw') {
    const { S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY } = process.env;
    if (!S3_ENDPOINT || !AWS_ACCESS_KEY_ID || !AWS_SECRET_ACCESS_KEY) {
      throw new Error('S3_BACKEND=rgw needs S3_ENDPOINT and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY: run test/rgw/up.sh and source its env file');
    }
    [endpoint, accessKeyId, secretAccessKey] = [S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY];
  } else {
    const dir = await mkdtemp(path.join(os.tmpdir(), 's3rver-'));
    let { child, port } = await spawnS3rver(dir);
    endpoint = `http://127.0.0.1:${port}`;
    [accessKeyId, secretAccessKey] = ['S3RVER', 'S3RVER'];
    pause = () => stopChild(child);
    resume = async () => {
      ({ child, port } = await spawnS3rver(dir, port));
    };
    stopServer = async () => {
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    };
  }
  const region = 'us-east-1';
  const client = new S3Client({
    endpoint,
    region,
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
  return {
    kind,
    endpoint,
    region,
    accessKeyId,
    secretAccessKey,
    client,
    env: {
      AWS_ACCESS_KEY_ID: accessKeyId,
      AWS_SECRET_ACCESS_KEY: secretAccessKey,
      AWS_REGION: region,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    async createBucket(label) {
      const name = `${label}-${randomBytes(4).toString('hex')}`.toLowerCase();
      await client.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    },
    pause,
    resume,
    async stop() {
      client.destroy();
      await stopServer();
    },
  };
}

export async function spawnS3rver(dir: string, port = 0): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--openssl-legacy-provider', path.join(here, 's3rver-main.js'), dir, String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const listening = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`s3rver exited with ${code} before listening`)));
    lines.on('line', (line) => {
      const m = /^listening (\d+)$/.exec(line);
      if (m) resolve(Number(m[1]));
    });
  });
  return { child, port: listening };
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}
