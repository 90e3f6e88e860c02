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
import { deleteMeta, getCountsMeta, setCountsMeta } from './meta.js';

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
function generations(db: Db): Map<string, number> {
  return new Map(holders(db).map((d) => [String(d.id), d.generation]));
}

/** Record that the catalogue was found behind a disk: every disk holding copies waits for a sync. */
export function markCatalogueBehind(db: Db): void {
  setCountsMeta(db, KEY, generations(db));
}

/** The disks still to be synced since the catalogue was found behind. */
export interface CatalogueBehind {
  disksLeft: string[];
}

/**
 * The state of a catalogue found behind, or undefined when it was not, or every disk of the
 * record has been synced since (the record is then cleared, unless `readonly`). A damaged record
 * is taken anew: every disk holding copies waits for a sync from now (the safe side).
 */
export function catalogueBehind(db: Db, readonly = false): CatalogueBehind | undefined {
  let record = getCountsMeta(db, KEY);
  if (record === undefined) return undefined;
  if (record === null) {
    record = generations(db);
    if (!readonly) setCountsMeta(db, KEY, record);
  }
  const recorded = record;
  const disksLeft = holders(db)
    .filter((d) => {
      const then = recorded.get(String(d.id));
      return then !== undefined && d.generation <= then;
    })
    .map((d) => d.name);
  if (disksLeft.length > 0) return { disksLeft };
  if (!readonly) deleteMeta(db, KEY);
  return undefined;
}
