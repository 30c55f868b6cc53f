// The physical reference for the remote side: one bare paginated ListObjectsV2 of a prefix, in a
// process of its own like the tools. Prints {"keys":N,"ms":T} where T excludes Node's start-up.
//   node dist/bench/list.js ENDPOINT BUCKET PREFIX
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const { ListObjectsV2Command, S3Client } = await import('@aws-sdk/client-s3');
const [endpoint, bucket, prefix] = process.argv.slice(2);
if (!endpoint || !bucket || prefix === undefined) {
  process.stderr.write('usage: list.js ENDPOINT BUCKET PREFIX\n');
  process.exit(2);
}
const client = new S3Client({
  endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: 'local', secretAccessKey: 'local-secret' },
});
const t0 = process.hrtime.bigint();
let keys = 0;
let token: string | undefined;
do {
  const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
  keys += page.KeyCount ?? 0;
  token = page.NextContinuationToken;
} while (token);
const ms = Number(process.hrtime.bigint() - t0) / 1e6;
client.destroy();
process.stdout.write(JSON.stringify({ keys, ms }) + '\n');
