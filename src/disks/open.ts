/**
 * Shared steps of every command that uses a connected disk: find it among the registered
 * disks, take the home and disk locks, and open its folder with the hostile-disk checks.
 */
import * as path from 'node:path';
import type { Catalog } from '../catalog/db.js';
import { type DiskRow, listDisks } from '../catalog/disks.js';
import { acquireLock, type Lock, lockHeld } from '../catalog/lock.js';
import type { DiskIdentity } from '../disk/disk-json.js';
import { DiskRoot } from '../disk/disk-root.js';
import { DISK_LOCK } from '../disk/layout.js';
import { locateDisk } from '../disk/locate.js';

/** A registered disk found connected. */
export interface FoundDisk {
  readonly row: DiskRow;
  readonly root: string;
  readonly identity: DiskIdentity;
}

/**
 * Find a connected registered disk by `--disk PATH` and/or NAME (or the only connected one
 * when neither is given). A dropped disk is found only when named or given by its folder, never
 * as the only one connected. See `locateDisk` for the refusals (exit 2).
 */
export function findDisk(cat: Catalog, opts: { name?: string | undefined; diskPath?: string | undefined }): FoundDisk {
  const rows = listDisks(cat.db).filter(
    (d) => d.droppedMs === null || opts.name === d.name || opts.diskPath !== undefined,
  );
  const found = locateDisk(rows, { name: opts.name, diskPath: opts.diskPath, catalogueId: cat.id });
  return { row: found.disk, root: found.root, identity: found.identity };
}

/** Take the lock of the disk folder `root` (refused with exit 2 while another run holds it). */
export function lockDisk(root: string, name: string): Lock {
  return acquireLock(path.join(root, DISK_LOCK), `disk '${name}' (${root})`);
}

/** Whether another run holds the lock of the disk at `root`, found without taking it (lockHeld). */
export function diskLockHeld(root: string): boolean {
  return lockHeld(path.join(root, DISK_LOCK));
}

/** Open a found disk's folder with the hostile-disk checks (see DiskRoot). */
export function openDiskRoot(found: FoundDisk, options: { create?: boolean } = {}): DiskRoot {
  return DiskRoot.open(found.root, options);
}
