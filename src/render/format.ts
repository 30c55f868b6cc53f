export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = -1;
  do {
    v /= 1024;
    u++;
  } while (v >= 1024 && u < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.floor(s % 60)} s`;
}

/** Keeps the end of a path, which is the part that tells files apart. */
export function ellipsize(s: string, width: number): string {
  if (s.length <= width) return s;
  return '…' + s.slice(s.length - width + 1);
}

export const PAST: Record<string, string> = {
  upload: 'uploaded',
  download: 'downloaded',
  'delete-remote': 'deleted remote',
  'delete-local': 'deleted local',
  record: 'recorded',
  'conflict-upload': 'conflict, uploaded',
  'conflict-download': 'conflict, downloaded',
  skip: 'skipped',
  invalid: 'refused',
};
