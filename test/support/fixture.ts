// One S3 server per test file, emptied before each test, and a fresh project for each test.
import { after, before, beforeEach } from 'node:test';
import { startS3Server, type TestS3 } from './s3-server.js';
import assert from 'node:assert/strict';
import { makeProject, runCli, type Project } from './harness.js';

export interface FixtureHooks {
  /** Receives the server once it is up (the file keeps it in its own variable). */
  server(s3: TestS3): void;
  /** Receives each test's new project. */
  project(p: Project): void;
  /** Files and objects every test of the file starts with. */
  setup?(s3: TestS3, p: Project): Promise<void> | void;
  /** Checks after the last test, before the server stops. */
  finally?(s3: TestS3): void;
}

export function useFixture(h: FixtureHooks): void {
  let s3: TestS3 | undefined;
  let p: Project | undefined;
  before(async () => {
    s3 = await startS3Server();
    h.server(s3);
  });
  after(async () => {
    p?.cleanup();
    if (!s3) return;
    try {
      h.finally?.(s3);
    } finally {
      await s3.stop();
    }
  });
  beforeEach(async () => {
    await s3!.reset();
    p?.cleanup();
    p = makeProject();
    h.project(p);
    await h.setup?.(s3!, p);
  });
}

/**
 * One S3 server per test file (handed to `server` once it is up) and a `project()` maker whose
 * projects are all removed after the last test: for files whose tests share state across tests.
 */
export function useServerAndProjects(server: (s3: TestS3) => void): (files?: Record<string, string | Buffer>) => Project {
  let s3: TestS3 | undefined;
  const projects: Project[] = [];
  before(async () => {
    s3 = await startS3Server();
    server(s3);
  });
  after(async () => {
    await s3?.stop();
    for (const p of projects) p.cleanup();
  });
  return (files = {}) => {
    const p = makeProject(files);
    projects.push(p);
    return p;
  };
}

/**
 * A `useFixture` setup: a small site (two mappings, a subfolder) already synced, so a test starts
 * from a manifest consistent with both sides.
 */
export async function syncedSite(s3: TestS3, p: Project): Promise<void> {
  for (const [f, body] of Object.entries({ 'media/a.txt': 'alpha', 'media/b.txt': 'bravo', 'media/sub/c.txt': 'charlie', 'staticfiles/s.css': 'body{}' })) p.write(f, body);
  const r = await runCli(['sync', '--json'], { cwd: p.root, env: s3.env });
  assert.equal(r.code, 0, r.stderr);
}
