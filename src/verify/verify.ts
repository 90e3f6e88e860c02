/**
 * The verify use-case (SPEC §3): re-read the objects of one connected disk and check their
 * hashes, least recently verified first, so repeated partial runs (`--percent`, `--max-time`,
 * `--older-than`) cover every object in turn, deterministically.
 *
 * Work goes in windows of the least-recently-verified order (at most 4,096 objects or 1 GiB);
 * inside a window objects are read in inode order (one sequential stream on a hard disk, where
 * inode order follows block order on ext4 and similar). The hdd profile reads one object at a
 * time, the ssd profile two at once, each hashed on its own thread (see check-pool.ts).
 *
 * Results are committed in batches during the window (every `commitObjects` objects or 2 s,
 * and at its end), after checking that the disk is still mounted, so an unplugged disk is never
 * read as "everything missing", and a run that is killed loses at most its last batch. A run
 * opens a pass (schema 4, `verify_passes`) and closes it when it reaches its end or its budget;
 * a run that does not (Ctrl-C, SIGKILL, a failure) leaves it open, and the next run goes on
 * with it: it skips the copies stamped since the pass began, so it checks only what was not
 * checked yet. New stamps still sort after every stamp there: all copies of a window get one
 * stamp, later than every earlier one, so they form one class in the order and the rest of an
 * interrupted window stays first in line. A bad object stops counting first (committed, synchronous=FULL) and is
 * then moved to `.quarantine/`, never deleted; a missing one stops counting. The next sync of
 * any disk with room copies them again.
 *
 * A dry run reads and checks the same objects in the same order but records nothing and moves
 * nothing (the catalogue may be opened read-only); it says what it would do. An aborted signal
 * (Ctrl-C) stops the checks in flight, commits what was checked, and returns with
 * `stoppedBy: 'interrupted'`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { removeCopies } from '../catalog/copies.js';
import type { Catalog } from '../catalog/db.js';
import { updateDisk } from '../catalog/disks.js';
import type { Lock } from '../catalog/lock.js';
import {
  beginPass,
  candidateTotals,
  copiesOnDisk,
  endPass,
  fileOfObject,
  nextCandidates,
  openPass,
  recordVerified,
  runStamp,
  type VerifyCandidate,
  type VerifyCursor,
  type VerifySelection,
} from '../catalog/verify-state.js';
import { DistbackupError, describeError, UsageError } from '../core/errors.js';
import { killPoint } from '../core/kill-points.js';
import type { CheckResult, ObjectReader } from '../disk/check-object.js';
import { DiskRoot } from '../disk/disk-root.js';
import { isRotational } from '../disk/fsinfo.js';
import { writeDiskCatalogue } from '../disks/disk-catalogue.js';
import { findDisk, lockCatalogue, lockDisk } from '../disks/open.js';
import { boundedMap } from '../pipeline/bounded.js';
import type { Progress } from '../ui/progress.js';
import { type CheckPool, createInlineCheckPool, createThreadCheckPool } from './check-pool.js';
import { ErrorsFile } from './errors-file.js';

/** How often the check loop lets the event loop run (signals, progress timers), in ms. */
const YIELD_EVERY_MS = 50;

/** hdd: one sequential stream; ssd: two objects read and hashed at once. */
export type VerifyProfile = 'hdd' | 'ssd';

/** Defaults; see docs/README-recovery.md for the measurements behind the lanes. */
export const VERIFY_DEFAULTS = {
  /** Objects per window (bounds memory and the inode sort). */
  windowObjects: 4096,
  /** Bytes per window: 1 GiB keeps a window's inode sort meaningful. */
  windowBytes: 1024 ** 3,
  /** Objects per commit at most; a window's end commits too. */
  commitObjects: 4096,
  /** A commit at least this often (ms of monotonic time): a killed run redoes at most this. */
  commitMs: 2000,
  /** Objects read at once: hdd one (sequential), ssd two (each hashed on its own thread). */
  lanes: { hdd: 1, ssd: 2 },
} as const;

