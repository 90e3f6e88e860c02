/**
 * The whereis use-case (SPEC §3): for each file at or below the virtual paths given, its hash,
 * size, the disks holding a counted copy and when each copy was last verified. Streamed from
 * the catalogue; read-only.
 */
import type { Catalog } from '../catalog/db.js';
import { diskNames, hasEntriesUnder, iterateWhereis } from '../catalog/reports.js';
import { displayPath, normalizeVpath } from '../core/vpath.js';

/** One copy of a file's object. */
export interface WhereisCopy {
  disk: string;
  /** When verify last read it back right (ISO-8601), or null when never. */
  verified: string | null;
}

/** One entry of the `whereis --json` array (SPEC §3a, with additions). */
export interface WhereisEntry {
  path: string;
  hash: string | null;
  size: number;
  disks: string[];
  copies: WhereisCopy[];
}

/** What whereis found, and the virtual paths that matched nothing. */
export interface WhereisResult {
  entries: WhereisEntry[];
  notFound: string[];
  /**
   * Virtual paths in the catalogue with no regular file at or below them (a symbolic link, an
   * empty folder): restore rebuilds them from the catalogue alone, no disk holds anything of them.
   */
  noFiles: string[];
}

/** Look up `vpaths` (files or folders) in `cat`; `onEntry` sees each entry as it streams. */
export function runWhereis(
  cat: Catalog,
  vpaths: readonly string[],
  onEntry?: (e: WhereisEntry) => void,
): WhereisResult {
  const names = diskNames(cat.db);
  const entries: WhereisEntry[] = [];
  const notFound: string[] = [];
  const noFiles: string[] = [];
  for (const text of vpaths.length === 0 ? ['/'] : vpaths) {
    const v = normalizeVpath(text);
    let found = 0;
    for (const r of iterateWhereis(cat.db, Buffer.from(v, 'utf8'))) {
      found += 1;
      const copies: WhereisCopy[] = [];
      for (const pair of r.copies === null ? [] : r.copies.split(',')) {
        const [id, ms] = pair.split(':');
        copies.push({
          disk: names.get(Number(id)) ?? `disk #${id}`,
          verified: ms === undefined || ms === '' ? null : new Date(Number(ms)).toISOString(),
        });
      }
      copies.sort((a, b) => (a.disk < b.disk ? -1 : a.disk > b.disk ? 1 : 0));
      const e: WhereisEntry = {
        path: displayPath(r.vpath),
        hash: r.hash,
        size: r.size,
        disks: copies.map((c) => c.disk),
        copies,
      };
      entries.push(e);
      onEntry?.(e);
    }
    if (found === 0) (hasEntriesUnder(cat.db, Buffer.from(v, 'utf8')) ? noFiles : notFound).push(v);
  }
  return { entries, notFound, noFiles };
}
