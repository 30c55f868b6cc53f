// `npm run s3-server -- [--port N] [--bucket NAME]`: a local S3 endpoint (fauxqs, in memory) in
// the foreground, for trying storage-sync by hand and for benchmarks. Prints the environment
// storage-sync needs on its first lines. Loopback only.
import { parseArgs } from 'node:util';
import { startFauxqs } from 'fauxqs';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '0' }, bucket: { type: 'string', default: 'storage-sync' } },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`s3-server: --port must be 0-65535, got ${values.port}\n`);
  process.exit(2);
}
const server = await startFauxqs({ port, logger: false, host: '127.0.0.1' });
server.createBucket(values.bucket);
process.stdout.write(
  [
    `export AWS_S3_ENDPOINT_URL=${server.address}`,
    `export AWS_STORAGE_BUCKET_NAME=${values.bucket}`,
    'export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local-secret AWS_S3_FORCE_PATH_STYLE=true',
    '# fauxqs S3 on loopback, in memory; Ctrl+C to stop',
  ].join('\n') + '\n',
);
const stop = async (): Promise<void> => {
  await server.stop();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
