// The benchmark's S3 server: fauxqs (in memory) in a process of its own, so its CPU is not the
// tools' or the harness's, on 127.0.0.1 only. Unlike `npm run s3-server` it lifts fauxqs'
// 11 MiB request-body limit: rclone (upload cutoff 200 MiB), aws-cli and s3cmd PUT whole files
// or parts bigger than that, and a 413 would make a peer look broken when the server is.
//   node dist/bench/s3-server.js [--port 0] [--bucket bench] [--body-limit-mib 1024]
// Prints `endpoint=http://127.0.0.1:PORT bucket=NAME` on one line once it listens.
import { parseArgs } from 'node:util';
import { buildApp } from 'fauxqs';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    bucket: { type: 'string', default: 'bench' },
    'body-limit-mib': { type: 'string', default: '1024' },
  },
});
const app = buildApp({ logger: false, host: '127.0.0.1' });
const bodyLimit = Number(values['body-limit-mib']) * 1024 * 1024;
// fauxqs registers its S3 body parser for every content type with Fastify's 11 MiB default; the
// same parser with a bigger limit replaces it (routes set no limit of their own, so the parser's wins).
app.removeContentTypeParser('*');
app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_req, body, done) => done(null, body));
const address = await app.listen({ port: Number(values.port), host: '127.0.0.1' });
const res = await fetch(`${address}/${values.bucket}`, { method: 'PUT' });
if (!res.ok) throw new Error(`s3-server: creating bucket ${values.bucket}: HTTP ${res.status}`);
process.stdout.write(`endpoint=${address} bucket=${values.bucket} bodyLimitMiB=${values['body-limit-mib']}\n`);
const stop = async (): Promise<void> => {
  await app.close();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
