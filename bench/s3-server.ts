// The benchmark's S3 server: fauxqs (in memory) in a process of its own, so its CPU is not the
// tools' or the harness's, on 127.0.0.1 only. Two local-server gaps are closed here so that they
// do not pass for the tools' costs:
// - fauxqs' 11 MiB request-body limit is lifted: rclone (upload cutoff 200 MiB), aws-cli and s3cmd
//   PUT whole files or parts bigger than that, and a 413 would make a peer look broken;
// - fauxqs sorts the whole bucket with localeCompare on every ListObjectsV2 page, so listing N keys
//   costs N/1000 full sorts (minutes at 100k keys); here a sorted key index is kept per bucket and
//   rebuilt only after a write, and pages are cut from it by binary search (S3's order: by code
//   unit, which for these ASCII keys is byte order).
//   node dist/bench/s3-server.js [--port 0] [--bucket bench] [--body-limit-mib 1024]
// Prints `endpoint=http://127.0.0.1:PORT bucket=NAME` on one line once it listens.
import { parseArgs } from 'node:util';
import { buildApp } from 'fauxqs';

interface StoredObject {
  key: string;
}
interface ListOptions {
  prefix?: string;
  delimiter?: string;
  maxKeys?: number;
  startAfter?: string;
  marker?: string;
}
interface Store {
  buckets: Map<string, Map<string, StoredObject>>;
}
// The store class is not among the package's exports; the same file the app imports is patched.
const storeFile = new URL('./s3/s3Store.js', import.meta.resolve('fauxqs')).href;
const { S3Store } = (await import(storeFile)) as { S3Store: { prototype: Record<string, unknown> } };
const proto = S3Store.prototype;
const index = new WeakMap<Map<string, StoredObject>, string[]>();
for (const name of ['createBucket', 'deleteBucket', 'putObject', 'deleteObject', 'completeMultipartUpload', 'emptyBucket', 'clearObjects', 'purgeAll']) {
  const original = proto[name] as ((...a: unknown[]) => unknown) | undefined;
  if (typeof original !== 'function') throw new Error(`s3-server: fauxqs has no S3Store.${name}; update the listing patch`);
  proto[name] = function (this: Store, ...args: unknown[]): unknown {
    for (const objects of this.buckets.values()) index.delete(objects);
    return original.apply(this, args);
  };
}
const lowerBound = (keys: string[], k: string): number => {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
};
const originalList = proto['listObjects'] as (this: Store, b: string, o?: ListOptions) => unknown;
proto['listObjects'] = function (this: Store, bucket: string, options?: ListOptions) {
  const objects = this.buckets.get(bucket);
  // The original's error for a missing bucket.
  if (!objects) return originalList.call(this, bucket, options);
  let keys = index.get(objects);
  if (!keys) {
    keys = [...objects.keys()].sort();
    index.set(objects, keys);
  }
  const prefix = options?.prefix ?? '';
  const delimiter = options?.delimiter;
  const maxKeys = options?.maxKeys ?? 1000;
  const startAfter = options?.startAfter ?? options?.marker ?? '';
  const result: StoredObject[] = [];
  const commonPrefixes = new Set<string>();
  let count = 0;
  let isTruncated = false;
  let i = lowerBound(keys, prefix > startAfter ? prefix : startAfter);
  for (; i < keys.length; i++) {
    const key = keys[i]!;
    if (!key.startsWith(prefix)) break;
    if (startAfter && key <= startAfter) continue;
    if (delimiter) {
      const rest = key.slice(prefix.length);
      const at = rest.indexOf(delimiter);
      if (at >= 0) {
        const common = prefix + rest.slice(0, at + delimiter.length);
        if (startAfter && common <= startAfter) continue;
        if (!commonPrefixes.has(common)) {
          if (count >= maxKeys) {
            isTruncated = true;
            break;
          }
          commonPrefixes.add(common);
          count++;
        }
        continue;
      }
    }
    if (count >= maxKeys) {
      isTruncated = true;
      break;
    }
    result.push(objects.get(key)!);
    count++;
  }
  return { objects: result, commonPrefixes: [...commonPrefixes].sort(), isTruncated };
};

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
