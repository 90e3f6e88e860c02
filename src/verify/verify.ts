/**
 * The verify use-case (SPEC §3): re-read the objects of one connected disk and check their
 * hashes, least recently verified first, so repeated partial runs (`--percent`, `--max-time`,
 * `--older-than`) cover every object in turn, deterministically.
 *
 * Work goes in windows of the least-recently-verified order (at most 4,096 objects or 1 GiB);
 * inside a window objects are read in inode order (one sequential stream on a hard disk, where
 * inode order follows block order on ext4 and similar). A window's stamps are committed
 * together, after checking that the disk is still mounted, so an unplugged disk is never read
 * as "everything missing". A bad object stops counting first (committed, synchronous=FULL) and
 * is then moved to `.quarantine/`, never deleted; a missing one stops counting. The next sync
 * of any disk with room copies them again.
 */
import * as fs from 'node:fs';
import { removeCopies } from '../catalog/copies.js';
import type { Catalog } from '../catalog/db.js';
import { updateDisk } from '../catalog/disks.js';
import {
  candidateTotals,
  copiesOnDisk,
  nextCandidates,
  recordVerified,
  runStamp,
  type VerifyCandidate,
  type VerifySelection,
} from '../catalog/verify-state.js';
import { DistbackupError, describeError, UsageError } from '../core/errors.js';
import { type CheckResult, ObjectChecker, type ObjectReader } from '../disk/check-object.js';
import { DiskRoot } from '../disk/disk-root.js';
import { writeDiskCatalogue } from '../disks/disk-catalogue.js';
import { findDisk, lockCatalogue, lockDisk } from '../disks/open.js';
import type { Progress } from '../ui/progress.js';

/** Objects per window (bounds memory and the work redone after an interruption). */
const WINDOW_OBJECTS = 4096;
/** Bytes per window: 1 GiB keeps a window's inode sort meaningful and its commit frequent. */
const WINDOW_BYTES = 1024 ** 3;

export interface VerifyOptions {
  name?: string | undefined;
  diskPath?: string | undefined;
  /** Only copies not verified for this long (ms). */
  olderThanMs?: number | undefined;
  /** Stop starting new objects after this long (ms). */
  maxTimeMs?: number | undefined;
  /** Check this share of the disk's copies (0 < P ≤ 100), least recently verified first. */
  percent?: number | undefined;
  progress?: Progress;
  /** Injected file operations (fault tests); default node:fs. */
  reader?: ObjectReader;
  /** The clock (ms since the epoch). */
  now?: () => number;
}

/** A bad object and what happened to it. */
export interface BadObjectDoc {
  hash: string;
  problem: string;
  /** Where it was moved; null when the move failed (it is uncounted all the same). */
  quarantinedTo: string | null;
}

/** The `verify --json` document (SPEC §3a, with additions). */
export interface VerifyDoc {
  disk: string;
  checked: number;
  bytesChecked: number;
  bad: string[];
  missing: string[];
  badDetails: BadObjectDoc[];
  /** Read wrong once, right the second time: kept (a transient glitch). */
  okOnSecondRead: string[];
  /** Copies this run did not reach (max-time, percent, or not old enough). */
  remaining: number;
  /** Copies on the disk now counted. */
  copies: number;
  stoppedBy: 'done' | 'max-time' | 'percent';
}

/** Verify one disk; see the module comment. */
export function runVerify(cat: Catalog, opts: VerifyOptions): VerifyDoc {
  if (opts.percent !== undefined && !(opts.percent > 0 && opts.percent <= 100)) {
    throw new UsageError(`--percent must be above 0 and at most 100`);
  }
  const now = opts.now ?? Date.now;
  const started = now();
  const lock = lockCatalogue(cat);
  try {
    const found = findDisk(cat, { name: opts.name, diskPath: opts.diskPath });
    const dlock = lockDisk(found.root, found.row.name);
    try {
      const disk = DiskRoot.open(found.root);
      const diskId = found.row.id;
      const sel: VerifySelection = {
        diskId,
        runStampMs: runStamp(cat.db, diskId, started),
        olderThanMs: opts.olderThanMs === undefined ? undefined : started - opts.olderThanMs,
      };
      const totalCopies = copiesOnDisk(cat.db, diskId);
      const budget = opts.percent === undefined ? undefined : Math.ceil((totalCopies * opts.percent) / 100);
      const planned = candidateTotals(cat.db, sel, budget);
      opts.progress?.setTotals(planned.bytes, planned.count);
      const checker = new ObjectChecker(opts.reader);
      const doc: VerifyDoc = {
        disk: found.row.name,
        checked: 0,
        bytesChecked: 0,
        bad: [],
        missing: [],
        badDetails: [],
        okOnSecondRead: [],
        remaining: 0,
        copies: 0,
        stoppedBy: 'done',
      };
      const deadline = opts.maxTimeMs === undefined ? undefined : started + opts.maxTimeMs;
      let left = budget ?? Number.POSITIVE_INFINITY;
      let lastStamp = 0;
      while (left > 0) {
        const window = cutWindow(nextCandidates(cat.db, sel, Math.min(WINDOW_OBJECTS, left)));
        if (window.length === 0) break;
        const stamps: { objectId: number; ms: number }[] = [];
        const gone: { c: VerifyCandidate; r: CheckResult }[] = [];
        let timeUp = false;
        for (const c of inodeOrder(disk, window)) {
          if (deadline !== undefined && now() >= deadline) {
            timeUp = true;
            break;
          }
          const r = checkOne(disk, checker, c);
          doc.checked += 1;
          doc.bytesChecked += r.bytesRead;
          left -= 1;
          if (r.status === 'ok' || r.status === 'ok-second-read') {
            if (r.status === 'ok-second-read') {
              doc.okOnSecondRead.push(c.hash);
              opts.progress?.note(`${c.hash}: ok on second read (first read: ${r.firstProblem}); kept`);
            }
            stamps.push({ objectId: c.objectId, ms: 0 });
          } else gone.push({ c, r });
          opts.progress?.update(doc.bytesChecked, doc.checked);
        }
        // Nothing is recorded unless the disk is still there: an unplugged disk reads as ENOENT.
        disk.checkMounted();
        // One stamp per window, later than every earlier one: the copies of a window form one
        // class in the least-recently-verified order, so a run cut short (max-time) leaves the
        // rest of its class first in line, and the next run goes on in inode order from there.
        lastStamp = Math.max(now(), sel.runStampMs, lastStamp + 1);
        for (const st of stamps) st.ms = lastStamp;
        recordVerified(cat.db, diskId, stamps);
        settle(cat, diskId, disk, gone, doc, opts.progress);
        if (timeUp) {
          doc.stoppedBy = 'max-time';
          break;
        }
      }
      if (doc.stoppedBy === 'done' && budget !== undefined && left <= 0) doc.stoppedBy = 'percent';
      if (doc.bad.length + doc.missing.length > 0) {
        // The catalogue copy, manifest and restore script on this disk must not go on claiming
        // objects it no longer holds (a restore from this disk alone would trust them).
        try {
          writeDiskCatalogue(cat, disk, diskId);
        } catch (err) {
          if (err instanceof DistbackupError && err.code === 'disk-vanished') throw err;
          opts.progress?.note(`could not rewrite the catalogue copy on the disk: ${describeError(err)}`);
        }
      }
      doc.remaining = candidateTotals(cat.db, sel).count;
      doc.copies = copiesOnDisk(cat.db, diskId);
      updateDisk(cat.db, diskId, { lastVerifyMs: now(), lastSeenMs: now() });
      return doc;
    } finally {
      dlock.release();
    }
  } finally {
    lock.release();
  }
}

