/**
 * Disks forgotten with `disk remove`: their uuid and last generation, kept in `meta`. A copy of
 * the catalogue written after a removal no longer lists the disk; with these it still shows it
 * saw that disk as far as a copy written before, so a guided restore can tell which copy is the
 * newer (restore/newest.ts). A few bytes a disk, and disks are few.
 */
import type { Db } from './db.js';
import { getCountsMeta, setCountsMeta } from './meta.js';

const KEY = 'removed_disks';

/** The removed disks' last generations, by uuid (empty when none, or the record is damaged). */
export function removedDisks(db: Db): Map<string, number> {
  return getCountsMeta(db, KEY) ?? new Map();
}

/** Keep `uuid` at `generation` among the removed disks; a damaged record is kept as it is. */
export function recordRemovedDisk(db: Db, uuid: string, generation: number): void {
  const all = getCountsMeta(db, KEY);
  if (all === null) return;
  const next = all ?? new Map<string, number>();
  next.set(uuid, Math.max(generation, next.get(uuid) ?? 0));
  setCountsMeta(db, KEY, next);
}
