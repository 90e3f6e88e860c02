/**
 * The catalogue's `meta` table: named values (the catalogue id, read_compat, and the records of
 * catalog/behind.ts, catalog/removed-disks.ts and verify's turn). Reads and writes in one place.
 */
import type { Db } from './db.js';

/** The value of `key`, or undefined when there is none. */
export function getMeta(db: Db, key: string): string | undefined {
  return db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(key) as string | undefined;
}

/** Set `key` to `value`. */
export function setMeta(db: Db, key: string, value: string): void {
  db.prepare('INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)').run(key, value);
}

/** Remove `key`. */
export function deleteMeta(db: Db, key: string): void {
  db.prepare('DELETE FROM meta WHERE key = ?').run(key);
}

/**
 * A value of `key` that is a JSON object of whole numbers by name: the map, undefined when there
 * is none, null when it is there but damaged (each caller decides what that means).
 */
export function getCountsMeta(db: Db, key: string): Map<string, number> | undefined | null {
  const raw = getMeta(db, key);
  if (raw === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(raw);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
    const entries = Object.entries(parsed as Record<string, unknown>);
    if (!entries.every(([, v]) => Number.isSafeInteger(v))) return null;
    return new Map(entries as [string, number][]);
  } catch {
    return null;
  }
}

/** Set `key` to the JSON object of `counts`. */
export function setCountsMeta(db: Db, key: string, counts: ReadonlyMap<string, number>): void {
  setMeta(db, key, JSON.stringify(Object.fromEntries(counts)));
}