export interface VerifyOptions {
  name?: string | undefined;
  diskPath?: string | undefined;
  /** Only copies not verified for this long (ms). */
  olderThanMs?: number | undefined;
  /** Stop starting new objects after this long (ms). */
  maxTimeMs?: number | undefined;
  /** Check this share of the disk's copies (0 < P ≤ 100), least recently verified first. */
  percent?: number | undefined;
  /** Default from the disk's device: rotational → hdd, else ssd; unknown → hdd. */
  profile?: VerifyProfile | undefined;
  /** Read and check, record and move nothing. */
  dryRun?: boolean | undefined;
  /** Write the bad and missing objects to this TSV file (see errors-file.ts). */
  errorsFile?: string | undefined;
  /** Stop: checks in flight end, what was checked is committed. */
  signal?: AbortSignal | undefined;
  /** Objects per commit (default VERIFY_DEFAULTS.commitObjects). */
  commitObjects?: number | undefined;
  /** Run the ssd lanes on the calling thread instead of worker threads (tests). */
  inProcess?: boolean | undefined;
  /**
   * ssd profile: start the worker thread only once at least this much checking is left at the
   * measured rate (ms; default THREAD_MIN_MS, check-pool.ts). Tests set 0 or Infinity.
   */
  threadMinMs?: number | undefined;
  /** ssd profile: objects below this size are checked on the calling thread (default INLINE_BELOW_BYTES, check-pool.ts; tests: 0). */
  threadInlineBelowBytes?: number | undefined;
  progress?: Progress;
  /** Injected file operations (fault tests; implies inProcess); default node:fs. */
  reader?: ObjectReader;
  /** The clock (ms since the epoch). */
  now?: () => number;
}

/** A bad object and what happened to it. */
export interface BadObjectDoc {
  hash: string;
  problem: string;
  /** Where it was moved; null when the move failed, was impossible, or in a dry run. */
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
  /** Copies this run did not reach (max-time, percent, interrupted, or not old enough). */
  remaining: number;
  /** Copies on the disk now counted. */
  copies: number;
  stoppedBy: 'done' | 'max-time' | 'percent' | 'interrupted';
  profile: VerifyProfile;
  /** Worker threads this run started (ssd profile: 0 while little checking is planned, else 1). */
  workerThreads: number;
  /** Nothing was recorded or moved. */
  dryRun: boolean;
  /** The errors file written, or null. */
  errorsFile: string | null;
  /** When the pass this run went on with began (an interrupted run's), or null. */
  resumedPassMs: number | null;
}

/** What a batch holds until it is committed. */
interface Batch {
  ok: number[];
  gone: { c: VerifyCandidate; r: Exclude<CheckResult, { status: 'ok' | 'ok-second-read' }> }[];
}

