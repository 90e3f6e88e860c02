/**
 * Disks forgotten with `disk remove`: their uuid and last generation, kept in `meta`. A copy of
 * the catalogue written after a removal no longer lists the disk; with these it still shows it
 * saw that disk as far as a copy written before, so a guided restore can tell which copy is the
 * newer (restore/newest.ts). A few bytes a disk, and disks are few.
 */
import type { Db } from './db.js';

const KEY = 'removed_disks';

/** The removed disks' last generations, by uuid (empty when none, or the record is damaged). */
export function removedDisks(db: Db): Map<string, number> {
  const raw = db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(KEY) as string | undefined;
  const out = new Map<string, number>();
  if (raw === undefined) return out;
  try {
    const parsed: unknown = JSON.parse(raw);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      for (const [uuid, g] of Object.entries(parsed as Record<string, unknown>)) {
        if (Number.isSafeInteger(g)) out.set(uuid, g as number);
      }
    }
  } catch {
    // A damaged record: as if no disk was removed.
  }
  return out;
}

/** Keep `uuid` at `generation` among the removed disks. */
export function recordRemovedDisk(db: Db, uuid: string, generation: number): void {
  const raw = db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(KEY) as string | undefined;
  // A record that cannot be read is kept as it is, not overwritten with this disk alone.
  if (raw !== undefined && removedDisks(db).size === 0 && raw !== '{}') return;
  const all = removedDisks(db);
  all.set(uuid, Math.max(generation, all.get(uuid) ?? 0));
  db.prepare('INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)').run(KEY, JSON.stringify(Object.fromEntries(all)));
}
