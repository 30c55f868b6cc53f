// s3rver as the second test server: out of process, on disk, with real signature checks (the
// in-process fauxqs accepts any key). Its account is the fixed S3RVER / S3RVER pair.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface S3rverHandle {
  env: Record<string, string>;
  stop(): Promise<void>;
}

const CHILD = fileURLToPath(new URL('./s3rver-child.js', import.meta.url));

export async function startS3rver(bucket = 'signed'): Promise<S3rverHandle> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssync-s3rver-'));
  const child = spawn(process.execPath, ['--openssl-legacy-provider', CHILD, dir, bucket], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`s3rver exited early (${code})`)));
    child.stdout.once('data', (c: Buffer) => resolve((JSON.parse(c.toString()) as { port: number }).port));
  });
  return {
    env: {
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_S3_ENDPOINT_URL: `http://127.0.0.1:${port}`,
      AWS_STORAGE_BUCKET_NAME: bucket,
      AWS_S3_FORCE_PATH_STYLE: 'true',
    },
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
