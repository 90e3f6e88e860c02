/**
 * Disks forgotten with `disk remove`: their uuid and last generation, kept in `meta`. A copy of
 * the catalogue written after a removal no longer lists the disk; with these it still shows it
 * saw that disk as far as a copy written before, so a guided restore can tell which copy is the
 * newer (restore/newest.ts). A few bytes a disk, and disks are few.
 */
import type { Db } from './db.js';
import { getMeta, setCountsMeta, setMeta } from './meta.js';

const KEY = 'removed_disks';
/** Where a damaged record is set aside when a removal is recorded (it is never lost). */
const DAMAGED_KEY = 'removed_disks_damaged';

/** The entries of a record that are a whole number by name, and whether any part was not. */
function parse(raw: string | undefined): { disks: Map<string, number>; damaged: boolean } {
  const disks = new Map<string, number>();
  if (raw === undefined) return { disks, damaged: false };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { disks, damaged: true };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { disks, damaged: true };
  let damaged = false;
  for (const [uuid, generation] of Object.entries(parsed as Record<string, unknown>)) {
    if (Number.isSafeInteger(generation)) disks.set(uuid, generation as number);
    else damaged = true;
  }
  return { disks, damaged };
}

/** The removed disks' last generations, by uuid: every sound entry of the record (none when there is none). */
export function removedDisks(db: Db): Map<string, number> {
  return parse(getMeta(db, KEY)).disks;
}

/**
 * Keep `uuid` at `generation` among the removed disks. A damaged record is set aside as it is
 * (meta `removed_disks_damaged`) and its sound entries carried over, so every later removal is
 * still recorded.
 */
export function recordRemovedDisk(db: Db, uuid: string, generation: number): void {
  const raw = getMeta(db, KEY);
  const { disks, damaged } = parse(raw);
  // The first damaged record is the one kept: a later one holds no more than what was carried over.
  if (damaged && raw !== undefined && getMeta(db, DAMAGED_KEY) === undefined) setMeta(db, DAMAGED_KEY, raw);
  disks.set(uuid, Math.max(generation, disks.get(uuid) ?? 0));
  setCountsMeta(db, KEY, disks);
}
