/**
 * The verify use-case (SPEC §3): re-read the objects of one connected disk and check their
 * hashes, least recently verified first, so repeated partial runs (`--percent`, `--max-time`,
 * `--older-than`) cover every object in turn, deterministically.
 *
 * Work goes in windows of the least-recently-verified order (at most 4,096 objects or 1 GiB);
 * inside a window the hdd profile reads objects in inode order (one sequential stream on a hard
 * disk, where inode order follows block order on ext4 and similar), the ssd profile in the
 * window's own order (no seeks to save). The hdd profile reads one object at a time, the ssd
 * profile two at once, each hashed on its own thread (see check-pool.ts). A run that plans many
 * small objects checks them on threads of their own, one per lane, in batches (small-check.ts):
 * this thread then only reads the catalogue, orders, and records.
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
import { type Lock, lockCatalogue } from '../catalog/lock.js';
import {
  beginPass,
  candidateTotals,
  copiesOnDisk,
  endPass,
  fileOfObject,
  futureStampShift,
  neverVerifiedSince,
  nextCandidates,
  openPass,
  rebaseFutureStamps,
  recordVerified,
  runStamp,
  setVerifyTurn,
  type VerifyCandidate,
  type VerifyClass,
  type VerifyCursor,
  type VerifySelection,
  verifyTurn,
} from '../catalog/verify-state.js';
import { DistbackupError, describeError, UsageError } from '../core/errors.js';
import { killPoint } from '../core/kill-points.js';
import { formatDuration } from '../core/units.js';
import { type CheckResult, isLocalError, type ObjectReader } from '../disk/check-object.js';
import { DiskRoot } from '../disk/disk-root.js';
import { isRotational } from '../disk/fsinfo.js';
import { HASH_RE } from '../disk/layout.js';
import { markCatalogueStale, writeDiskCatalogue } from '../disks/disk-catalogue.js';
import { diskLockHeld, findDisk, lockDisk } from '../disks/open.js';
import { boundedMap } from '../pipeline/bounded.js';
import type { Progress } from '../ui/progress.js';
import { type CheckPool, createInlineCheckPool, createThreadCheckPool, INLINE_BELOW_BYTES } from './check-pool.js';
import { ErrorsFile } from './errors-file.js';
import { fromAnswer, type SmallCheckAnswer, SmallCheckThreads, smallBatch } from './small-check.js';

/** How often the check loop lets the event loop run (signals, progress timers), in ms. */
const YIELD_EVERY_MS = 50;

/**
 * Small objects go to the small-object threads (small-check.ts) in batches of at most this many
 * objects and bytes: a batch is one message each way (128 objects a message spent five times as
 * long in postMessage on the hdd profile's thread), and Ctrl-C and the deadline stop one between
 * two objects, so its size delays neither.
 */
const SMALL_BATCH_OBJECTS = 512;
const SMALL_BATCH_BYTES = 16 * 1024 * 1024;

/** A run of fewer small objects (in inode order) is checked on the lanes: a message costs more. */
const SMALL_RUN_MIN = 16;

/**
 * The small-object threads start when the run plans at least this many objects of a mean size
 * below INLINE_BELOW_BYTES: a thread costs about 30 ms of CPU to start from `dist/` (far more
 * under tsx). From `dist/`, warm: 3,000 objects took the same 0.55 s of CPU with and without
 * them, 10,000 objects 0.79 s with them against 0.89 s without.
 */
export const SMALL_THREADS_MIN_OBJECTS = 5000;

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
  /**
   * Start the small-object threads (small-check.ts) when the run plans at least this many
   * objects of a small mean size (default SMALL_THREADS_MIN_OBJECTS; tests: 0 or Infinity). Never
   * with an injected reader or clock, or `inProcess`: the threads read with node:fs and stop at
   * the deadline by Date.now().
   */
  smallThreadsMinObjects?: number | undefined;
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
  /**
   * Copies that could not be checked, for a reason of this machine that says nothing of their
   * bytes (no descriptor left, no permission, ...): still counted, not stamped, so first in
   * line next time.
   */
  unreadable: { hash: string; problem: string }[];
  /** Copies this run did not reach (max-time, percent, interrupted, or not old enough). */
  remaining: number;
  /** Copies on the disk now counted. */
  copies: number;
  /** `unreadable`: UNREADABLE_STOP copies in a row could not be checked. */
  stoppedBy: 'done' | 'max-time' | 'percent' | 'interrupted' | 'unreadable';
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
  gone: { c: VerifyCandidate; r: Extract<CheckResult, { status: 'bad' | 'missing' }> }[];
}

