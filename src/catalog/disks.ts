/** Statements on the `disks` table: registered backup disks. Times in ms since the epoch. */
import type { Db } from './db.js';

/** A registered disk as stored. */
export interface DiskRow {
  id: number;
  uuid: string;
  name: string;
  /** Declared size in bytes (what the planner may fill). */
  size: number;
  created: string;
  generation: number;
  mountPath: string | null;
  mountPoint: string | null;
  relPath: string | null;
  fsUuid: string | null;
  fsType: string | null;
  lastSeenMs: number | null;
  lastSyncMs: number | null;
  lastVerifyMs: number | null;
  droppedMs: number | null;
}

interface RawDisk {
  id: number;
  uuid: string;
  name: string;
  size: number;
  created: string;
  generation: number;
  mount_path: string | null;
  mount_point: string | null;
  rel_path: string | null;
  fs_uuid: string | null;
  fs_type: string | null;
  last_seen_ms: number | null;
  last_sync_ms: number | null;
  last_verify_ms: number | null;
  dropped_ms: number | null;
}

function toRow(r: RawDisk): DiskRow {
  return {
    id: r.id,
    uuid: r.uuid,
    name: r.name,
    size: r.size,
    created: r.created,
    generation: r.generation,
    mountPath: r.mount_path,
    mountPoint: r.mount_point,
    relPath: r.rel_path,
    fsUuid: r.fs_uuid,
    fsType: r.fs_type,
    lastSeenMs: r.last_seen_ms,
    lastSyncMs: r.last_sync_ms,
    lastVerifyMs: r.last_verify_ms,
    droppedMs: r.dropped_ms,
  };
}

/** Every registered disk, by name. */
export function listDisks(db: Db): DiskRow[] {
  return (db.prepare('SELECT * FROM disks ORDER BY name').all() as RawDisk[]).map(toRow);
}

export function getDiskByName(db: Db, name: string): DiskRow | undefined {
  const r = db.prepare('SELECT * FROM disks WHERE name = ?').get(name) as RawDisk | undefined;
  return r === undefined ? undefined : toRow(r);
}

export function getDiskByUuid(db: Db, uuid: string): DiskRow | undefined {
  const r = db.prepare('SELECT * FROM disks WHERE uuid = ?').get(uuid.toLowerCase()) as RawDisk | undefined;
  return r === undefined ? undefined : toRow(r);
}

export function getDiskById(db: Db, id: number): DiskRow | undefined {
  const r = db.prepare('SELECT * FROM disks WHERE id = ?').get(id) as RawDisk | undefined;
  return r === undefined ? undefined : toRow(r);
}

/** Register a disk; returns its id. */
export function insertDisk(db: Db, d: Omit<DiskRow, 'id'>): number {
  const info = db
    .prepare(
      `INSERT INTO disks (uuid, name, size, created, generation, mount_path, mount_point, rel_path, fs_uuid, fs_type,
                          last_seen_ms, last_sync_ms, last_verify_ms, dropped_ms)
       VALUES (@uuid, @name, @size, @created, @generation, @mountPath, @mountPoint, @relPath, @fsUuid, @fsType,
               @lastSeenMs, @lastSyncMs, @lastVerifyMs, @droppedMs)`,
    )
    .run({ ...d, uuid: d.uuid.toLowerCase() });
  return Number(info.lastInsertRowid);
}

const COLUMNS: Record<string, string> = {
  name: 'name',
  size: 'size',
  generation: 'generation',
  mountPath: 'mount_path',
  mountPoint: 'mount_point',
  relPath: 'rel_path',
  fsUuid: 'fs_uuid',
  fsType: 'fs_type',
  lastSeenMs: 'last_seen_ms',
  lastSyncMs: 'last_sync_ms',
  lastVerifyMs: 'last_verify_ms',
  droppedMs: 'dropped_ms',
};

/** Change some columns of disk `id` (column names come from this module, never from data). */
export function updateDisk(db: Db, id: number, changes: Partial<Omit<DiskRow, 'id' | 'uuid' | 'created'>>): void {
  const sets: string[] = [];
  const values: Record<string, unknown> = { id };
  for (const [k, v] of Object.entries(changes)) {
    const col = COLUMNS[k];
    if (col === undefined || v === undefined) continue;
    sets.push(`${col} = @${k}`);
    values[k] = v;
  }
  if (sets.length === 0) return;
  db.prepare(`UPDATE disks SET ${sets.join(', ')} WHERE id = @id`).run(values);
}

/** Forget disk `id` (its copies go by cascade). */
export function deleteDisk(db: Db, id: number): void {
  db.prepare('DELETE FROM disks WHERE id = ?').run(id);
}

/** Objects counted on disk `id` and their bytes (real sizes). */
export function diskUsage(db: Db, id: number): { objects: number; bytes: number } {
  const r = db
    .prepare(
      `SELECT count(*) AS objects, coalesce(sum(o.size), 0) AS bytes
       FROM copies c JOIN objects o ON o.id = c.object_id WHERE c.disk_id = ?`,
    )
    .get(id) as { objects: number; bytes: number };
  return r;
}
