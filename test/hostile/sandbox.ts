// A project root inside a sandbox folder, so that a test can check the whole tree around the
// root: whatever a hostile key or link would write outside the root lands in the sandbox (or at
// an absolute path the test names) and is seen.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach } from 'node:test';
import { md5 } from '../support/harness.js';
import { startS3Server, type TestS3 } from '../support/s3-server.js';

export interface Sandbox {
  dir: string;
  root: string;
  write(rel: string, content: string | Buffer): void;
  /** Every entry under the sandbox: files with their MD5, links with their target, folders as "dir". */
  tree(): Record<string, string>;
  cleanup(): void;
}

export function makeSandbox(): Sandbox {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssync-sandbox-'));
  const root = path.join(dir, 'project');
  fs.mkdirSync(root);
  return {
    dir,
    root,
    write(rel, content) {
      const abs = path.join(dir, rel);
      fs.mkdirSync(path.dirname(abs), { recursive: true });
      fs.writeFileSync(abs, content);
      const t = new Date(Date.now() - 5000);
      fs.utimesSync(abs, t, t);
    },
    tree: () => treeOf(dir),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

export function treeOf(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const d of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      const abs = path.join(dir, r);
      if (d.isSymbolicLink()) out[r] = `-> ${fs.readlinkSync(abs)}`;
      else if (d.isDirectory()) {
        out[r] = 'dir';
        walk(r);
      } else out[r] = md5(fs.readFileSync(abs));
    }
  };
  walk('');
  return out;
}

/** The entries of `after` that are new or changed against `before`, and those gone. */
export function treeDiff(before: Record<string, string>, after: Record<string, string>): { changed: string[]; gone: string[] } {
  return {
    changed: Object.keys(after).filter((k) => before[k] !== after[k]).sort(),
    gone: Object.keys(before).filter((k) => !(k in after)).sort(),
  };
}

/**
 * One S3 server per test file, emptied before each test, and a fresh sandbox for each test; the
 * sandboxes are removed after the last test. Returns a maker for more sandboxes, removed likewise.
 */
export function useSandboxes(server: (s3: TestS3) => void, sandbox: (b: Sandbox) => void): () => Sandbox {
  let s3: TestS3 | undefined;
  const boxes: Sandbox[] = [];
  before(async () => {
    s3 = await startS3Server();
    server(s3);
  });
  after(async () => {
    for (const b of boxes) b.cleanup();
    await s3?.stop();
  });
  const another = (): Sandbox => {
    const b = makeSandbox();
    boxes.push(b);
    return b;
  };
  beforeEach(async () => {
    await s3!.reset();
    sandbox(another());
  });
  return another;
}
