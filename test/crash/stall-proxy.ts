// A TCP proxy in front of the S3 server that, once armed, lets the next large PUT body through
// only part way and then holds it: the moment to kill the client with a request half sent, which
// on a server that writes objects in place (s3rver) leaves a torn object. Deterministic, where a
// kill timed by events lands mid-PUT only by chance.
import net from 'node:net';

export interface StallProxy {
  env(base: Record<string, string>): Record<string, string>;
  /** Cuts the next PUT whose body is at least `minBytes` after `fraction` of it; resolves with its path. */
  arm(minBytes: number, fraction: number): Promise<string>;
  close(): Promise<void>;
}

interface Arming {
  minBytes: number;
  fraction: number;
  resolve: (path: string) => void;
}

export async function startStallProxy(target: string): Promise<StallProxy> {
  const { hostname, port } = new URL(target);
  let armed: Arming | undefined;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(port), hostname);
    sockets.add(client).add(upstream);
    upstream.pipe(client);
    let pending = Buffer.alloc(0);
    let state: 'head' | 'body' | 'cut' = 'head';
    let left = 0;
    let cutAfter = 0;
    const feed = (chunk: Buffer): void => {
      let data = Buffer.concat([pending, chunk]);
      pending = Buffer.alloc(0);
      while (data.length > 0) {
        if (state === 'cut') {
          const n = Math.min(cutAfter, data.length);
          if (n > 0) upstream.write(data.subarray(0, n));
          cutAfter -= n;
          return; // the rest of this connection's bytes never reach the server
        }
        if (state === 'body') {
          const n = Math.min(left, data.length);
          upstream.write(data.subarray(0, n));
          left -= n;
          data = data.subarray(n);
          if (left === 0) state = 'head';
          continue;
        }
        const end = data.indexOf('\r\n\r\n');
        if (end < 0) {
          pending = data;
          return;
        }
        const head = data.subarray(0, end + 4).toString('latin1');
        data = data.subarray(end + 4);
        upstream.write(head, 'latin1');
        const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        const [method, url] = head.split(' ');
        if (armed && method === 'PUT' && length >= armed.minBytes) {
          const a = armed;
          armed = undefined;
          state = 'cut';
          cutAfter = Math.floor(length * a.fraction);
          // Resolved once the allowed part has had time to reach the server.
          setTimeout(() => a.resolve(decodeURIComponent(url ?? '')), 300);
          continue;
        }
        state = length > 0 ? 'body' : 'head';
        left = length;
      }
    };
    client.on('data', feed);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', drop);
    upstream.on('close', drop);
    client.on('error', drop);
    upstream.on('error', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return {
    env: (base) => ({ ...base, AWS_S3_ENDPOINT_URL: endpoint }),
    arm: (minBytes, fraction) => new Promise((resolve) => (armed = { minBytes, fraction, resolve })),
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
