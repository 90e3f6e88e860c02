/**
 * Statements on the `copies` table: which disk holds a counted copy of which object. A row
 * exists only for a copy that is durable on the disk (SPEC §2): callers insert after the data
 * and directory fsyncs, and delete (committed, synchronous=FULL) before unlinking.
 */
import type { Db } from './db.js';
import { FileKind } from './schema.js';

/**
 * Count copies of `objectIds` on disk `diskId`, in one transaction. `writtenMs`: when they were
 * written (a copy never verified ages from then in `status`), null when that is not known (an
 * object found on the disk): such a copy counts as not verified for too long until verified.
 */
export function addCopies(db: Db, diskId: number, objectIds: readonly number[], writtenMs: number | null): void {
  if (objectIds.length === 0) return;
  const ins = db.prepare(
    'INSERT OR IGNORE INTO copies (object_id, disk_id, verified_ms, written_ms) VALUES (?, ?, NULL, ?)',
  );
  db.transaction(() => {
    for (const id of objectIds) ins.run(id, diskId, writtenMs);
  })();
}

/** Stop counting copies of `objectIds` on disk `diskId`, in one committed transaction. */
export function removeCopies(db: Db, diskId: number, objectIds: readonly number[]): void {
  if (objectIds.length === 0) return;
  const del = db.prepare('DELETE FROM copies WHERE object_id = ? AND disk_id = ?');
  db.transaction(() => {
    for (const id of objectIds) del.run(id, diskId);
  })();
}

/** Every copy counted on disk `diskId`: object id, hash and size, by hash. Streamed. */
export function* iterateDiskCopies(db: Db, diskId: number): Generator<{ id: number; hash: string; size: number }> {
  const stmt = db.prepare(
    `SELECT o.id AS id, o.hash AS hash, o.size AS size FROM copies c JOIN objects o ON o.id = c.object_id
     WHERE c.disk_id = ? ORDER BY o.hash`,
  );
  for (const r of stmt.iterate(diskId)) yield r as { id: number; hash: string; size: number };
}

/** The object row for `hash`, if the catalogue knows it. */
export function getObjectByHash(db: Db, hash: string): { id: number; size: number } | undefined {
  return db.prepare('SELECT id, size FROM objects WHERE hash = ?').get(hash) as
    | { id: number; size: number }
    | undefined;
}

/** Hash and size of object `id`. */
export function getObjectById(db: Db, id: number): { hash: string; size: number } | undefined {
  return db.prepare('SELECT hash, size FROM objects WHERE id = ?').get(id) as
    | { hash: string; size: number }
    | undefined;
}

/** Number of copies counted on disk `diskId`. */
export function countDiskCopies(db: Db, diskId: number): number {
  return db.prepare('SELECT count(*) FROM copies WHERE disk_id = ?').pluck().get(diskId) as number;
}

/**
 * Referenced objects held by disk `diskId` and by no other disk: what would be lost with it.
 */
export function lastCopiesOn(db: Db, diskId: number): { objects: number; bytes: number } {
  return db
    .prepare(
      `SELECT count(*) AS objects, coalesce(sum(o.size), 0) AS bytes
       FROM copies c JOIN objects o ON o.id = c.object_id
       WHERE c.disk_id = ?
         AND NOT EXISTS (SELECT 1 FROM copies c2 WHERE c2.object_id = c.object_id AND c2.disk_id <> c.disk_id)
         AND EXISTS (SELECT 1 FROM files f WHERE f.object_id = c.object_id AND f.kind = 0)`,
    )
    .get(diskId) as { objects: number; bytes: number };
}

/** Drop every copy of disk `diskId` (a failed or lost disk); returns how many were dropped. */
export function dropAllCopies(db: Db, diskId: number): number {
  return db.prepare('DELETE FROM copies WHERE disk_id = ?').run(diskId).changes;
}

/**
 * Smallest number of copies over the referenced objects to back up (some file of priority above
 * 0, as the planner counts them): 0 when one has none; null when there are none.
 */
export function minCopies(db: Db): number | null {
  const r = db
    .prepare(
      `SELECT min(n) FROM (
         SELECT (SELECT count(*) FROM copies c WHERE c.object_id = r.object_id) AS n
         FROM (SELECT object_id FROM files WHERE kind = 0 AND object_id IS NOT NULL
               GROUP BY object_id HAVING max(priority) > 0) r)`,
    )
    .pluck()
    .get() as number | null;
  return r;
}

/**
 * Have the next update read again every file whose content is `objectId`: their rows are marked
 * racily clean (ctime 0, the mark `update` never trusts and never reuses a hash from). For a
 * source sync found changed under the same size and mtime (a rewrite with its mtime put back,
 * then a rename, keeps the stat update trusts), which update would otherwise never read again.
 * Returns the rows marked.
 */
export function markForRehash(db: Db, objectId: number): number {
  return db.prepare(`UPDATE files SET ctime_ns = 0 WHERE object_id = ? AND kind = ${FileKind.file}`).run(objectId)
    .changes;
}