/** Verify one disk; see the module comment. */
export async function runVerify(cat: Catalog, opts: VerifyOptions): Promise<VerifyDoc> {
  if (opts.percent !== undefined && !(opts.percent > 0 && opts.percent <= 100)) {
    throw new UsageError(`--percent must be above 0 and at most 100`);
  }
  const dryRun = opts.dryRun ?? false;
  const now = opts.now ?? Date.now;
  const started = now();
  // A dry run changes nothing, so it takes no lock (like `sync --dry-run`).
  const lock = dryRun ? undefined : lockCatalogue(cat);
  let dlock: Lock | undefined;
  let pool: CheckPool | undefined;
  let errors: ErrorsFile | undefined;
  let errorsDone = false;
  try {
    const found = findDisk(cat, { name: opts.name, diskPath: opts.diskPath });
    dlock = dryRun ? undefined : lockDisk(found.root, found.row.name);
    const disk = DiskRoot.open(found.root);
    const diskId = found.row.id;
    const profile: VerifyProfile = opts.profile ?? (isRotational(found.root) === false ? 'ssd' : 'hdd');
    // New stamps sort after every stamp already there (runStamp); the selection skips what
    // the open pass of an interrupted run already checked, or nothing when there is none.
    const stampBase = runStamp(cat.db, diskId, started);
    const pass = openPass(cat.db, diskId);
    const sel: VerifySelection = {
      diskId,
      runStampMs: pass?.runStampMs ?? stampBase,
      olderThanMs: opts.olderThanMs === undefined ? undefined : started - opts.olderThanMs,
    };
    if (!dryRun && pass === undefined) beginPass(cat.db, diskId, { runStampMs: stampBase, startedMs: started });
    const totalCopies = copiesOnDisk(cat.db, diskId);
    const budget = opts.percent === undefined ? undefined : Math.ceil((totalCopies * opts.percent) / 100);
    const planned = candidateTotals(cat.db, sel, budget);
    opts.progress?.setTotals(planned.bytes, planned.count);
    const lanes = VERIFY_DEFAULTS.lanes[profile];
    // The ssd profile's worker thread starts only when the run has enough to check (check-pool.ts).
    pool =
      lanes === 1 || opts.reader !== undefined || opts.inProcess === true
        ? createInlineCheckPool(lanes, opts.reader)
        : createThreadCheckPool(lanes, {
            plannedBytes: planned.bytes,
            minMs: opts.threadMinMs,
            inlineBelowBytes: opts.threadInlineBelowBytes,
          });
    if (opts.errorsFile !== undefined) errors = new ErrorsFile(opts.errorsFile);
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
      profile,
      workerThreads: 0,
      dryRun,
      errorsFile: errors?.target ?? null,
      resumedPassMs: pass?.startedMs ?? null,
    };
    if (pass !== undefined) {
      opts.progress?.note(
        `going on where the run begun ${new Date(pass.startedMs).toISOString()} stopped: what it checked is not read again`,
      );
    }
    const ctx: Ctx = { cat, diskId, disk, doc, dryRun, errors, progress: opts.progress };
    const deadline = opts.maxTimeMs === undefined ? undefined : started + opts.maxTimeMs;
    const commitObjects = opts.commitObjects ?? VERIFY_DEFAULTS.commitObjects;
    const signal = opts.signal;
    let left = budget ?? Number.POSITIVE_INFINITY;
    let lastStamp = 0;
    let cursor: VerifyCursor | undefined;
    let lastYield = performance.now();
    let progressBytes = 0;
    while (left > 0 && doc.stoppedBy === 'done') {
      const window = cutWindow(nextCandidates(cat.db, sel, Math.min(VERIFY_DEFAULTS.windowObjects, left), cursor));
      const last = window[window.length - 1];
      if (last === undefined) break;
      cursor = { verifiedMs: last.verifiedMs, objectId: last.objectId };
      // One stamp per window, later than every earlier one (see the module comment).
      lastStamp = Math.max(now(), stampBase, lastStamp + 1);
      const ordered = await inodeOrder(disk, window, signal);
      let batch: Batch = { ok: [], gone: [] };
      let batchStarted = performance.now();
      const commit = (): void => {
        commitBatch(ctx, batch, lastStamp);
        batch = { ok: [], gone: [] };
        batchStarted = performance.now();
      };
      // Pulled one at a time by boundedMap: the deadline and the budget are checked before
      // each object is started, never in the middle of one.
      const source = function* (): Generator<VerifyCandidate> {
        for (const c of ordered) {
          if (left <= 0) return;
          if (deadline !== undefined && now() >= deadline) {
            doc.stoppedBy = 'max-time';
            return;
          }
          left -= 1;
          yield c;
        }
      };
      const checks = boundedMap(source(), (c, sig) => checkOne(disk, pool as CheckPool, c, sig), {
        concurrency: lanes,
        ordered: false,
        ...(signal === undefined ? {} : { signal }),
      });
      try {
        for await (const s of checks) {
          if (!s.ok) {
            if (signal?.aborted === true) break;
            throw s.error;
          }
          const { input: c, value: r } = s;
          doc.checked += 1;
          doc.bytesChecked += r.bytesRead;
          if (r.status === 'ok' || r.status === 'ok-second-read') {
            if (r.status === 'ok-second-read') {
              doc.okOnSecondRead.push(c.hash);
              opts.progress?.note(`${c.hash}: ok on second read (first read: ${r.firstProblem}); kept`);
            }
            batch.ok.push(c.objectId);
          } else batch.gone.push({ c, r });
          // Progress counts the catalogued sizes the total was made of: a second read or an
          // object grown on the disk would otherwise run the bytes past the total.
          progressBytes += c.sizeBytes;
          opts.progress?.update(progressBytes, doc.checked);
          // Checks of small objects resolve without a trip through the event loop: give it a
          // turn after every commit and now and then, so that a Ctrl-C is heard within a
          // fraction of a second (and right after a commit, where the kill points are).
          let committed = false;
          if (
            batch.ok.length + batch.gone.length >= commitObjects ||
            performance.now() - batchStarted >= VERIFY_DEFAULTS.commitMs
          ) {
            commit();
            committed = true;
          }
          if (committed || performance.now() - lastYield >= YIELD_EVERY_MS) {
            await letSignalsIn();
            lastYield = performance.now();
          }
        }
      } catch (err) {
        if (signal?.aborted !== true) throw err;
      }
      if (signal?.aborted === true) doc.stoppedBy = 'interrupted';
      commit();
      await letSignalsIn();
      if (signal?.aborted === true) doc.stoppedBy = 'interrupted';
    }
    if (doc.stoppedBy === 'done' && budget !== undefined && left <= 0) doc.stoppedBy = 'percent';
    if (!dryRun && doc.bad.length + doc.missing.length > 0) {
      // The catalogue copy, manifest and restore script on this disk must not go on claiming
      // objects it no longer holds (a restore from this disk alone would trust them).
      try {
        writeDiskCatalogue(cat, disk, diskId);
      } catch (err) {
        if (err instanceof DistbackupError && err.code === 'disk-vanished') throw err;
        opts.progress?.note(`could not rewrite the catalogue copy on the disk: ${describeError(err)}`);
      }
    }
    doc.remaining = dryRun
      ? Math.max(0, candidateTotals(cat.db, sel).count - doc.checked)
      : candidateTotals(cat.db, sel).count;
    doc.copies = copiesOnDisk(cat.db, diskId);
    if (!dryRun) {
      updateDisk(cat.db, diskId, { lastVerifyMs: now(), lastSeenMs: now() });
      // Reaching its end (or its budget) closes the pass; an interrupted run leaves it open.
      if (doc.stoppedBy !== 'interrupted') endPass(cat.db, diskId);
    }
    doc.workerThreads = pool.threadsStarted;
    errors?.finish();
    errorsDone = true;
    return doc;
  } catch (err) {
    // The list says what this run decided, also when it failed after recording some of it;
    // it is dropped only when it cannot be finished.
    if (errors !== undefined && !errorsDone) {
      try {
        errors.finish();
      } catch {
        errors.abandon();
      }
    }
    throw err;
  } finally {
    await pool?.destroy();
    dlock?.release();
    lock?.release();
  }
}

