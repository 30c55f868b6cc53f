// Results: raw JSON (timestamped and latest.json), a Markdown report with the ratio tables, and
// an SVG chart of the scenarios by tool, drawn here (no chart package).
import fs from 'node:fs';
import path from 'node:path';
import { median } from './measure.js';

export type Scenario = 'first upload' | 'unchanged' | 'plan' | 'touch 10%' | 'modify 1%' | 'add+del 1%' | 'download';
export const SCENARIOS: Scenario[] = ['first upload', 'unchanged', 'plan', 'touch 10%', 'modify 1%', 'add+del 1%', 'download'];

export interface Run {
  tree: 'A' | 'B';
  tool: string;
  scenario: Scenario;
  repeat: number;
  wallMs: number;
  cpuMs: number | null;
  maxRssMB: number | null;
  serverCpuMs: number | null;
  exitCode: number;
  transferred: number;
  deleted: number;
  hashed: number | null;
  correct: boolean;
  /** For no-op scenarios: whether the tool really did nothing. */
  noop: boolean | null;
  problems: string[];
}

export interface Reference {
  tree: 'A' | 'B';
  name: string;
  wallMs: number;
  processWallMs: number;
  cpuMs: number | null;
  maxRssMB: number | null;
  ok: boolean;
}

export interface ScaleRow {
  n: number;
  listingsMs: number;
  joinMs: number;
  planMs: number;
  totalMs: number;
  peakRssMB: number;
  heapUsedMB: number;
}

export interface Results {
  command: string;
  startedAt: string;
  finishedAt: string;
  machine: Record<string, string | number>;
  server: string;
  options: Record<string, number | boolean | string>;
  tools: Record<string, { version: string; flags: string }>;
  skipped: string[];
  trees: Partial<Record<'A' | 'B', { files: number; bytes: number; folders: number; description: string }>>;
  references: Reference[];
  runs: Run[];
  scale: ScaleRow[];
  notes: string[];
}

export interface Cell {
  wallMs: number;
  cpuMs: number | null;
  maxRssMB: number | null;
  serverCpuMs: number | null;
  correct: boolean;
  noop: boolean | null;
  transferred: number;
  deleted: number;
  hashed: number | null;
  runs: number;
}

const medOrNull = (xs: (number | null)[]): number | null => {
  const v = xs.filter((x): x is number => x !== null);
  return v.length ? median(v) : null;
};

