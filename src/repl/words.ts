// Plain-language explanations of the planner's reasons (design/sync-semantics.md), for `explain`.
import type { Action, Reason } from '../core/types.js';

export const REASON_WORDS: Record<Reason, string> = {
  'in-sync': 'both sides are as they were at the last sync: nothing to do',
  touched: "the local file's timestamp moved but its content is the same: only the manifest's stat is refreshed",
  'local-new': 'the file exists only locally and was never synced',
  'remote-new': 'the object exists only in the bucket and was never synced',
  'local-changed': 'the local file changed since the last sync; the remote object did not',
  'remote-changed': 'the remote object changed since the last sync; the local file did not',
  'local-deleted': 'the local file was deleted since the last sync; the remote object is unchanged',
  'remote-deleted': 'the remote object was deleted since the last sync; the local file is unchanged',
  'local-missing': 'download mode: the local file is gone but the bucket still has it, so it comes back',
  'remote-missing': 'upload mode: the remote object is gone but the local file is still there, so it goes up again',
  'local-only': 'download mode: the file exists only locally (deleted only with `set delete on`)',
  'remote-only': 'upload mode: the object exists only in the bucket (deleted only with `set delete on`)',
  'same-content': 'both sides hold the same bytes: recorded as in sync, nothing is transferred',
  'both-deleted': 'gone on both sides: the manifest forgets it',
  'change-beats-delete': 'one side deleted it while the other changed it: the change wins over the delete',
  'first-run-differs': 'one-way mode with no earlier sync, and the two sides differ: the source side wins',
  'conflict-remote-wins': 'both sides changed differently; the conflict policy "remote" lets the remote version win (the local one goes to the trash)',
  'conflict-local-wins': 'both sides changed differently; the conflict policy lets the local version win',
  'conflict-newer-local': 'both sides changed differently; policy "newer": the local file is newer than the remote LastModified',
  'conflict-newer-remote': 'both sides changed differently; policy "newer": the remote object is at least as new (a tie goes to the remote)',
  'conflict-keep-both': 'both sides changed differently; policy "keep-both": the remote keeps the name and the local version is kept under a conflict name',
  'conflict-skipped': 'both sides changed differently, and in this mode the policy would move data against the sync direction: left alone',
};

export const ACTION_WORDS: Record<Action, string> = {
  upload: 'upload the local file',
  download: 'download the remote object (an overwritten local file goes to the trash)',
  'delete-remote': 'delete the remote object',
  'delete-local': 'delete the local file (it goes to the trash)',
  record: 'record both sides as in sync; nothing is transferred',
  'conflict-upload': 'upload the local version over the remote one',
  'conflict-download': 'download the remote version; the local one is kept in the trash',
  forget: 'drop the manifest entry',
  refresh: "refresh the manifest's stat; nothing is transferred",
  skip: 'leave it alone in this mode (reported, not carried out)',
  nothing: 'nothing',
};

/** Actions in the order a plan table groups them. */
export const ACTION_ORDER: Action[] = ['upload', 'download', 'conflict-upload', 'conflict-download', 'delete-remote', 'delete-local', 'record', 'skip', 'refresh', 'forget', 'nothing'];