interface Ctx {
  cat: Catalog;
  diskId: number;
  disk: DiskRoot;
  doc: VerifyDoc;
  dryRun: boolean;
  errors: ErrorsFile | undefined;
  progress: Progress | undefined;
}

/**
 * Record a batch: stamps of the good copies in one transaction, then the bad and missing ones
 * uncounted (durably, first) and the bad ones moved to quarantine. Nothing is recorded unless
 * the disk is still there: an unplugged disk reads as ENOENT.
 */
function commitBatch(ctx: Ctx, batch: Batch, stampMs: number): void {
  if (batch.ok.length === 0 && batch.gone.length === 0) return;
  ctx.disk.checkMounted();
  if (!ctx.dryRun) {
    recordVerified(
      ctx.cat.db,
      ctx.diskId,
      batch.ok.map((objectId) => ({ objectId, ms: stampMs })),
    );
  }
  settle(ctx, batch.gone);
  killPoint('verify-commit');
}

/**
 * Check one copy. Its prefix folder is checked first: missing means the object is missing; a
 * symlink or another device means a hostile disk, and the copy is bad (and never touched).
 */
async function checkOne(
  disk: DiskRoot,
  pool: CheckPool,
  c: VerifyCandidate,
  signal: AbortSignal,
): Promise<CheckResult> {
  try {
    disk.prefixDir(c.hash, false);
  } catch (err) {
    if (err instanceof DistbackupError && err.code === 'ENOENT') return { status: 'missing', bytesRead: 0 };
    return { status: 'bad', bytesRead: 0, problem: `${describeError(err)} (not moved)`, untouchable: true };
  }
  return pool.check({ path: disk.objectPath(c.hash), hash: c.hash, sizeBytes: c.sizeBytes }, signal);
}

