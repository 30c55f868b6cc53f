import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadPlan, savePlan, type PlanFile } from '../../src/engine/plan-file.js';

function samplePlan(n: number): PlanFile {
  return {
    kind: 'storage-sync-plan', format: 1, runId: 'r1', createdAt: '2026-11-27T00:00:00.000Z', profile: 'default',
    endpoint: 'http://127.0.0.1:1', bucket: 'b', mappings: [{ local: 'media', remote: 'media/' }], delete: false, generation: 3,
    plan: {
      mode: 'two-way', conflict: 'newer',
      items: Array.from({ length: n }, (_, i) => ({
        path: `media/d/é ${i}.bin`, key: `media/d/é ${i}.bin`, mapping: 0, action: 'upload' as const, reason: 'local-new' as const, bytes: i,
        local: { size: i, mtimeNs: `${i}000000000`, ino: i, md5: 'd41d8cd98f00b204e9800998ecf8427e' },
      })),
    },
  } as PlanFile;
}

test('a saved plan is the compact body with its plain SHA-256 last, and loads back whole', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plan-file-'));
  const pf = samplePlan(50);
  const file = savePlan(dir, pf);
  const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  const { sha256, ...body } = raw;
  assert.equal(sha256, crypto.createHash('sha256').update(JSON.stringify(body)).digest('hex'));
  assert.deepEqual(loadPlan(file), pf);
  assert.deepEqual(loadPlan(path.join(dir, 'last.json')), pf);
  fs.rmSync(dir, { recursive: true });
});

test('a plan saved by the previous code (indented, same digest) still loads; an edit is still refused', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plan-file-'));
  const pf = samplePlan(3);
  const old = path.join(dir, 'old.json');
  const sha256 = crypto.createHash('sha256').update(JSON.stringify(pf)).digest('hex');
  fs.writeFileSync(old, JSON.stringify({ ...pf, sha256 }, null, 1) + '\n');
  assert.deepEqual(loadPlan(old), pf);
  // Same digest tail as savePlan writes, but a body that is not what it digests.
  const file = savePlan(dir, pf);
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('"generation":3', '"generation":4'));
  assert.throws(() => loadPlan(file), /digest mismatch/);
  fs.rmSync(dir, { recursive: true });
});
