// A saved plan: what `plan` computed, for `apply` to carry out later. It is checked on load
// (format, digest, profile, bucket, manifest generation) so a stale or edited plan is refused.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ACTIONS_WITH_EFFECT } from './summary.js';
import type { Mapping, Plan, PlanItem } from '../core/types.js';
import { MODES, CONFLICT_POLICIES } from '../core/types.js';
import { SafetyError, UsageError } from '../core/errors.js';
import { joinLocal, keyToRelPath } from '../core/paths.js';

const KIND = 'storage-sync-plan';
const FORMAT = 1;

export interface PlanFile {
  kind: typeof KIND;
  format: number;
  runId: string;
  createdAt: string;
  profile: string;
  endpoint: string;
  bucket: string;
  mappings: Mapping[];
  delete: boolean;
  generation: number;
  plan: Plan;
}

const sha256Of = (text: string): string => crypto.createHash('sha256').update(text).digest('hex');

function digest(body: Omit<PlanFile, never>): string {
  return sha256Of(JSON.stringify(body));
}

/** How savePlan ends its text: the digest as the last member, then the closing brace. */
const TAIL = /,"sha256":"([0-9a-f]{64})"\}\n?$/;

/**
 * The digest stays SHA-256 of the compact JSON of everything but `sha256`, as before; the file is
 * that same compact text with the digest spliced in as its last member. The body is stringified
 * once: a plan of 100k uploads stringified twice (digest, then an indented file text) peaked at
 * 815 MB RSS.
 */
export function planText(pf: PlanFile): string {
  const body = JSON.stringify(pf);
  return `${body.slice(0, -1)},"sha256":"${sha256Of(body)}"}\n`;
}

export function savePlan(dir: string, pf: PlanFile): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${pf.runId}.json`);
  const text = planText(pf);
  // Written whole then renamed, so `last.json` never points at half a plan.
  for (const target of [file, path.join(dir, 'last.json')]) {
    const tmp = `${target}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, target);
  }
  return file;
}

function fail(file: string, why: string): never {
  throw new UsageError(`plan ${file}: ${why}`);
}

/**
 * The digest is a plain SHA-256 that anyone editing the file can recompute: what an item may
 * touch is checked on its own. Its path and key must be the same file of its mapping, a path the
 * mapping could have produced from a valid key, exactly as the planner makes them.
 */
function checkTarget(file: string, i: number, mappings: Mapping[], mapping: number, p: unknown, key: unknown, what = ''): void {
  const m = mappings[mapping];
  if (!m) fail(file, `item ${i} names mapping ${mapping}, which the plan does not have`);
  if (typeof p !== 'string' || typeof key !== 'string') fail(file, `item ${i} lacks a${what} path or key`);
  let rel: string;
  try {
    rel = keyToRelPath(key, m.remote);
  } catch (err) {
    fail(file, `item ${i}: ${(err as Error).message}`);
  }
  if (p !== joinLocal(m.local, rel)) fail(file, `item ${i}${what} path ${JSON.stringify(p)} is not the file of key ${JSON.stringify(key)} in mapping ${m.local}`);
}

function checkItem(file: string, it: unknown, i: number, mappings: Mapping[]): PlanItem {
  if (typeof it !== 'object' || it === null) fail(file, `item ${i} is not an object`);
  const o = it as PlanItem;
  if (typeof o.path !== 'string' || typeof o.key !== 'string' || typeof o.action !== 'string' || typeof o.mapping !== 'number') {
    fail(file, `item ${i} lacks path, key, action or mapping`);
  }
  if (!ACTIONS_WITH_EFFECT.has(o.action) && o.action !== 'nothing' && o.action !== 'skip') fail(file, `item ${i} has unknown action "${o.action}"`);
  checkTarget(file, i, mappings, o.mapping, o.path, o.key);
  if (o.keepBoth !== undefined) checkTarget(file, i, mappings, o.mapping, o.keepBoth?.path, o.keepBoth?.key, ' keep-both');
  return o;
}

export function loadPlan(file: string): PlanFile {
  let raw: unknown;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
    raw = JSON.parse(text);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    fail(file, code === 'ENOENT' ? 'not found (run `storage-sync plan` first)' : `not valid JSON (${(err as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null) fail(file, 'not a plan');
  const { sha256, ...body } = raw as PlanFile & { sha256?: unknown };
  if (body.kind !== KIND) fail(file, 'not a storage-sync plan');
  if (body.format !== FORMAT) fail(file, `format ${String(body.format)} is not supported (expected ${FORMAT})`);
  // A file as savePlan writes it is checked on its own text (no second stringify of a big plan);
  // any other layout (an older indented plan, one re-signed by hand) the long way. Both are the
  // same digest: the text before the tail is exactly JSON.stringify of the body.
  const tail = TAIL.exec(text);
  const quick = tail !== null && tail[1] === sha256 && sha256Of(text.slice(0, tail.index) + '}') === sha256;
  if (!quick && sha256 !== digest(body)) fail(file, 'digest mismatch: the file was edited or damaged after it was saved');
  const p = body.plan;
  if (!p || !Array.isArray(p.items) || !MODES.includes(p.mode) || !CONFLICT_POLICIES.includes(p.conflict)) fail(file, 'malformed plan body');
  if (!Array.isArray(body.mappings)) fail(file, 'malformed plan body');
  p.items.forEach((it, i) => checkItem(file, it, i, body.mappings));
  return body;
}

/** A plan only applies to the manifest state and bucket it was computed against. */
export function checkPlanFresh(pf: PlanFile, file: string, now: { profile: string; endpoint: string; bucket: string; generation: number; mappings: Mapping[] }): void {
  if (pf.profile !== now.profile) throw new SafetyError(`stale plan ${file}: made for profile "${pf.profile}", not "${now.profile}"`);
  if (pf.endpoint !== now.endpoint || pf.bucket !== now.bucket) throw new SafetyError(`stale plan ${file}: made for bucket "${pf.bucket}" at ${pf.endpoint}`);
  if (JSON.stringify(pf.mappings) !== JSON.stringify(now.mappings)) throw new SafetyError(`stale plan ${file}: the mappings changed since it was made`);
  if (pf.generation !== now.generation) {
    throw new SafetyError(`stale plan ${file}: another run changed the manifest since it was made; run \`storage-sync plan\` again`);
  }
}
