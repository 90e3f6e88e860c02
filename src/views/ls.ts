/**
 * `ls [PATTERN] [--disk NAME]`: catalogued files with their size, hash and the disks holding
 * them. PATTERN is a glob on virtual paths with the Python distbackup's meaning: `*` and `?` also
 * match `/`, and a pattern matches a path or anything below it (`ls /photos` lists the folder's
 * subtree, `ls '*.jpg'` every JPEG). Streamed in path order; memory is one row.
 */
import type { Db } from '../catalog/db.js';
import { displayPath } from '../core/vpath.js';
import { globToRegexSource } from '../sources/ignore-rules.js';
import { liveDisks, resolveFilter, type ViewFilterOptions, viewRows } from './rows.js';

/** One `ls --json` entry (the shape of `whereis`). */
export interface LsEntry {
  path: string;
  size: number;
  hash: string | null;
  disks: string[];
}

/**
 * The pattern as a folder to range-scan and a test on the full virtual path. No pattern = all.
 */
export function compileLsPattern(pattern: string | undefined): { folder: string; test: (vpath: string) => boolean } {
  if (pattern === undefined || pattern === '' || pattern === '/') return { folder: '/', test: () => true };
  const canon = `/${pattern.replace(/\/+/g, '/').replace(/^\//, '')}`;
  const firstGlob = canon.search(/[*?[]/);
  const literal = firstGlob < 0 ? canon : canon.slice(0, firstGlob);
  const cut = firstGlob < 0 ? literal.replace(/\/+$/, '') : literal.slice(0, literal.lastIndexOf('/'));
  const folder = cut === '' ? '/' : cut;
  const body = globToRegexSource(canon.endsWith('/') ? canon.slice(0, -1) : canon).slice(0, -1); // drop the final $
  const re = new RegExp(`${body}(/.*)?$`, 's');
  return { folder, test: (v) => re.test(v) };
}

/** Stream the entries matching `pattern` (and held by `disk` when given). */
export function* lsEntries(db: Db, pattern: string | undefined, disk?: string): Generator<LsEntry> {
  const names = liveDisks(db);
  const opts: ViewFilterOptions = disk === undefined ? {} : { on: [disk] };
  const filter = resolveFilter(db, opts);
  const { folder, test } = compileLsPattern(pattern);
  for (const row of viewRows(db, folder, filter)) {
    const path = displayPath(row.vpath);
    if (!test(path)) continue;
    yield { path, size: row.sizeBytes, hash: row.hash, disks: row.holders.map((d) => names.get(d) ?? `#${d}`) };
  }
}
