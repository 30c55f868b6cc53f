// The benchmark harness end to end in its smallest configuration: both trees generated, the local
// S3 server started out of process, every scenario run for storage-sync, the result checked after
// each run, and the report written. Peers are left out on purpose (--tools), so the test needs
// nothing beyond the repository; timings are not asserted, only correctness and completeness.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Results } from '../../bench/report.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const RUN = path.join(here, '../../bench/run.js');

test('npm run bench, smallest configuration: every storage-sync scenario runs and is correct', { timeout: 240_000 }, async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-test-'));
  try {
    const args = [RUN, '--files', '200', '--large', '30', '--tools', 'storage-sync', '--repeat', '1', '--scale', '2000', '--out', out];
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let so = '';
      let se = '';
      child.stdout.on('data', (c: Buffer) => (so += c.toString()));
      child.stderr.on('data', (c: Buffer) => (se += c.toString()));
      child.on('exit', (c) => resolve({ code: c, stdout: so, stderr: se }));
    });
    assert.equal(code, 0, stderr);
    const results = JSON.parse(fs.readFileSync(path.join(out, 'latest.json'), 'utf8')) as Results;
    assert.equal(results.trees.A?.files, 200);
    assert.ok((results.trees.B?.files ?? 0) >= 3, 'tree B has several large files');
    const scenarios = ['first upload', 'unchanged', 'plan', 'touch 10%', 'modify 1%', 'add+del 1%', 'download'];
    for (const tree of ['A', 'B'] as const) {
      for (const sc of scenarios) {
        const runs = results.runs.filter((r) => r.tree === tree && r.scenario === sc && r.tool === 'storage-sync');
        assert.equal(runs.length, 1, `${tree} ${sc} ran once`);
        assert.equal(runs[0]!.correct, true, `${tree} ${sc}: ${runs[0]!.problems.join('; ')}`);
      }
      const unchanged = results.runs.find((r) => r.tree === tree && r.scenario === 'unchanged')!;
      assert.equal(unchanged.hashed, 0);
      assert.equal(unchanged.noop, true);
      const touched = results.runs.find((r) => r.tree === tree && r.scenario === 'touch 10%')!;
      assert.equal(touched.transferred, 0, 'a touch uploads nothing');
      for (const ref of ['find stat walk', 'md5sum (xargs -P2)', 'bare ListObjectsV2']) {
        assert.ok(results.references.some((r) => r.tree === tree && r.name === ref && r.ok), `${tree} ${ref}`);
      }
    }
    assert.deepEqual(results.scale.map((r) => r.n), [2000]);
    const md = fs.readFileSync(path.join(out, 'latest.md'), 'utf8');
    assert.match(md, /\| first upload \| [\d.]+ s ✓ \|/);
    assert.match(stdout, /## Tree B/);
    assert.match(fs.readFileSync(path.join(out, 'latest.svg'), 'utf8'), /^<svg[^>]*>[\s\S]*<\/svg>$/);
    assert.equal(fs.readdirSync(out).filter((f) => f.endsWith('.json')).length, 2, 'a timestamped copy and latest.json');
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
