/**
 * A home catalogue older than a disk's last sync (restored from a backup, or an old copy put
 * back). Sync moves the catalogue's generation of a disk before the disk's own, so a run stopped
 * between the two leaves the disk behind, never ahead: a disk found ahead means the catalogue
 * went back. Its counts of the other disks may then be out of date (copies they evicted or
 * deleted since still counted), and a deletion that relies on them could take the last real
 * copy. So from then until every disk holding copies has been synced (reconciled) again, no sync
 * deletes anything (the planner's `keepCopies`). Kept in `meta`, so it outlives the run.
 */
import type { Db } from './db.js';

const KEY = 'behind_since_ms';

/** Record that the catalogue was found behind a disk at `nowMs` (the first finding is kept). */
export function markCatalogueBehind(db: Db, nowMs: number): void {
  db.prepare('INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)').run(KEY, String(nowMs));
}

/** The live disks holding copies that were not synced since the catalogue was found behind. */
export interface CatalogueBehind {
  sinceMs: number;
  disksLeft: string[];
}

/**
 * The state of a catalogue found behind, or undefined when it was not, or every disk holding
 * copies has been synced since (the mark is then cleared, unless `readonly`).
 */
export function catalogueBehind(db: Db, readonly = false): CatalogueBehind | undefined {
  const raw = db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(KEY) as string | undefined;
  if (raw === undefined) return undefined;
  const sinceMs = Number(raw);
  const disksLeft = db
    .prepare(
      `SELECT d.name FROM disks d
       WHERE d.dropped_ms IS NULL AND coalesce(d.last_sync_ms, 0) < ?
         AND EXISTS (SELECT 1 FROM copies c WHERE c.disk_id = d.id)
       ORDER BY d.name`,
    )
    .pluck()
    .all(Number.isFinite(sinceMs) ? sinceMs : Number.MAX_SAFE_INTEGER) as string[];
  if (disksLeft.length > 0) return { sinceMs, disksLeft };
  if (!readonly) db.prepare('DELETE FROM meta WHERE key = ?').run(KEY);
  return undefined;
}