/**
 * Let the event loop run its poll phase (where signal handlers run) once: two turns of
 * setImmediate always have a poll phase between them.
 */
async function letSignalsIn(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
}

/**
 * Cut a window at the window size in bytes (keeping at least one object) and at the first copy
 * stamped differently from the first one: a window never mixes copies checked at different
 * times, so reading it in inode order never re-reads recent copies ahead of older ones.
 */
function cutWindow(rows: VerifyCandidate[]): VerifyCandidate[] {
  let bytes = 0;
  const cls = rows[0]?.verifiedMs ?? null;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i] as VerifyCandidate;
    bytes += r.sizeBytes;
    if (i > 0 && (bytes > VERIFY_DEFAULTS.windowBytes || r.verifiedMs !== cls)) return rows.slice(0, i);
  }
  return rows;
}

/**
 * The window sorted by inode (objects that cannot be lstat'ed keep hash order, at the end).
 * Yields to the event loop every 256 lstats (a cold hard disk may take a seek for each), so
 * Ctrl-C is heard; an aborted signal ends the sort early (nothing is checked after it).
 */
async function inodeOrder(disk: DiskRoot, rows: VerifyCandidate[], signal?: AbortSignal): Promise<VerifyCandidate[]> {
  const withIno: { c: VerifyCandidate; ino: number }[] = [];
  for (const c of rows) {
    if (withIno.length % 256 === 255) {
      await new Promise((resolve) => setImmediate(resolve));
      if (signal?.aborted === true) return [];
    }
    let ino = Number.MAX_SAFE_INTEGER;
    try {
      ino = Number(fs.lstatSync(disk.objectPath(c.hash), { bigint: true }).ino);
    } catch {
      // missing or unreadable: the check says which
    }
    withIno.push({ c, ino });
  }
  withIno.sort((a, b) => a.ino - b.ino || (a.c.hash < b.c.hash ? -1 : 1));
  return withIno.map((x) => x.c);
}

/**
 * Uncount bad and missing copies (durably, first), then move the bad ones to quarantine; in a
 * dry run only say what would happen. Each one gets its line in the errors file.
 */
function settle(ctx: Ctx, gone: Batch['gone']): void {
  if (gone.length === 0) return;
  const { doc, progress, disk } = ctx;
  if (!ctx.dryRun) {
    removeCopies(
      ctx.cat.db,
      ctx.diskId,
      gone.map((g) => g.c.objectId),
    );
  }
  const would = ctx.dryRun ? 'would no longer count' : 'no longer counted';
  for (const { c, r } of gone) {
    let line: string;
    if (r.status === 'missing') {
      doc.missing.push(c.hash);
      line = `missing; ${would} as a copy`;
      progress?.note(`${c.hash}: ${line}`);
    } else {
      const problem = r.problem;
      let to: string | null = null;
      let what: string;
      if (r.untouchable === true) {
        what = `${would} as a copy`;
      } else if (ctx.dryRun) {
        what = `would be moved to quarantine and ${would} as a copy`;
      } else {
        try {
          to = disk.quarantine(c.hash);
          what = `moved to ${path.relative(disk.root, to)}, ${would} as a copy`;
        } catch (err) {
          if (err instanceof DistbackupError && err.code === 'disk-vanished') throw err;
          what = `could not move it to quarantine (${describeError(err)}), ${would} as a copy`;
        }
      }
      doc.bad.push(c.hash);
      doc.badDetails.push({ hash: c.hash, problem, quarantinedTo: to });
      line = `BAD (${problem}); ${what}`;
      progress?.note(`${c.hash}: ${line}`);
    }
    ctx.errors?.add({
      disk: doc.disk,
      object: path.relative(disk.root, disk.objectPath(c.hash)),
      sizeBytes: c.sizeBytes,
      vpath: fileOfObject(ctx.cat.db, c.objectId),
      problem: line,
    });
  }
}
