// An independent reference model of design/sync-semantics.md, written from the spec text and not
// from src/core/decide.ts: the model-based tests compare the engine against it. It works on
// abstract facts (how each side moved against the base, whether the two sides hold the same
// bytes as far as the engine can know, which side is newer) rather than on PathState, so that a
// shared mistake in reading stats or ETags would not hide in both implementations at once.
//
// Where the spec leaves a one-way case open, the model follows the engine's documented choice
// (marked "engine's choice" below) and the report says so.
import type { Action, ConflictPolicy, Mode } from '../../src/core/types.js';

/** How L stands against B. `touched`: stat moved (or racily clean), content equal to B's. */
export type LocalSide = 'absent' | 'new' | 'unchanged' | 'touched' | 'changed' | 'deleted';
/** How R stands against B (by ETag and size). */
export type RemoteSide = 'absent' | 'new' | 'unchanged' | 'changed' | 'deleted';

export interface Situation {
  local: LocalSide;
  remote: RemoteSide;
  /** L and R present and the engine can know they hold the same bytes (MD5 known on both). */
  same: boolean;
  /** The `newer` policy: L's mtime, truncated to ms, is after R's LastModified (a tie is remote's). */
  localNewer: boolean;
}

export interface Options {
  mode: Mode;
  conflict: ConflictPolicy;
  delete: boolean;
}

export interface Expected {
  action: Action;
  /** keep-both: the local version is renamed aside under a conflict name. */
  keepBoth?: true;
}

const is = (action: Action): Expected => ({ action });
const KEEP_BOTH: Expected = { action: 'conflict-download', keepBoth: true };

export function expectedAction(s: Situation, o: Options): Expected {
  if (s.local === 'absent' && s.remote === 'absent') throw new Error('reference: a path with no L, R or B');
  const unchangedL = s.local === 'unchanged' || s.local === 'touched';
  const result = core(s, o, unchangedL);
  // A touch alone only refreshes the base's stat; it is still "in sync".
  if (result.action === 'nothing' && s.local === 'touched') return is('refresh');
  return result;
}

function core(s: Situation, o: Options, unchangedL: boolean): Expected {
  const { local: l, remote: r } = s;
  const up = o.mode === 'upload';
  const down = o.mode === 'download';
  const two = o.mode === 'two-way';

  // No base: each side is new or absent.
  if (l === 'absent' && r === 'new') return up ? is(o.delete ? 'delete-remote' : 'skip') : is('download');
  if (l === 'new' && r === 'absent') return down ? is(o.delete ? 'delete-local' : 'skip') : is('upload');
  if (l === 'new' && r === 'new') {
    if (s.same) return is('record');
    if (two) return conflict(s, o);
    // One-way first run: "with no B, different from R" the source side wins; a local file a
    // download replaces still goes to the trash.
    return is(up ? 'upload' : 'download');
  }

  // With a base.
  if (unchangedL && r === 'unchanged') return is('nothing');
  if (l === 'changed' && r === 'unchanged') return is(down ? 'skip' : 'upload');
  if (unchangedL && r === 'changed') return is(up ? 'skip' : 'download');
  if (l === 'changed' && r === 'changed') return s.same ? is('record') : conflict(s, o);
  if (l === 'deleted' && r === 'unchanged') {
    if (two) return is('delete-remote');
    if (up) return is(o.delete ? 'delete-remote' : 'skip');
    // Engine's choice: download-only restores a file deleted locally (the remote is the source).
    return is('download');
  }
  if (unchangedL && r === 'deleted') {
    if (two) return is('delete-local');
    if (down) return is(o.delete ? 'delete-local' : 'skip');
    // Engine's choice: upload-only puts back an object deleted remotely (the local is the source).
    return is('upload');
  }
  // A change beats a delete; a one-way mode only moves it in its own direction.
  if (l === 'deleted' && r === 'changed') return is(up ? 'skip' : 'download');
  if (l === 'changed' && r === 'deleted') return is(down ? 'skip' : 'upload');
  if (l === 'deleted' && r === 'deleted') return is('forget');
  throw new Error(`reference: impossible situation ${l}/${r}`);
}

/** Both sides diverged: the policy picks, but a one-way mode never moves data backwards. */
function conflict(s: Situation, o: Options): Expected {
  const localWins = is('conflict-upload');
  const remoteWins = is('conflict-download');
  const skip = is('skip');
  switch (o.mode) {
    case 'two-way':
      if (o.conflict === 'remote') return remoteWins;
      if (o.conflict === 'local') return localWins;
      if (o.conflict === 'newer') return s.localNewer ? localWins : remoteWins;
      return KEEP_BOTH;
    case 'upload':
      // "with the default policy `remote` it is skipped; local, newer and keep-both may upload".
      if (o.conflict === 'remote') return skip;
      if (o.conflict === 'newer') return s.localNewer ? localWins : skip;
      return localWins;
    case 'download':
      if (o.conflict === 'local') return skip;
      if (o.conflict === 'newer') return s.localNewer ? skip : remoteWins;
      if (o.conflict === 'keep-both') return KEEP_BOTH;
      return remoteWins;
  }
}

/** Actions the `item` events report (the rest are bookkeeping). */
export function reported(a: Action): boolean {
  return a !== 'nothing' && a !== 'refresh' && a !== 'forget';
}

/** Actions that get a `file` event when carried out. */
export function executedWithEvent(a: Action): boolean {
  return a !== 'nothing' && a !== 'refresh' && a !== 'forget' && a !== 'skip';
}

/** `media/a.txt` → `media/a.conflict-20261127-135000.txt` (the spec's keep-both name). */
export function conflictCopyName(p: string, stamp: string): string {
  const slash = p.lastIndexOf('/');
  const dir = p.slice(0, slash + 1);
  const file = p.slice(slash + 1);
  const dot = file.lastIndexOf('.');
  return dot > 0 ? `${dir}${file.slice(0, dot)}.conflict-${stamp}${file.slice(dot)}` : `${dir}${file}.conflict-${stamp}`;
}

/** The delete guard of the spec, per mapping: exit 3 when the plan looks like a mistake. */
export function guardRefuses(
  perMapping: { tracked: number; deletes: number; localFiles: number; remoteFiles: number }[],
  maxDeletePercent: number,
  force: boolean,
): boolean {
  if (force) return false;
  return perMapping.some((m) => {
    if (m.tracked === 0 || m.deletes === 0) return false;
    if (m.localFiles === 0 || m.remoteFiles === 0) return true;
    return m.deletes * 100 > m.tracked * maxDeletePercent;
  });
}
