// --include / --exclude for one mapping. Globs are matched against the POSIX path relative to
// the mapping, with dot files matched like any other (a user excluding `**/*.log` means
// `.hidden.log` too).

import { createRequire } from 'node:module';
import type Picomatch from 'picomatch';
import { isTempName } from './scan.js';

// Loaded only when there are globs, and with require(): picomatch is CommonJS, which Node 20
// loads several times cheaper that way than through import (start-up of every run).
const require = createRequire(import.meta.url);
const picomatch = (globs: string[], opts: Picomatch.PicomatchOptions) => (require('picomatch') as typeof Picomatch)(globs, opts);

export function makeFilter(include: string[], exclude: string[]): (rel: string) => boolean {
  const included = include.length === 0 ? () => true : picomatch(include, { dot: true });
  const excluded = exclude.length === 0 ? () => false : picomatch(exclude, { dot: true });
  return (rel) => {
    const slash = rel.lastIndexOf('/');
    return !isTempName(rel.slice(slash + 1)) && included(rel) && !excluded(rel);
  };
}