/** Copies in a row that could not be checked after which a run stops: the cause is not one copy's. */
const UNREADABLE_STOP = 16;

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
  let small: SmallCheckThreads | undefined;
  let errors: ErrorsFile | undefined;
  let errorsDone = false;
  try {
    const found = findDisk(cat, { name: opts.name, diskPath: opts.diskPath });
    dlock = dryRun ? undefined : lockDisk(found.root, found.row.name);
    if (dryRun && diskLockHeld(found.root)) {
      opts.progress?.note(
        `another distbackup run holds disk '${found.row.name}': objects it deletes or moves meanwhile read as missing here`,
      );
    }
    const disk = DiskRoot.open(found.root);
    disk.pinIdentity(found.identity.uuid);
    const diskId = found.row.id;
    const profile: VerifyProfile = opts.profile ?? (isRotational(found.root) === false ? 'ssd' : 'hdd');
    // Stamps left by a clock that was set ahead are moved back first (a dry run only says so).
    // New stamps sort after every stamp already there (runStamp); the selection skips what
    // the open pass of an interrupted run already checked, or nothing when there is none.
    const shift = dryRun ? futureStampShift(cat.db, diskId, started) : rebaseFutureStamps(cat.db, diskId, started);
    if (shift > 0) {
      opts.progress?.note(
        `the last verify stamps of this disk were up to ${formatDuration(shift)} ahead of the clock: ${dryRun ? 'a run without --dry-run moves them back' : 'moved back, they are taken as that much older'}`,
      );
    }
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
    // Objects below smallBelow are checked in batches on threads of their own (one per lane) when
    // the run plans many of them (small-check.ts); they start now and boot while this thread reads
    // the catalogue.
    const smallBelow = opts.threadInlineBelowBytes ?? INLINE_BELOW_BYTES;
    if (
      opts.reader === undefined &&
      opts.inProcess !== true &&
      opts.now === undefined &&
      planned.count > 0 &&
      planned.count >= (opts.smallThreadsMinObjects ?? SMALL_THREADS_MIN_OBJECTS) &&
      planned.bytes / planned.count < smallBelow
    ) {
      small = new SmallCheckThreads(lanes, smallBelow);
      small.start();
      const threads = small;
      opts.signal?.addEventListener('abort', () => threads.stop(), { once: true });
    }
    if (opts.errorsFile !== undefined) errors = new ErrorsFile(opts.errorsFile);
    const doc: VerifyDoc = {
      disk: found.row.name,
      checked: 0,
      bytesChecked: 0,
      bad: [],
      missing: [],
      badDetails: [],
      okOnSecondRead: [],
      unreadable: [],
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
    let unreadableInARow = 0;
    /** Where each class stands (the last copy taken), and which class the next window is of. */
    const cursors: Record<VerifyClass, VerifyCursor | undefined> = { never: undefined, stamped: undefined };
    const exhausted: Record<VerifyClass, boolean> = { never: false, stamped: false };
    // Runs start with each class in turn: a run that gets through less than one window (a short
    // --max-time, a budget of one) still reaches both over two runs.
    const firstTurn = verifyTurn(cat.db, diskId);
    let turn: VerifyClass = firstTurn;
    /** While never-verified copies are left, stamped ones take turns only if verified before the oldest of them was written. */
    const neverSince = neverVerifiedSince(cat.db, diskId);
    /** No stamped copy older than that is left (the rest wait for the never-verified ones). */
    let stampedHeld = false;
    let lastYield = performance.now();
    let progressBytes = 0;
    /** Prefix folders found to be real folders of the disk in this run (the small-object threads' path). */
    const goodPrefixes = new Set<string>();
    /**
     * The next window, in the order it is read: inode order is on-disk order for a hard disk; an
     * SSD has no seeks to save (and the lstat of every object was a fifth of this thread's time
     * over 30,000 small objects). With the small-object threads the lstats run there, after
     * the checks they hold.
     */
    const prepare = (): Promise<VerifyCandidate[]> | undefined => {
      // Windows of the two classes in turn: never verified first, then the least recently
      // verified (while never-verified copies are left, only those verified before the oldest
      // of them was written), then never verified again... A budget is shared while both have
      // copies, so copies synced between partial runs never hold back older ones for good.
      let window: VerifyCandidate[] = [];
      while (window.length === 0) {
        const open: Record<VerifyClass, boolean> = {
          never: !exhausted.never,
          stamped: !exhausted.stamped && !(stampedHeld && !exhausted.never),
        };
        if (!open.never && !open.stamped) break;
        const cls: VerifyClass = open[turn] ? turn : turn === 'never' ? 'stamped' : 'never';
        const share = open.never && open.stamped && Number.isFinite(left) ? Math.ceil(left / 2) : left;
        const before = cls === 'stamped' && !exhausted.never ? neverSince : undefined;
        window = cutWindow(
          nextCandidates(cat.db, sel, cls, Math.min(VERIFY_DEFAULTS.windowObjects, share), cursors[cls], before),
        );
        const last = window[window.length - 1];
        if (last !== undefined) cursors[cls] = { verifiedMs: last.verifiedMs, objectId: last.objectId };
        else if (before !== undefined) stampedHeld = true;
        else exhausted[cls] = true;
        turn = cls === 'never' ? 'stamped' : 'never';
      }
      if (window.length === 0) return undefined;
      if (profile !== 'hdd') return Promise.resolve(window);
      if (small === undefined) return inodeOrder(disk, window, signal);
      const sorted = small
        .inodes(window.map((c) => disk.objectPath(c.hash)))
        .then((inos) => sortByInode(window, (_c, i) => inos[i] ?? Number.MAX_SAFE_INTEGER));
      // Awaited when its turn comes; a failed thread, or a run that ends first, must not leave
      // it unhandled meanwhile.
      sorted.catch(() => {});
      return sorted;
    };
    /** The next window, when prepared ahead (null: not yet). */
    let upcoming: Promise<VerifyCandidate[]> | undefined | null = null;
    /** Prepare the next window while the threads check the last batches of this one. */
    const prepareAhead = (): void => {
      if (upcoming === null && left > 0 && doc.stoppedBy === 'done' && signal?.aborted !== true) upcoming = prepare();
    };
    while (left > 0 && doc.stoppedBy === 'done') {
      const next = upcoming === null ? prepare() : upcoming;
      upcoming = null;
      if (next === undefined) break;
      // One stamp per window, later than every earlier one (see the module comment).
      lastStamp = Math.max(now(), stampBase, lastStamp + 1);
      const ordered = await next;
      let batch: Batch = { ok: [], gone: [] };
      let batchStarted = performance.now();
      const commit = (): void => {
        commitBatch(ctx, batch, lastStamp);
        batch = { ok: [], gone: [] };
        batchStarted = performance.now();
      };
      let at = 0;
      /** The next object to start, or undefined: the budget, the deadline or Ctrl-C says stop. */
      const pull = (to: number): VerifyCandidate | undefined => {
        if (at >= to || left <= 0 || signal?.aborted === true || doc.stoppedBy !== 'done') return undefined;
        if (deadline !== undefined && now() >= deadline) {
          doc.stoppedBy = 'max-time';
          return undefined;
        }
        left -= 1;
        return ordered[at++];
      };
      /** Count one result; true when the event loop should get a turn now. */
      const take = (c: VerifyCandidate, r: CheckResult): boolean => {
        if (r.status === 'unreadable') {
          // Not judged: still counted, not stamped. Many in a row: this machine's problem, stop.
          doc.unreadable.push({ hash: c.hash, problem: r.problem });
          const line = `could not be checked (${r.problem}); still counted`;
          opts.progress?.note(`${c.hash}: ${line}`);
          errorLine(ctx, c, line);
          unreadableInARow += 1;
          if (unreadableInARow >= UNREADABLE_STOP && doc.stoppedBy === 'done') {
            disk.checkMounted(); // a disk that went away says so
            doc.stoppedBy = 'unreadable';
          }
          return false;
        }
        unreadableInARow = 0;
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
        if (
          batch.ok.length + batch.gone.length >= commitObjects ||
          performance.now() - batchStarted >= VERIFY_DEFAULTS.commitMs
        ) {
          commit();
          return true;
        }
        return performance.now() - lastYield >= YIELD_EVERY_MS;
      };
      const breathe = async (): Promise<void> => {
        await letSignalsIn();
        lastYield = performance.now();
      };
      /** ordered[at..to) one object at a time per lane (boundedMap pulls each when a lane is free). */
      const eachOnLanes = async (to: number): Promise<void> => {
        const source = function* (): Generator<VerifyCandidate> {
          for (let c = pull(to); c !== undefined; c = pull(to)) yield c;
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
            if (take(s.input, s.value)) await breathe();
          }
        } catch (err) {
          if (signal?.aborted !== true) throw err;
        }
      };
      /**
         ordered[at..to), all small, in batches on the small-object threads: two batches per
         thread in flight, so a thread never waits for the next while this one records.
      */
      const smallOnThreads = async (threads: SmallCheckThreads, to: number): Promise<void> => {
        const inflight: { objs: VerifyCandidate[]; results: Promise<SmallCheckAnswer[]> }[] = [];
        let yieldNow = false;
        for (;;) {
          while (inflight.length < 2 * threads.count) {
            const objs: VerifyCandidate[] = [];
            let bytes = 0;
            while (objs.length < SMALL_BATCH_OBJECTS && bytes < SMALL_BATCH_BYTES) {
              const c = pull(to);
              if (c === undefined) {
                if (at >= ordered.length) prepareAhead();
                break;
              }
              // A prefix folder is checked once per run (DiskRoot caches it too, but only after
              // building its path: a microsecond an object on this thread).
              const prefix = c.hash.slice(0, 3);
              if (!goodPrefixes.has(prefix)) {
                const early = prefixProblem(disk, c);
                if (early !== undefined) {
                  yieldNow = take(c, early) || yieldNow;
                  continue;
                }
                goodPrefixes.add(prefix);
              }
              objs.push(c);
              bytes += c.sizeBytes;
            }
            if (objs.length === 0) break;
            const results = threads.run(smallBatch(disk.objectsDir, objs, deadline ?? null));
            // Awaited in turn below; a failure of a later batch must not go unhandled meanwhile.
            results.catch(() => {});
            inflight.push({ objs, results });
          }
          const head = inflight.shift();
          if (head === undefined) break;
          const results = await head.results;
          for (const [k, r] of results.entries()) {
            yieldNow = take(head.objs[k] as VerifyCandidate, fromAnswer(r)) || yieldNow;
          }
          if (results.length < head.objs.length) {
            // Stopped before these (Ctrl-C or the deadline): not started, so not counted.
            left += head.objs.length - results.length;
            if (signal?.aborted !== true) doc.stoppedBy = 'max-time';
          }
          if (yieldNow) {
            yieldNow = false;
            await breathe();
          }
        }
      };
      for (const seg of segments(ordered, small === undefined ? 0 : smallBelow)) {
        if (doc.stoppedBy !== 'done' || signal?.aborted === true || left <= 0) break;
        at = seg.from;
        if (seg.small && small !== undefined) await smallOnThreads(small, seg.to);
        else await eachOnLanes(seg.to);
      }
      if (signal?.aborted === true) doc.stoppedBy = 'interrupted';
      commit();
      await letSignalsIn();
      if (signal?.aborted === true) doc.stoppedBy = 'interrupted';
    }
    if (doc.stoppedBy === 'done' && budget !== undefined && left <= 0) doc.stoppedBy = 'percent';
    // After Ctrl-C the copy is left marked stale (settle marked it before uncounting): writing
    // it takes time in proportion to the catalogue, and the run must end within a second.
    if (!dryRun && doc.bad.length + doc.missing.length > 0 && doc.stoppedBy !== 'interrupted') {
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
    // Copies not checked for want of a device record nothing: a disk gone meanwhile says so
    // here rather than get a verify date.
    if (doc.unreadable.length > 0) disk.checkMounted();
    if (!dryRun) {
      updateDisk(cat.db, diskId, { lastVerifyMs: now(), lastSeenMs: now() });
      setVerifyTurn(cat.db, diskId, firstTurn === 'never' ? 'stamped' : 'never');
      // Reaching its end (or its budget) closes the pass; an interrupted run leaves it open.
      if (doc.stoppedBy !== 'interrupted') endPass(cat.db, diskId);
    }
    doc.workerThreads = pool.threadsStarted + (small?.started ?? 0);
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
    try {
      await small?.close();
      await pool?.destroy();
    } finally {
      dlock?.release();
      lock?.release();
    }
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
    recordVerified(ctx.cat.db, ctx.diskId, batch.ok, stampMs);
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
  return (
    prefixProblem(disk, c) ??
    pool.check({ path: disk.objectPath(c.hash), hash: c.hash, sizeBytes: c.sizeBytes }, signal)
  );
}

/** The `--errors` line of copy `c` (none without `--errors`). */
function errorLine(ctx: Ctx, c: VerifyCandidate, problem: string): void {
  ctx.errors?.add({
    disk: ctx.doc.disk,
    object: path.relative(ctx.disk.root, ctx.disk.objectPath(c.hash)),
    sizeBytes: c.sizeBytes,
    vpath: fileOfObject(ctx.cat.db, c.objectId),
    problem,
  });
}

/** The result of a copy whose prefix folder is missing or not a real folder; undefined when it is fine. */
function prefixProblem(disk: DiskRoot, c: VerifyCandidate): CheckResult | undefined {
  try {
    disk.prefixDir(c.hash, false);
    return undefined;
  } catch (err) {
    if (err instanceof DistbackupError && err.code === 'ENOENT') return { status: 'missing', bytesRead: 0 };
    if (isLocalError(err)) return { status: 'unreadable', bytesRead: 0, problem: describeError(err) };
    return { status: 'bad', bytesRead: 0, problem: `${describeError(err)} (not moved)`, untouchable: true };
  }
}

/** A copy for the small-object threads: below `smallBelow`, and named as they build paths (HASH_RE). */
function isSmall(c: VerifyCandidate, smallBelow: number): boolean {
  return c.sizeBytes < smallBelow && HASH_RE.test(c.hash);
}

/**
 * The window cut into stretches: runs of at least SMALL_RUN_MIN objects below `smallBelow`
 * (`small`, for the small-object threads), and what lies between them (checked one at a time
 * per lane). Inode order is kept: the stretches follow each other.
 */
function segments(
  ordered: readonly VerifyCandidate[],
  smallBelow: number,
): { from: number; to: number; small: boolean }[] {
  const out: { from: number; to: number; small: boolean }[] = [];
  let from = 0;
  let i = 0;
  while (i < ordered.length) {
    if (!isSmall(ordered[i] as VerifyCandidate, smallBelow)) {
      i += 1;
      continue;
    }
    let j = i;
    while (j < ordered.length && isSmall(ordered[j] as VerifyCandidate, smallBelow)) j += 1;
    if (j - i >= SMALL_RUN_MIN) {
      if (i > from) out.push({ from, to: i, small: false });
      out.push({ from: i, to: j, small: true });
      from = j;
    }
    i = j;
  }
  if (from < ordered.length) out.push({ from, to: ordered.length, small: false });
  return out;
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
  const inos: number[] = [];
  for (const c of rows) {
    if (inos.length % 256 === 255) {
      await new Promise((resolve) => setImmediate(resolve));
      if (signal?.aborted === true) return [];
    }
    let ino = Number.MAX_SAFE_INTEGER;
    try {
      ino = Number(fs.lstatSync(disk.objectPath(c.hash), { bigint: true }).ino);
    } catch {
      // missing or unreadable: the check says which
    }
    inos.push(ino);
  }
  return sortByInode(rows, (_c, i) => inos[i] ?? Number.MAX_SAFE_INTEGER);
}

/** `rows` by inode number, then by hash (so the order is the same whatever the sort). */
function sortByInode(rows: VerifyCandidate[], ino: (c: VerifyCandidate, i: number) => number): VerifyCandidate[] {
  const withIno = rows.map((c, i) => ({ c, ino: ino(c, i) }));
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
    // The disk's catalogue copy lists these until the run's end writes it again: marked stale
    // first, so a run killed or failing meanwhile leaves a copy that says it may lag. A disk
    // that cannot take the mark (read-only after I/O errors) still has its bad copies uncounted.
    try {
      markCatalogueStale(disk);
    } catch (err) {
      if (err instanceof DistbackupError && err.code === 'disk-vanished') throw err;
      progress?.note(`could not mark the catalogue copy on the disk stale: ${describeError(err)}`);
    }
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
    errorLine(ctx, c, line);
  }
}
