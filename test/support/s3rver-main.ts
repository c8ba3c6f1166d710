/**
 * Runs s3rver as its own process (started with --openssl-legacy-provider,
 * which its ListObjectsV2 continuation tokens need on Node >= 17) and prints
 * `listening <port>` once it accepts connections. Usage: node s3rver-main.js <dir> [port]
 *
 * One fix makes it behave as S3 does: s3rver writes a PUT's body straight
 * over the stored object, so a client killed mid-body leaves the object
 * truncated, and a GET during a PUT reads half of it. S3 never stores a
 * partial PUT, and the kill tests rely on that. Here the body goes to a
 * temporary file that replaces the object only once it is complete.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import S3rver from 's3rver';
import FilesystemStore from 's3rver/lib/stores/filesystem.js';

interface StoredObject {
  bucket: string;
  key: string;
  content: Buffer | Readable;
  metadata: Record<string, string>;
}

FilesystemStore.prototype.putObject = async function putObject(object: StoredObject) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  await mkdir(path.dirname(objectPath), { recursive: true });
  const partial = `${objectPath}.${randomUUID()}.partial`;
  const md5 = createHash('md5');
  let size = 0;
  const count = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      md5.update(chunk);
      size += chunk.length;
      callback(null, chunk);
    },
  });
  const body = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content;
  try {
    await pipeline(body, count, createWriteStream(partial));
    await rename(partial, objectPath);
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  }
  const digest = md5.digest('hex');
  await this.putMetadata(object.bucket, object.key, object.metadata, digest);
  return { size, md5: digest };
};

const [dir, port] = process.argv.slice(2);
if (!dir) throw new Error('usage: s3rver-main.js <dir> [port]');
const server = new S3rver({ address: '127.0.0.1', port: Number(port ?? 0), directory: dir, silent: true });
const address = (await server.run()) as { port: number };
process.stdout.write(`listening ${address.port}\n`);
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
