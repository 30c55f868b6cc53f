// Splitting a REPL line into words (quotes keep spaces), and the few flags the commands take.
import picomatch from 'picomatch';

export class ArgError extends Error {}

export function tokenize(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | undefined;
  let has = false;
  for (const ch of line) {
    if (quote) {
      if (ch === quote) quote = undefined;
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      has = true;
    } else if (/\s/.test(ch)) {
      if (has || cur) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (quote) throw new ArgError(`unterminated ${quote} quote`);
  if (has || cur) out.push(cur);
  return out;
}

export interface Flags {
  positional: string[];
  flags: Map<string, string>;
}

/** `--name value` pairs (only the names in `known`), everything else positional. */
export function parseFlags(words: string[], known: readonly string[]): Flags {
  const positional: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w.startsWith('--') && w.length > 2) {
      const [name, inline] = w.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
      if (!known.includes(name)) throw new ArgError(`unknown option --${name}${known.length ? ` (options: ${known.map((k) => '--' + k).join(', ')})` : ''}`);
      const value = inline ?? words[++i];
      if (value === undefined) throw new ArgError(`--${name} needs a value`);
      flags.set(name, value);
    } else positional.push(w);
  }
  return { positional, flags };
}

/**
 * A path pattern as users type it: a glob (`media/**\/*.png`), an exact path, or a folder
 * (`media/avatars`, with or without the slash) meaning everything under it.
 */
export function pathMatcher(pattern: string): (p: string) => boolean {
  const clean = pattern.replace(/^\.\//, '');
  const folder = clean.replace(/\/+$/, '');
  let glob: (p: string) => boolean = () => false;
  try {
    glob = picomatch(clean, { dot: true });
  } catch {
    // an unparsable glob still matches as a plain path
  }
  return (p) => p === folder || p.startsWith(folder + '/') || glob(p);
}

export function positiveInt(v: string, what: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new ArgError(`${what} must be a positive whole number, not "${v}"`);
  return Number(v);
}
