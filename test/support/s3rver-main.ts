/**
 * Runs s3rver as its own process (started with --openssl-legacy-provider,
 * which its ListObjectsV2 continuation tokens need on Node >= 17) and prints
 * `listening <port>` once it accepts connections. Usage: node s3rver-main.js <dir> [port]
 */
import S3rver from 's3rver';

const [dir, port] = process.argv.slice(2);
if (!dir) throw new Error('usage: s3rver-main.js <dir> [port]');
const server = new S3rver({ address: '127.0.0.1', port: Number(port ?? 0), directory: dir, silent: true });
const address = (await server.run()) as { port: number };
process.stdout.write(`listening ${address.port}\n`);
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
