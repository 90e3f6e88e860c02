/**
 * Reconciling what the catalogue counts on a disk with what is really on it (SPEC §4 step 2):
 * names and sizes only, and the disk wins. A counted copy that is missing or has the wrong size
 * stops counting; an uncounted object with a valid name that the catalogue knows by hash with
 * the right size is read and hashed, and adopted only when its bytes match its name (a file
 * under a hash name is not proof of that content: counting an impostor could let the planner
 * evict the last real copy elsewhere); a file named by a known hash but with the wrong size is moved to
 * `.quarantine/` (never deleted); unknown hashes and bad names are left alone and reported.
 */

import { addCopies, getObjectByHash, iterateDiskCopies, removeCopies } from '../catalog/copies.js';
import type { Catalog } from '../catalog/db.js';
import { ObjectChecker } from '../disk/check-object.js';
import type { DiskListing, DiskRoot } from '../disk/disk-root.js';

/** What reconciling changed. */
export interface ReconcileResult {
  /** Objects on the disk with a valid name. */
  present: number;
  /** Counted copies that were missing or had the wrong size: no longer counted. */
  uncounted: number;
  /** Objects found on the disk and now counted. */
  adopted: number;
  /** Files named by a known hash whose size or content is wrong: moved to .quarantine/. */
  quarantined: number;
  /** Valid object names the catalogue does not know (left in place). */
  unknown: number;
  /** Entries with bad names, or not regular files (left in place). */
  ignored: number;
  /** Leftovers removed from .tmp/. */
  tmpRemoved: number;
}

/**
 * Reconcile disk `diskId` with `disk` (listed now, or `listing` when the caller listed it). With `dryRun`, the catalogue changes are still made
 * (the caller runs this inside a transaction it rolls back) but no file on the disk is touched.
 */
export function reconcileDisk(
  cat: Catalog,
  diskId: number,
  disk: DiskRoot,
  options: { dryRun?: boolean; listing?: DiskListing } = {},
): ReconcileResult {
  const dryRun = options.dryRun ?? false;
  const listing = options.listing ?? disk.listObjects();
  // Merge-join by hash: both sides sorted the same way (lowercase hex, byte order).
  const onDisk = listing.objects.sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
  const uncount: number[] = [];
  const candidates: Array<{ id: number; hash: string; size: number }> = [];
  const adopt: number[] = [];
  const badSize: string[] = [];
  let unknown = 0;
  let i = 0;
  const visitDiskOnly = (hash: string, size: number): void => {
    const known = getObjectByHash(cat.db, hash);
    if (known === undefined) unknown += 1;
    else if (known.size === size) candidates.push({ id: known.id, hash, size });
    else badSize.push(hash);
  };
  for (const c of iterateDiskCopies(cat.db, diskId)) {
    while (i < onDisk.length && (onDisk[i]?.hash ?? '') < c.hash) {
      const o = onDisk[i];
      if (o !== undefined) visitDiskOnly(o.hash, o.sizeBytes);
      i += 1;
    }
    const o = onDisk[i];
    if (o !== undefined && o.hash === c.hash) {
      if (o.sizeBytes !== c.size) {
        uncount.push(c.id);
        badSize.push(o.hash);
      }
      i += 1;
    } else {
      uncount.push(c.id);
    }
  }
  for (; i < onDisk.length; i++) {
    const o = onDisk[i];
    if (o !== undefined) visitDiskOnly(o.hash, o.sizeBytes);
  }
  // Adopt only what hashes to its name. A dry run reads nothing (its changes are rolled back).
  const checker = dryRun || candidates.length === 0 ? undefined : new ObjectChecker();
  for (const c of candidates) {
    if (checker === undefined) {
      adopt.push(c.id);
      continue;
    }
    const r = checker.check(disk.objectPath(c.hash), c.hash, c.size);
    if (r.status === 'ok' || r.status === 'ok-second-read') adopt.push(c.id);
    else if (r.status === 'bad' && r.untouchable !== true) badSize.push(c.hash);
  }
  // Uncount first, durably, then move files: a copy is never counted while it is not there.
  cat.db.transaction(() => {
    removeCopies(cat.db, diskId, uncount);
    addCopies(cat.db, diskId, adopt);
  })();
  let quarantined = 0;
  let tmpRemoved = 0;
  if (!dryRun) {
    for (const h of badSize) {
      disk.quarantine(h);
      quarantined += 1;
    }
    tmpRemoved = disk.emptyTmp();
  } else {
    quarantined = badSize.length;
  }
  return {
    present: onDisk.length,
    uncounted: uncount.length,
    adopted: adopt.length,
    quarantined,
    unknown,
    ignored: listing.ignored.length,
    tmpRemoved,
  };
}