/**
 * Check one copy. Its prefix folder is checked first: missing means the object is missing; a
 * symlink or another device means a hostile disk, and the copy is bad (and never touched).
 */
function checkOne(disk: DiskRoot, checker: ObjectChecker, c: VerifyCandidate): CheckResult {
  try {
    disk.prefixDir(c.hash, false);
  } catch (err) {
    if (err instanceof DistbackupError && err.code === 'ENOENT') return { status: 'missing', bytesRead: 0 };
    return { status: 'bad', bytesRead: 0, problem: `${describeError(err)} (not moved)`, untouchable: true };
  }
  return checker.check(disk.objectPath(c.hash), c.hash, c.sizeBytes);
}

/**
 * Cut a window at WINDOW_BYTES (keeping at least one object) and at the first copy stamped
 * differently from the first one: a window never mixes copies checked at different times, so
 * reading it in inode order never re-reads recent copies ahead of older ones.
 */
function cutWindow(rows: VerifyCandidate[]): VerifyCandidate[] {
  let bytes = 0;
  const cls = rows[0]?.verifiedMs ?? null;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i] as VerifyCandidate;
    bytes += r.sizeBytes;
    if (i > 0 && (bytes > WINDOW_BYTES || r.verifiedMs !== cls)) return rows.slice(0, i);
  }
  return rows;
}

/** The window sorted by inode (objects that cannot be lstat'ed keep hash order, at the end). */
function inodeOrder(disk: DiskRoot, rows: VerifyCandidate[]): VerifyCandidate[] {
  const withIno = rows.map((c) => {
    let ino = Number.MAX_SAFE_INTEGER;
    try {
      ino = Number(fs.lstatSync(disk.objectPath(c.hash), { bigint: true }).ino);
    } catch {
      // missing or unreadable: the check says which
    }
    return { c, ino };
  });
  withIno.sort((a, b) => a.ino - b.ino || (a.c.hash < b.c.hash ? -1 : 1));
  return withIno.map((x) => x.c);
}

/** Uncount bad and missing copies (durably, first), then move the bad ones to quarantine. */
function settle(
  cat: Catalog,
  diskId: number,
  disk: DiskRoot,
  gone: { c: VerifyCandidate; r: CheckResult }[],
  doc: VerifyDoc,
  progress: Progress | undefined,
): void {
  if (gone.length === 0) return;
  removeCopies(
    cat.db,
    diskId,
    gone.map((g) => g.c.objectId),
  );
  for (const { c, r } of gone) {
    if (r.status === 'missing') {
      doc.missing.push(c.hash);
      progress?.note(`${c.hash}: missing; no longer counted as a copy`);
      continue;
    }
    const problem = r.status === 'bad' ? r.problem : 'bad';
    let to: string | null = null;
    if (r.status === 'bad' && r.untouchable === true) {
      doc.bad.push(c.hash);
      doc.badDetails.push({ hash: c.hash, problem, quarantinedTo: null });
      progress?.note(`${c.hash}: BAD (${problem}); no longer counted as a copy`);
      continue;
    }
    try {
      to = disk.quarantine(c.hash);
    } catch (err) {
      if (err instanceof DistbackupError && err.code === 'disk-vanished') throw err;
      progress?.note(`${c.hash}: could not move it to quarantine: ${describeError(err)}`);
    }
    doc.bad.push(c.hash);
    doc.badDetails.push({ hash: c.hash, problem, quarantinedTo: to });
    progress?.note(`${c.hash}: BAD (${problem}); moved to quarantine, no longer counted as a copy`);
  }
}
