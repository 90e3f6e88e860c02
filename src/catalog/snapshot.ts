/**
 * The consistent catalogue copy written to every disk (SPEC §2): `VACUUM INTO` a temp file
 * beside the target (a consistent snapshot even while this process writes), switched to
 * `journal_mode=DELETE` so it opens read-only from a write-protected disk (a WAL copy does not,
 * RELIABILITY.md §2.12), mode 0600, fsynced, renamed over the old copy, folder fsynced. Readers
 * see the old copy or the new one, never a torn one. Also the rows of the disk's manifest.
 */
import * as fs from 'node:fs';
import Database from 'better-sqlite3';
import { renameDurable, tempNameFor } from '../core/durable.js';
import { killPoint } from '../core/kill-points.js';
import type { Db } from './db.js';
import { FileKind } from './schema.js';

/**
 * Write a snapshot of `db` to `target` atomically. `beforeRename` runs after the data is durable
 * and just before the rename (the caller checks there that the disk is still mounted).
 */
export function snapshotCatalogue(db: Db, target: string, beforeRename?: () => void): void {
  const tmp = tempNameFor(target);
  try {
    db.prepare('VACUUM INTO ?').run(tmp);
    const copy = new Database(tmp);
    try {
      copy.pragma('journal_mode = DELETE');
    } finally {
      copy.close();
    }
    fs.chmodSync(tmp, 0o600);
    const fd = fs.openSync(tmp, 'r+');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    killPoint('mid-catalogue-copy');
    beforeRename?.();
    renameDurable(tmp, target);
  } catch (err) {
    for (const f of [tmp, `${tmp}-journal`, `${tmp}-wal`, `${tmp}-shm`]) fs.rmSync(f, { force: true });
    throw err;
  }
}

/** One file of the manifest: a regular file whose object is on the disk. */
export interface ManifestRow {
  hash: string;
  sizeBytes: number;
  /** Whole seconds since the epoch (floor). */
  mtimeS: number;
  mode: number;
  vpath: Buffer;
}

/** Regular files whose object disk `diskId` holds, by virtual path. Streamed. */
export function* iterateManifestRows(db: Db, diskId: number): Generator<ManifestRow> {
  const stmt = db
    .prepare(
      `SELECT o.hash, f.size, f.mtime_ns, f.mode, f.vpath
       FROM files f JOIN copies c ON c.object_id = f.object_id AND c.disk_id = ?
       JOIN objects o ON o.id = f.object_id
       WHERE f.kind = ${FileKind.file}
       ORDER BY f.vpath`,
    )
    .raw(true)
    .safeIntegers(true);
  for (const r of stmt.iterate(diskId) as IterableIterator<[string, bigint, bigint, bigint, Buffer]>) {
    const ns = r[2];
    let s = ns / 1_000_000_000n;
    if (ns < 0n && ns % 1_000_000_000n !== 0n) s -= 1n;
    yield { hash: r[0], sizeBytes: Number(r[1]), mtimeS: Number(s), mode: Number(r[3]), vpath: r[4] };
  }
}
