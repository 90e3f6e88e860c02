/**
 * `status --no-saturated`: the referenced objects already at their cap (copies ≥ the highest
 * `max_copies` of the files that reference them, SPEC §5) are set aside from the status figures,
 * so that a folder capped at one copy does not pin the minimum. Works on a read-only
 * connection (TEMP tables only).
 */
import type { Db } from './db.js';
import { FileKind } from './schema.js';

/** What was set aside: objects, their bytes and the regular files that reference them. */
export interface SaturatedTotals {
  objects: number;
  bytes: number;
  files: number;
}

/**
 * Move the saturated objects out of `temp.status_obj` (built by `buildObjectCopies`) and return
 * their totals. A cap of 0 counts as 1, as the planner reads it (plan.ts `capOf`): an object
 * without a copy is never "at its cap". Figures read from `status_obj` afterwards (histogram, minimum) leave them out.
 * One grouped pass over the files of referenced objects (index `files_object`).
 */
export function setAsideSaturated(db: Db): SaturatedTotals {
  return setAside(db, 's.k >= max(max(f.max_copies), 1)');
}

/**
 * Move the objects that no file wants backed up (every file referencing them has priority 0,
 * SPEC §5: the planner never copies them) out of `temp.status_obj`, and return their totals: the
 * histogram, the minimum and the losses are of the objects the pool is asked to keep.
 */
export function setAsideNotBackedUp(db: Db): SaturatedTotals {
  return setAside(db, 'max(f.priority) = 0');
}

/** Move the objects of `temp.status_obj` whose files meet `having` (over `s` and `f`) out of it. */
function setAside(db: Db, having: string): SaturatedTotals {
  db.exec('CREATE TEMP TABLE IF NOT EXISTS status_sat (oid INTEGER PRIMARY KEY)');
  db.exec('DELETE FROM temp.status_sat');
  db.exec(`INSERT INTO temp.status_sat
           SELECT s.oid FROM temp.status_obj s JOIN files f ON f.object_id = s.oid AND f.kind = ${FileKind.file}
           GROUP BY s.oid HAVING ${having}`);
  const t = db
    .prepare(
      `SELECT count(*) AS objects, coalesce(sum(size), 0) AS bytes, coalesce(sum(nfiles), 0) AS files
       FROM temp.status_obj WHERE oid IN (SELECT oid FROM temp.status_sat)`,
    )
    .get() as SaturatedTotals;
  db.exec('DELETE FROM temp.status_obj WHERE oid IN (SELECT oid FROM temp.status_sat)');
  return t;
}
