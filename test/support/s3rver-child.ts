// Runs s3rver (filesystem-backed, checks SigV4 signatures) in its own process, since it needs
// `node --openssl-legacy-provider` on Node 20 to list past 1,000 keys. Prints {"port":N} once
// listening; stops on SIGTERM. Args: <directory> <bucket>.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const S3rver = require('s3rver') as new (o: Record<string, unknown>) => {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
};
const [directory, bucket] = process.argv.slice(2);
const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket }] });
const { port } = await server.run();
process.stdout.write(JSON.stringify({ port }) + '\n');
process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