export function cells(results: Results): Map<string, Cell> {
  const groups = new Map<string, Run[]>();
  for (const r of results.runs) {
    const k = `${r.tree}|${r.tool}|${r.scenario}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const out = new Map<string, Cell>();
  for (const [k, rs] of groups) {
    out.set(k, {
      wallMs: median(rs.map((r) => r.wallMs)),
      cpuMs: medOrNull(rs.map((r) => r.cpuMs)),
      maxRssMB: medOrNull(rs.map((r) => r.maxRssMB)),
      serverCpuMs: medOrNull(rs.map((r) => r.serverCpuMs)),
      correct: rs.every((r) => r.correct),
      noop: rs.some((r) => r.noop !== null) ? rs.every((r) => r.noop !== false) : null,
      transferred: Math.max(...rs.map((r) => r.transferred)),
      deleted: Math.max(...rs.map((r) => r.deleted)),
      hashed: rs.some((r) => r.hashed !== null) ? Math.max(...rs.map((r) => r.hashed ?? 0)) : null,
      runs: rs.length,
    });
  }
  return out;
}

export function refMedian(results: Results, tree: string, name: string): number | null {
  const xs = results.references.filter((r) => r.tree === tree && r.name === name).map((r) => r.wallMs);
  return xs.length ? median(xs) : null;
}

const s = (ms: number | null): string => (ms === null ? '—' : ms >= 100_000 ? `${(ms / 1000).toFixed(0)} s` : ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 1000).toFixed(2)} s`);
const x = (r: number): string => (r >= 100 ? `${r.toFixed(0)}×` : r >= 10 ? `${r.toFixed(1)}×` : `${r.toFixed(2)}×`);
const mb = (n: number): string => `${(n / 1e6).toFixed(0)} MB`;
const int = (n: number): string => n.toLocaleString('en-US');

export function markdown(results: Results): string {
  const c = cells(results);
  const toolNames = Object.keys(results.tools);
  const ss = 'storage-sync';
  const L: string[] = [];
  const m = results.machine;
  L.push(`# storage-sync benchmark, ${results.startedAt.slice(0, 16).replace('T', ' ')} UTC`);
  L.push('');
  L.push(`Command: \`${results.command}\` (from ${results.startedAt} to ${results.finishedAt}; commit ${m['gitCommit']})`);
  L.push('');
  L.push(`Machine: ${m['cpu']}, ${m['cores']} cores, ${m['memoryGiB']} GiB RAM; ${m['os']}, ${m['kernel']}; Node ${m['node']}; work folder on ${m['filesystem']}.`);
  L.push('');
  L.push(`S3 server: ${results.server}.`);
  L.push('');
  L.push(`Options: ${Object.entries(results.options).map(([k, v]) => `${k}=${v}`).join(', ')}. Times are medians of the repeats; ratios are to storage-sync (above 1 = slower than storage-sync).`);
  L.push('');
  L.push('| tool | version | flags |');
  L.push('|---|---|---|');
  for (const [name, t] of Object.entries(results.tools)) L.push(`| ${name} | ${t.version} | ${t.flags} |`);
  for (const sk of results.skipped) L.push(`| (skipped) | | ${sk} |`);
  L.push('');
  for (const n of results.notes) L.push(`- ${n}`);
  L.push('');
  const headline = headlines(results, c);
  if (headline.length) {
    L.push('## Headline');
    L.push('');
    for (const h of headline) L.push(`- ${h}`);
    L.push('');
  }
  for (const tree of ['A', 'B'] as const) {
    const t = results.trees[tree];
    if (!t) continue;
    L.push(`## Tree ${tree}: ${int(t.files)} files, ${mb(t.bytes)} in ${int(t.folders)} folders — ${t.description}`);
    L.push('');
    // One table per figure: a row per scenario, a column per tool, '—' where a tool has no run.
    const table = (title: string, show: (cell: NonNullable<ReturnType<typeof c.get>>, tool: string, sc: string) => string): void => {
      L.push(`### ${title}`);
      L.push('');
      L.push(`| scenario | ${toolNames.join(' | ')} |`);
      L.push(`|---|${toolNames.map(() => '---:').join('|')}|`);
      for (const sc of SCENARIOS) {
        const row = toolNames.map((tool) => {
          const cell = c.get(`${tree}|${tool}|${sc}`);
          return cell ? show(cell, tool, sc) : '—';
        });
        if (row.every((r) => r === '—')) continue;
        L.push(`| ${sc} | ${row.join(' | ')} |`);
      }
      L.push('');
    };
    table('Wall time (✓ correct, ✗ wrong; ratio to storage-sync)', (cell, tool, sc) => {
      const base = c.get(`${tree}|${ss}|${sc}`);
      const ratio = base && tool !== ss ? ` (${x(cell.wallMs / base.wallMs)})` : '';
      const noop = cell.noop === false ? ` ⚠ not a no-op: moved ${cell.transferred}, deleted ${cell.deleted}` : '';
      return `${s(cell.wallMs)}${ratio} ${cell.correct ? '✓' : '✗'}${noop}`;
    });
    table("CPU time (user + sys of the tool) / peak RSS; the S3 server's CPU in brackets", (cell) =>
      `${s(cell.cpuMs)} / ${cell.maxRssMB === null ? '—' : `${cell.maxRssMB.toFixed(0)} MB`} (${s(cell.serverCpuMs)})`);
    table('Files moved (uploaded or downloaded) / deleted / hashed (where the tool tells), most in any repeat', (cell) =>
      `${int(cell.transferred)} / ${int(cell.deleted)} / ${cell.hashed === null ? '?' : int(cell.hashed)}`);
    const find = refMedian(results, tree, 'find stat walk');
    const md5 = refMedian(results, tree, 'md5sum (xargs -P2)');
    const list = refMedian(results, tree, 'bare ListObjectsV2');
    L.push('### Against the physical references');
    L.push('');
    L.push(`find stat walk ${s(find)}; md5sum over the tree (xargs -P2) ${s(md5)}; bare paginated ListObjectsV2 of the bucket prefix ${s(list)} (in its own process, Node start-up excluded); find + list ${s(find !== null && list !== null ? find + list : null)}.`);
    L.push('');
    if (find !== null && list !== null && md5 !== null) {
      const floor = find + list;
      const cols: [Scenario, number, string][] = [
        ['unchanged', floor, 'unchanged ÷ (find + list)'],
        ['plan', floor, 'plan ÷ (find + list)'],
        ['touch 10%', floor, 'touch 10% ÷ (find + list)'],
        ['first upload', md5, 'first upload ÷ md5sum'],
        ['download', md5, 'download ÷ md5sum'],
      ];
      L.push(`| tool | ${cols.map((k) => k[2]).join(' | ')} |`);
      L.push(`|---|${cols.map(() => '---:').join('|')}|`);
      for (const tool of toolNames) {
        L.push(`| ${tool} | ${cols.map(([sc, ref]) => { const cell = c.get(`${tree}|${tool}|${sc}`); return cell ? x(cell.wallMs / ref) : '—'; }).join(' | ')} |`);
      }
      L.push('');
    }
    const wrong = results.runs.filter((r) => r.tree === tree && !r.correct);
    if (wrong.length) {
      L.push('### What was wrong');
      L.push('');
      for (const r of wrong.slice(0, 20)) L.push(`- ${r.tool}, ${r.scenario} #${r.repeat + 1}: ${r.problems.slice(0, 3).join('; ') || 'see the JSON'}`);
      L.push('');
    }
  }
  if (results.scale.length) {
    const fit = linearFit(results.scale.map((r) => [r.n, r.peakRssMB]));
    L.push('## Scale check: planning N unchanged paths without S3 (manifest in LMDB, synthetic listings)');
    L.push('');
    L.push('One process per size: the local and remote listings are built in memory as the walk and ListObjectsV2 would hand them over, joined with a manifest of N entries read from LMDB, and planned by the pure planner (every path unchanged). Peak RSS is the process\'s own (getrusage).');
    L.push('');
    L.push('| paths | listings built | join with the manifest | plan | total | peak RSS | peak RSS less the fit\'s intercept, per 1,000 paths |');
    L.push('|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of results.scale) {
      L.push(`| ${int(r.n)} | ${s(r.listingsMs)} | ${s(r.joinMs)} | ${s(r.planMs)} | ${s(r.totalMs)} | ${r.peakRssMB.toFixed(0)} MB | ${fit ? `${(((r.peakRssMB - fit.a) * 1000) / r.n).toFixed(2)} MB` : '—'} |`);
    }
    L.push('');
    if (fit) {
      L.push(`Least-squares line through the points: peak RSS ≈ ${fit.a.toFixed(0)} MB + ${(fit.b * 1000).toFixed(2)} MB per 1,000 paths (R² = ${fit.r2.toFixed(4)}): ${fit.r2 > 0.99 ? 'linear in the number of paths' : 'not a clean line; see the points'}.`);
      L.push('');
    }
  }
  return L.join('\n');
}

/** y = a + b x by least squares, with R². */
export function linearFit(points: [number, number][]): { a: number; b: number; r2: number } | undefined {
  if (points.length < 2) return undefined;
  const n = points.length;
  const mx = points.reduce((t, p) => t + p[0], 0) / n;
  const my = points.reduce((t, p) => t + p[1], 0) / n;
  const sxx = points.reduce((t, p) => t + (p[0] - mx) ** 2, 0);
  const sxy = points.reduce((t, p) => t + (p[0] - mx) * (p[1] - my), 0);
  const syy = points.reduce((t, p) => t + (p[1] - my) ** 2, 0);
  if (sxx === 0) return undefined;
  const b = sxy / sxx;
  return { a: my - b * mx, b, r2: syy === 0 ? 1 : (sxy * sxy) / (sxx * syy) };
}

function headlines(results: Results, c: Map<string, Cell>): string[] {
  const out: string[] = [];
  const ss = 'storage-sync';
  for (const tree of ['A', 'B'] as const) {
    const t = results.trees[tree];
    if (!t) continue;
    const un = c.get(`${tree}|${ss}|unchanged`);
    const find = refMedian(results, tree, 'find stat walk');
    const list = refMedian(results, tree, 'bare ListObjectsV2');
    const what = `tree ${tree} (${int(t.files)} files, ${mb(t.bytes)})`;
    if (un && find !== null && list !== null) {
      out.push(`Unchanged run on ${what}: storage-sync ${s(un.wallMs)}, hashed ${un.hashed ?? '?'} files = ${x(un.wallMs / (find + list))} (find stat walk + bare listing, ${s(find + list)}).`);
    }
    for (const sc of ['unchanged', 'first upload', 'download'] as Scenario[]) {
      const base = c.get(`${tree}|${ss}|${sc}`);
      if (!base) continue;
      const peers = Object.keys(results.tools)
        .filter((k) => k !== ss)
        .map((k) => [k, c.get(`${tree}|${k}|${sc}`)] as const)
        .filter((p): p is readonly [string, Cell] => p[1] !== undefined);
      if (!peers.length) continue;
      out.push(`${sc[0]!.toUpperCase()}${sc.slice(1)} on ${what}: storage-sync ${s(base.wallMs)}${base.correct ? '' : ' (WRONG)'}; ${peers.map(([k, p]) => `${k} ${s(p.wallMs)} (${x(p.wallMs / base.wallMs)})${p.correct ? '' : ' (wrong)'}${p.noop === false ? ' (not a no-op)' : ''}`).join(', ')}.`);
    }
  }
  return out;
}

const COLORS = ['#1b7f3b', '#3466a5', '#7aa6d8', '#8e44ad', '#e67e22', '#b03a2e', '#555555'];

/** Grouped bars, one panel per tree, log-scale seconds; wrong results crossed out in red. */
export function svg(results: Results): string {
  const c = cells(results);
  const toolNames = Object.keys(results.tools);
  const trees = (['A', 'B'] as const).filter((t) => results.trees[t]);
  const W = 1000;
  const panelH = 330;
  const top = 60;
  const left = 70;
  const right = 20;
  const H = top + trees.length * (panelH + 40) + 10;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${left}" y="20" font-size="15" font-weight="bold">Wall time by scenario and tool (median, log scale; lower is better; ✗ = wrong result)</text>`);
  let lx = left;
  toolNames.forEach((t, i) => {
    parts.push(`<rect x="${lx}" y="32" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/><text x="${lx + 16}" y="42">${esc(t)}</text>`);
    lx += 16 + t.length * 7 + 18;
  });
  trees.forEach((tree, p) => {
    const y0 = top + p * (panelH + 40);
    const plotTop = y0 + 20;
    const plotBottom = y0 + panelH - 40;
    const t = results.trees[tree]!;
    parts.push(`<text x="${left}" y="${y0 + 12}" font-weight="bold">Tree ${tree}: ${int(t.files)} files, ${mb(t.bytes)}</text>`);
    const scen = SCENARIOS.filter((sc) => toolNames.some((tool) => c.has(`${tree}|${tool}|${sc}`)));
    const vals = [...c.entries()].filter(([k]) => k.startsWith(`${tree}|`)).map(([, v]) => v.wallMs / 1000);
    const lo = Math.pow(10, Math.floor(Math.log10(Math.max(0.01, Math.min(...vals)))));
    const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...vals))));
    const yOf = (sec: number): number => plotBottom - ((Math.log10(Math.max(sec, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (plotBottom - plotTop);
    for (let d = lo; d <= hi * 1.0001; d *= 10) {
      const y = yOf(d);
      parts.push(`<line x1="${left}" x2="${W - right}" y1="${y}" y2="${y}" stroke="#ddd"/><text x="${left - 6}" y="${y + 4}" text-anchor="end">${d >= 1 ? d.toFixed(0) : d.toString()} s</text>`);
    }
    const groupW = (W - left - right) / Math.max(1, scen.length);
    const barW = Math.min(22, (groupW - 16) / Math.max(1, toolNames.length));
    scen.forEach((sc, g) => {
      const gx = left + g * groupW + (groupW - barW * toolNames.length) / 2;
      toolNames.forEach((tool, i) => {
        const cell = c.get(`${tree}|${tool}|${sc}`);
        if (!cell) return;
        const bx = gx + i * barW;
        const y = yOf(cell.wallMs / 1000);
        parts.push(`<rect x="${bx.toFixed(1)}" y="${y.toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${(plotBottom - y).toFixed(1)}" fill="${COLORS[i % COLORS.length]}"><title>${esc(tool)}, ${sc}: ${s(cell.wallMs)}${cell.correct ? '' : ' (wrong)'}</title></rect>`);
        if (!cell.correct || cell.noop === false) {
          parts.push(`<text x="${(bx + barW / 2 - 1).toFixed(1)}" y="${(y - 4).toFixed(1)}" text-anchor="middle" fill="#c00" font-weight="bold">${cell.correct ? '!' : '✗'}</text>`);
        }
      });
      parts.push(`<text x="${(left + g * groupW + groupW / 2).toFixed(1)}" y="${plotBottom + 18}" text-anchor="middle">${esc(sc)}</text>`);
    });
    parts.push(`<line x1="${left}" x2="${W - right}" y1="${plotBottom}" y2="${plotBottom}" stroke="#333"/>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

const esc = (t: string): string => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function writeReport(results: Results, outDir: string): { markdown: string; files: string[] } {
  fs.mkdirSync(outDir, { recursive: true });
  const stamp = results.startedAt.replace(/[:]/g, '').replace(/\.\d+Z$/, 'Z');
  const md = markdown(results);
  const files: string[] = [];
  const write = (name: string, text: string): void => {
    const f = path.join(outDir, name);
    fs.writeFileSync(f, text);
    files.push(f);
  };
  const json = JSON.stringify(results, null, 1);
  write(`${stamp}.json`, json);
  write('latest.json', json);
  write(`${stamp}.md`, md + `\n![chart](${stamp}.svg)\n`);
  write('latest.md', md + '\n![chart](latest.svg)\n');
  const chart = svg(results);
  write(`${stamp}.svg`, chart);
  write('latest.svg', chart);
  return { markdown: md, files };
}
