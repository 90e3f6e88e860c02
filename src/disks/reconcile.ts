/**
 * Reconciling what the catalogue counts on a disk with what is really on it (SPEC §4 step 2):
 * names and sizes only, and the disk wins. A counted copy that is missing or has the wrong size
 * stops counting; an uncounted object with a valid name that the catalogue knows by hash with
 * the right size is read and hashed, and adopted only when its bytes match its name (a file
 * under a hash name is not proof of that content: counting an impostor could let the planner
 * evict the last real copy elsewhere); a file named by a known hash but with the wrong size is moved to
 * `.quarantine/` (never deleted); unknown hashes and bad names are left alone and reported.
 */

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { addCopies, getObjectByHash, iterateDiskCopies, removeCopies } from '../catalog/copies.js';
import type { Catalog } from '../catalog/db.js';
import { fsyncDir } from '../core/durable.js';
import { errnoCode, fileError } from '../core/errors.js';
import { ObjectChecker } from '../disk/check-object.js';
import type { DiskListing, DiskObject, DiskRoot } from '../disk/disk-root.js';
import { syncfsDurable } from '../disk/fsinfo.js';
import { markCatalogueStale } from './disk-catalogue.js';

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
  const listing = options.listing ?? disk.listObjects();
  const merge = new Merge(cat, diskId);
  merge.feed([...listing.objects].sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0)));
  merge.ignored += listing.ignored.length;
  return merge.finish(disk, options.dryRun ?? false);
}

/**
 * The same as `reconcileDisk`, over a listing streamed in hash order (`DiskRoot.listObjectChunks`),
 * so that only one prefix folder of names is held at a time whatever the size of the disk.
 */
export async function reconcileDiskChunks(
  cat: Catalog,
  diskId: number,
  disk: DiskRoot,
  chunks: AsyncIterable<DiskListing>,
  options: { dryRun?: boolean } = {},
): Promise<ReconcileResult> {
  const merge = new Merge(cat, diskId);
  try {
    for await (const c of chunks) {
      merge.feed(c.objects);
      merge.ignored += c.ignored.length;
    }
  } catch (err) {
    merge.abandon(); // nothing was changed; the open query must not keep the connection busy
    // A listing cut short by a disk that went (ENOENT halfway) says so.
    disk.checkMounted();
    throw err;
  }
  return merge.finish(disk, options.dryRun ?? false);
}

/** Merge-join by hash of the disk's objects (fed in hash order) with the copies counted on it. */
class Merge {
  private readonly copies: Iterator<{ id: number; hash: string; size: number }>;
  private cur: { id: number; hash: string; size: number } | undefined;
  private readonly uncount: number[] = [];
  private readonly candidates: Array<{ id: number; hash: string; size: number }> = [];
  private readonly badSize: string[] = [];
  private unknown = 0;
  private present = 0;
  ignored = 0;

  constructor(
    private readonly cat: Catalog,
    private readonly diskId: number,
  ) {
    this.copies = iterateDiskCopies(cat.db, diskId);
    this.cur = this.nextCopy();
  }

  private nextCopy(): { id: number; hash: string; size: number } | undefined {
    const r = this.copies.next();
    return r.done === true ? undefined : r.value;
  }

  /** Objects on the disk, sorted by hash, each after every object of the previous calls. */
  feed(objects: readonly DiskObject[]): void {
    for (const o of objects) {
      this.present += 1;
      // Counted copies before this object are not on the disk.
      while (this.cur !== undefined && this.cur.hash < o.hash) {
        this.uncount.push(this.cur.id);
        this.cur = this.nextCopy();
      }
      if (this.cur !== undefined && this.cur.hash === o.hash) {
        if (o.sizeBytes !== this.cur.size) {
          this.uncount.push(this.cur.id);
          this.badSize.push(o.hash);
        }
        this.cur = this.nextCopy();
      } else {
        const known = getObjectByHash(this.cat.db, o.hash);
        if (known === undefined) this.unknown += 1;
        else if (known.size === o.sizeBytes) this.candidates.push({ id: known.id, hash: o.hash, size: o.sizeBytes });
        else this.badSize.push(o.hash);
      }
    }
  }

  /** Close the query over the counted copies without changing anything. */
  abandon(): void {
    this.copies.return?.(undefined);
  }

  finish(disk: DiskRoot, dryRun: boolean): ReconcileResult {
    const { cat, diskId, uncount, candidates, badSize } = this;
    for (; this.cur !== undefined; this.cur = this.nextCopy()) uncount.push(this.cur.id);
    let adopt: number[] = [];
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
    if (!dryRun) {
      // What was listed and read is the disk's only while it is still there: a disk unmounted
      // meanwhile left an empty mount point (or another disk) at its path, whose listing would
      // uncount every copy.
      disk.checkMounted();
      // An adopted object is counted only once durable: the rename that put it there may be
      // one a run killed before its folder's fsync left in the page cache.
      adopt = makeDurable(disk, candidates, adopt);
    }
    // Uncount first, durably, then move files: a copy is never counted while it is not there.
    cat.db.transaction(() => {
      removeCopies(cat.db, diskId, uncount);
      addCopies(cat.db, diskId, adopt, null);
    })();
    let quarantined = 0;
    let tmpRemoved = 0;
    if (!dryRun) {
      // The disk's catalogue copy may list them: said on the disk first (I2), as sync and verify do.
      if (badSize.length > 0) markCatalogueStale(disk);
      for (const h of badSize) {
        disk.quarantine(h);
        quarantined += 1;
      }
      tmpRemoved = disk.emptyTmp();
    } else {
      quarantined = badSize.length;
    }
    return {
      present: this.present,
      uncounted: uncount.length,
      adopted: adopt.length,
      quarantined,
      unknown: this.unknown,
      ignored: this.ignored,
      tmpRemoved,
    };
  }
}

/**
 * Make the objects `adopt` (ids of `candidates`) durable, with their prefix folders and the
 * objects folder: one syncfs where that is as durable as fsyncs (an fsync even of an unchanged
 * file flushes the drive's cache: minutes for a disk full of adoptions), else an fsync of each.
 * Returns those still there (one gone since it was read is not adopted).
 */
function makeDurable(
  disk: DiskRoot,
  candidates: readonly { id: number; hash: string }[],
  adopt: readonly number[],
): number[] {
  if (adopt.length === 0) return [];
  const ids = new Set(adopt);
  // SIGINT ignored: a Ctrl-C at the terminal does not end it halfway (the run hears it after).
  if (
    syncfsDurable(disk.objectsDir) &&
    spawnSync('sh', ['-c', 'trap "" INT; exec sync -f "$1"', 'sh', disk.objectsDir]).status === 0
  ) {
    return candidates
      .filter((c) => ids.has(c.id) && fs.lstatSync(disk.objectPath(c.hash), { throwIfNoEntry: false })?.isFile())
      .map((c) => c.id);
  }
  const kept: number[] = [];
  const prefixes = new Set<string>();
  for (const c of candidates) {
    if (!ids.has(c.id)) continue;
    const p = disk.objectPath(c.hash);
    let fd: number;
    try {
      fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') continue;
      throw fileError(p, err, 'open');
    }
    try {
      fs.fsyncSync(fd);
    } catch (err) {
      throw fileError(p, err, 'fsync');
    } finally {
      fs.closeSync(fd);
    }
    kept.push(c.id);
    prefixes.add(path.dirname(p));
  }
  for (const d of prefixes) fsyncDir(d);
  fsyncDir(disk.objectsDir);
  return kept;
}
