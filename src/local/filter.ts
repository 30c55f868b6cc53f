// --include / --exclude for one mapping. Globs are matched against the POSIX path relative to
// the mapping, with dot files matched like any other (a user excluding `**/*.log` means
// `.hidden.log` too).

import picomatch from 'picomatch';
import { isTempName } from './scan.js';

export function makeFilter(include: string[], exclude: string[]): (rel: string) => boolean {
  const included = include.length === 0 ? () => true : picomatch(include, { dot: true });
  const excluded = exclude.length === 0 ? () => false : picomatch(exclude, { dot: true });
  return (rel) => {
    const slash = rel.lastIndexOf('/');
    return !isTempName(rel.slice(slash + 1)) && included(rel) && !excluded(rel);
  };
}
