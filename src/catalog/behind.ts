/**
 * A home catalogue older than a disk's last sync (restored from a backup, or an old copy put
 * back). Sync moves the catalogue's generation of a disk before the disk's own, so a run stopped
 * between the two leaves the disk behind, never ahead: a disk found ahead means the catalogue
 * went back. Its counts of the other disks may then be out of date (copies they evicted or
 * deleted since still counted), and a deletion that relies on them could take the last real
 * copy. So from then until every disk holding copies has been synced (reconciled) again, no sync
 * deletes anything (the planner's `keepCopies`).
 *
 * Kept in `meta` as the catalogue's generation of each such disk when the catalogue was found
 * behind: a disk is reconciled again once its generation has moved past it (a sync moves it
 * right after its reconcile). Generations, not times: a clock set wrong would end the wait
 * early or make it last. Each disk found ahead takes the record anew.
 */
import type { Db } from './db.js';

const KEY = 'behind_generations';

/** The live disks holding copies, with their generations. */
function holders(db: Db): { id: number; name: string; generation: number }[] {
  return db
    .prepare(
      `SELECT d.id, d.name, d.generation FROM disks d
       WHERE d.dropped_ms IS NULL AND EXISTS (SELECT 1 FROM copies c WHERE c.disk_id = d.id)
       ORDER BY d.name`,
    )
    .all() as { id: number; name: string; generation: number }[];
}

/** The catalogue's generation of every disk holding copies, by id. */
function generations(db: Db): Record<string, number> {
  const record: Record<string, number> = {};
  for (const d of holders(db)) record[String(d.id)] = d.generation;
  return record;
}

/** Record that the catalogue was found behind a disk: every disk holding copies waits for a sync. */
export function markCatalogueBehind(db: Db): void {
  db.prepare('INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)').run(KEY, JSON.stringify(generations(db)));
}

/** The disks still to be synced since the catalogue was found behind. */
export interface CatalogueBehind {
  disksLeft: string[];
}

/** The record, or undefined when it is not an object of whole numbers. */
function parseRecord(raw: string): Record<string, number> | undefined {
  try {
    const parsed: unknown = JSON.parse(raw);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
    const values = Object.values(parsed as Record<string, unknown>);
    return values.every((v) => Number.isSafeInteger(v)) ? (parsed as Record<string, number>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The state of a catalogue found behind, or undefined when it was not, or every disk of the
 * record has been synced since (the record is then cleared, unless `readonly`). A damaged record
 * is taken anew: every disk holding copies waits for a sync from now (the safe side).
 */
export function catalogueBehind(db: Db, readonly = false): CatalogueBehind | undefined {
  const raw = db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(KEY) as string | undefined;
  if (raw === undefined) return undefined;
  let record = parseRecord(raw);
  if (record === undefined) {
    record = generations(db);
    if (!readonly) markCatalogueBehind(db);
  }
  const recorded = record;
  const disksLeft = holders(db)
    .filter((d) => {
      const then = recorded[String(d.id)];
      return then !== undefined && d.generation <= then;
    })
    .map((d) => d.name);
  if (disksLeft.length > 0) return { disksLeft };
  if (!readonly) db.prepare('DELETE FROM meta WHERE key = ?').run(KEY);
  return undefined;
}
