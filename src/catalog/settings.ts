/**
 * Statements on the `path_settings` table (settings per virtual folder, JSON validated by
 * src/sources/path-settings.ts) and the recomputation of the per-file priority / copy target /
 * cap that the planner reads from `files`.
 */
import { subtreeRange } from '../core/vpath.js';
import type { Db } from './db.js';
import { NO_CAP } from './schema.js';

/** A stored row: virtual folder path and its settings JSON (unparsed). */
export interface PathSettingsRow {
  vpath: string;
  json: string;
}

/** The settings JSON stored at exactly `vpath`, if any. */
export function getPathSettingsJson(db: Db, vpath: string): string | undefined {
  return db.prepare('SELECT settings_json FROM path_settings WHERE vpath = ?').pluck().get(vpath) as string | undefined;
}

/** Store (insert or replace) the settings of `vpath`. */
export function putPathSettingsJson(db: Db, vpath: string, json: string): void {
  db.prepare(
    'INSERT INTO path_settings (vpath, settings_json) VALUES (?, ?) ON CONFLICT(vpath) DO UPDATE SET settings_json = excluded.settings_json',
  ).run(vpath, json);
}

/** Remove the settings of `vpath`; true when there were some. */
export function deletePathSettings(db: Db, vpath: string): boolean {
  return db.prepare('DELETE FROM path_settings WHERE vpath = ?').run(vpath).changes > 0;
}

/**
 * Every stored row, by virtual path; with `prefix`, only `prefix` itself and the folders below
 * it. Settings rows are few (one per folder a user configured), so this returns an array.
 */
export function listPathSettings(db: Db, prefix?: string): PathSettingsRow[] {
  if (prefix === undefined || prefix === '/') {
    return db
      .prepare('SELECT vpath, settings_json AS json FROM path_settings ORDER BY vpath')
      .all() as PathSettingsRow[];
  }
  const { lo, hi } = subtreeRange(prefix);
  return db
    .prepare(
      `SELECT vpath, settings_json AS json FROM path_settings
       WHERE vpath = ? OR (vpath >= ? AND vpath < ?) ORDER BY vpath`,
    )
    .all(prefix, lo.toString('utf8'), hi.toString('utf8')) as PathSettingsRow[];
}

/** Delete every row at or below `prefix` (all rows for `/`); returns how many. */
export function deletePathSettingsUnder(db: Db, prefix: string): number {
  if (prefix === '/') return db.prepare('DELETE FROM path_settings').run().changes;
  const { lo, hi } = subtreeRange(prefix);
  return db
    .prepare('DELETE FROM path_settings WHERE vpath = ? OR (vpath >= ? AND vpath < ?)')
    .run(prefix, lo.toString('utf8'), hi.toString('utf8')).changes;
}

/** What a file's settings become: priority, copy target and cap (null = none). */
export interface FileSettingsValue {
  priority: number;
  minCopies: number;
  maxCopies: number | null;
}

/**
 * Recompute priority / min_copies / max_copies of the catalogued files at or below `prefix` in
 * one UPDATE over the subtree's BLOB range. `compute(vpath, current)` gets each file's virtual
 * path (bytes) and current values and returns the new ones (it may return `current` to keep
 * them). Returns the number of rows whose values changed. Runs inside the caller's transaction
 * when there is one.
 */
export function recomputeFileSettings(
  db: Db,
  prefix: string,
  compute: (vpath: Buffer, current: FileSettingsValue) => FileSettingsValue,
): number {
  let lastKey: Buffer | null = null;
  let last: FileSettingsValue = { priority: 1, minCopies: 1, maxCopies: null };
  const valueFor = (vpath: Buffer, p: number, mn: number, mx: number): FileSettingsValue => {
    if (lastKey === null || !lastKey.equals(vpath)) {
      lastKey = Buffer.from(vpath);
      last = compute(vpath, { priority: p, minCopies: mn, maxCopies: mx >= NO_CAP ? null : mx });
    }
    return last;
  };
  // One user function per column; they run on the same row in turn, so the cache above makes
  // `compute` run once per row.
  db.function('dsb_new_priority', { deterministic: false }, (v, p, mn, mx) =>
    intOf(valueFor(v as Buffer, Number(p), Number(mn), Number(mx)).priority),
  );
  db.function('dsb_new_min_copies', { deterministic: false }, (v, p, mn, mx) =>
    intOf(valueFor(v as Buffer, Number(p), Number(mn), Number(mx)).minCopies),
  );
  db.function('dsb_new_max_copies', { deterministic: false }, (v, p, mn, mx) => {
    const m = valueFor(v as Buffer, Number(p), Number(mn), Number(mx)).maxCopies;
    return m === null ? NO_CAP : intOf(m);
  });
  const range = subtreeRange(prefix);
  const where = prefix === '/' ? 'kind = 0' : 'kind = 0 AND (vpath = ? OR (vpath >= ? AND vpath < ?))';
  const args = prefix === '/' ? [] : [Buffer.from(prefix, 'utf8'), range.lo, range.hi];
  const sql = `UPDATE files SET
      priority = dsb_new_priority(vpath, priority, min_copies, max_copies),
      min_copies = dsb_new_min_copies(vpath, priority, min_copies, max_copies),
      max_copies = dsb_new_max_copies(vpath, priority, min_copies, max_copies)
    WHERE ${where}
      AND (priority, min_copies, max_copies) <> (
        dsb_new_priority(vpath, priority, min_copies, max_copies),
        dsb_new_min_copies(vpath, priority, min_copies, max_copies),
        dsb_new_max_copies(vpath, priority, min_copies, max_copies))`;
  return db.prepare(sql).run(...args).changes;
}

function intOf(n: number): number {
  return Math.max(0, Math.min(NO_CAP, Math.trunc(n)));
}
