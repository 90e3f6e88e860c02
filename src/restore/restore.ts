/**
 * The restore use-case (SPEC §6, RELIABILITY.md §4): rebuild files of the catalogue in use from
 * the objects of one connected disk, into DEST, and say which disk to connect next.
 *
 * Order of work: folders (created 0700), regular files in object order (one sequential stream
 * on a hard disk; each written 0600 under a temp name, hashed, refused on a mismatch, then
 * given its mode, owner and mtime and linked into place without ever replacing what is there:
 * `file-writer.ts`; files below 1 MiB of a run of many files on a thread of their own,
 * `small-files.ts`, this thread keeping every path check and durability step), symlinks last
 * (targets verbatim, never followed), then folder modes and mtimes, deepest first. Every target is built from checked components (`rows.ts`, `paths.ts`);
 * every existing ancestor is lstat'ed and a symlink or non-folder refuses the path
 * (`dest-tree.ts`). The restore state (`catalog/restore-state.ts`) records what was written,
 * after it is durable (`batch.ts`), so the next disk adds only what is still missing
 * (`survey.ts`, `guide.ts`). An abort signal (Ctrl-C) stops between two files, or between two
 * chunks of a big one: what is written is made durable and recorded, and the next run goes on
 * from there.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CATALOGUE_FILE, type Catalog, openCatalog, openUntrustedCatalogue } from '../catalog/db.js';
import { acquireLock, type Lock } from '../catalog/lock.js';
import { diskIdByUuid, diskNames, hasEntriesUnder, iterateFilesUnder } from '../catalog/reports.js';
import { KIND_FOUND_ELSEWHERE, RestoreState, type RestoreTodo } from '../catalog/restore-state.js';
import { FileKind } from '../catalog/schema.js';
import { DistbackupError, describeError, RefusedError, UsageError } from '../core/errors.js';
import { displayPath, normalizeVpath, printable } from '../core/vpath.js';
import { readDiskIdentity } from '../disk/disk-json.js';
import { DiskRoot } from '../disk/disk-root.js';
import { caseSensitiveWithLinks, isRotational } from '../disk/fsinfo.js';
import { DISK_CATALOGUE, OBJECTS_DIR } from '../disk/layout.js';
import { catalogueMarkedStale } from '../disks/disk-catalogue.js';
import { findDisk } from '../disks/open.js';
import { DurableBatch } from './batch.js';
import { DestTree, lstatOrUndefined } from './dest-tree.js';
import { addProblem, emptyDoc, type RestoreDoc, type RestoreOptions, warnOnce } from './doc.js';
import { dryRun } from './dry-run.js';
import { BadObject, ExistsError, Interrupted, PathRefused, WriteBackError } from './errors.js';
import type { Fetched } from './fetch.js';
import { FileWriter, tmpName, writtenBackEarly } from './file-writer.js';
import { MetaWriter, secondsOf } from './meta.js';
import { ensureStateDir, newestCatalogue } from './newest.js';
import { Pace } from './pace.js';
import { insideDest, joinTarget, STATE_DIR, splitVpath } from './paths.js';
import { stillOurs } from './place.js';
import { checkRow, EMPTY_HASH, linkHash } from './rows.js';
import { Selection } from './select.js';
import { LANE_FAILED, SmallFileLane, type SmallFileResult, type SmallFileTask } from './small-files.js';
import { Survey, survey } from './survey.js';

export type { DryRunEntry, PathProblem, PlanDoc, RestoreDoc, RestoreOptions } from './doc.js';
export { checkRow, EMPTY_HASH } from './rows.js';
export { vpathFilter } from './select.js';

/**
 * Files (and bytes) copied and not yet counted: the checks and write-backs of kernel copies run
 * behind the copies of the next files (`file-writer.ts`), at most this far, so that the disk
 * keeps copying while a slower check catches up, and what waits to be checked is still in the
 * page cache. The byte bound never holds back the second file: files over 512 MiB (kernel
 * copies go up to 1 GiB) were otherwise copied, checked and written back one after the other.
 * 3 files of 700 MiB, cold, in turns at load 1-2.6: 3.61-4.70 s before, 2.91-2.99 s after.
 */
const IN_FLIGHT_FILES = 4;
const IN_FLIGHT_BYTES = 512 * 1024 * 1024;
/**
 * Files looked at ahead of the one being written when there is no small-file lane: their
 * objects, when small, are read whole on libuv's pool meanwhile (`FileWriter.fetch`, `fetch.ts`),
 * so that this thread neither waits on the disk's latency nor spends its own system calls
 * reading them; the file then only checks the bytes (length and SHA-256) and writes them.
 * Bounded: 32 rows, so at most 32 objects below 1 MiB are held in memory. Before, these objects
 * were only warmed into the page cache and then opened, fstat'ed and read again on this thread:
 * 3,000 small files restored in 1.43× the time of `cp -a && sync` (bench/recovery.ts), 1.18×
 * with the fetch (docs/README-recovery.md).
 */
const READ_AHEAD_FILES = 32;
/**
 * Files planned from which files below 1 MiB go to the small-file lane (`small-files.ts`), a
 * thread of their own: below it, starting the thread (about 40 ms of CPU from `dist/`, 150 ms
 * under tsx) costs about what it saves. See docs/README-recovery.md for the figures.
 */
const LANE_MIN_FILES = 10_000;
/** Symlinks recorded per durability point (their folders fsynced first; bounds the pending records). */
const LINKS_PER_BATCH = 1024;

/**
 * Whether a file's failure is DEST's, so the disk used still counts as holding it: anything but a
 * bad or missing object (BadObject). An error not known to be the object's is taken as DEST's:
 * counted the other way, a file whose only copy is on this disk would be called "cannot be
 * restored".
 */
function destFault(err: unknown): boolean {
  return !(err instanceof BadObject);
}

/** DEST's state folder when DEST exists (plans and dry runs create nothing), else undefined. */
function existingStateDir(destText: string): string | undefined {
  try {
    return path.join(fs.realpathSync(destText), STATE_DIR);
  } catch {
    return undefined;
  }
}

/** Restore (or, with `planOnly`, plan) as described in the module comment. */
export async function runRestore(opts: RestoreOptions): Promise<RestoreDoc> {
  const prefixes = opts.vpaths.map((v) => Buffer.from(normalizeVpath(v), 'utf8'));
  const homeFile = path.join(opts.dataDir, CATALOGUE_FILE);
  const haveHome = fs.existsSync(homeFile);
  if (opts.catalogue === 'home' && !haveHome) {
    throw new UsageError(`${homeFile}: no home catalogue; use --catalogue disk --disk PATH`, { path: homeFile });
  }
  const useHome = opts.catalogue === 'home' || (opts.catalogue === 'auto' && haveHome);
  let home: Catalog | undefined;
  let cat: Catalog | undefined;
  try {
    home = haveHome ? openCatalog(opts.dataDir, { readonly: true }) : undefined;
    // Locate the disk: through the home catalogue's registrations, or by --disk PATH alone.
    let diskRoot: string | undefined;
    let diskUuid: string | undefined;
    if (home !== undefined && (useHome || opts.diskPath === undefined)) {
      try {
        const found = findDisk(home, { diskPath: opts.diskPath });
        diskRoot = found.root;
        diskUuid = found.identity.uuid;
      } catch (err) {
        if (!(opts.planOnly === true && useHome)) throw err;
      }
    } else if (opts.diskPath !== undefined) {
      diskRoot = path.resolve(opts.diskPath);
      diskUuid = readDiskIdentity(diskRoot).uuid;
    } else {
      throw new UsageError('no home catalogue: connect a backup disk and give --disk PATH');
    }
    let catalogueNote: string | undefined;
    let keepRestored = false;
    if (useHome) cat = home;
    else if (diskRoot !== undefined) {
      // The newest catalogue copy this restore has seen, this disk's or one kept in DEST.
      const readOnly = opts.planOnly === true || opts.dryRun === true;
      const stateDir = readOnly ? existingStateDir(opts.dest) : ensureStateDir(opts.dest).stateDir;
      const picked = newestCatalogue(
        openUntrustedCatalogue(path.join(diskRoot, DISK_CATALOGUE)),
        stateDir,
        !readOnly,
        diskUuid,
      );
      cat = picked.cat;
      catalogueNote = picked.note;
      keepRestored = picked.keepRestored === true;
    }
    if (cat === undefined) throw new UsageError('no catalogue to restore from');
    const names = diskNames(cat.db);
    const diskId = diskUuid === undefined ? undefined : diskIdByUuid(cat.db, diskUuid);
    if (diskUuid !== undefined && diskId === undefined) {
      throw new RefusedError(
        `${diskRoot}: this disk is not in the ${useHome ? 'home catalogue' : "disk's catalogue copy"}; try --catalogue disk`,
        { code: 'disk-unknown', ...(diskRoot === undefined ? {} : { path: diskRoot }) },
      );
    }
    for (const p of prefixes) {
      if (!hasEntriesUnder(cat.db, p)) throw new UsageError(`${displayPath(p)}: not in the catalogue`);
    }
    const nameOf = (id: number): string => printable(names.get(id) ?? `disk #${id}`);
    const engine = new RestoreRun(
      keepRestored ? { ...opts, keepRestored } : opts,
      cat,
      prefixes,
      diskRoot,
      diskId,
      nameOf,
    );
    const doc = await engine.run(useHome ? 'home' : 'disk');
    if (catalogueNote !== undefined) warnOnce(doc, catalogueNote);
    if (!useHome && diskRoot !== undefined && catalogueMarkedStale(diskRoot)) {
      warnOnce(
        doc,
        `the catalogue copy on ${diskRoot} is marked stale: a sync evicted objects after writing it and did not finish; what it lists and the disk lacks is counted missing (a sync of the disk writes it again)`,
      );
    }
    return doc;
  } finally {
    if (cat !== undefined && cat !== home) cat.close();
    home?.close();
  }
}

/** One run: the steps of the module comment, in order. */
class RestoreRun {
  private readonly destText: string;
  private state!: RestoreState;
  private sel!: Selection;
  private readonly tree: DestTree;
  private readonly meta: MetaWriter;
  private readonly writer: FileWriter;
  private readonly batch: DurableBatch;
  private readonly pace: Pace;
  /** Catalogue folders checked and in place in this run (vpath as latin1). */
  private readonly readyDirs = new Set<string>();
  /** Folders an earlier run restored, kept as they were (RestoreOptions.keepRestored): their mode and times. */
  private readonly keptDirs = new Map<string, { mode: number; atime: Date; mtime: Date }>();
  private readonly doc: RestoreDoc;
  private readonly existingDirs: Buffer[];
  /** Files copied whose check and placing may still run, oldest first. */
  private readonly inFlight: { t: RestoreTodo; target: Buffer; parent: Buffer; placed: Promise<unknown> }[] = [];
  private inFlightBytes = 0;
  /** The error of a failed early write-back: the batch cannot be made durable (see commitBatch). */
  private writeBackFailed: unknown;
  /** The virtual path of the file whose write-back failed (named in the error line). */
  private writeBackFailedAt: string | undefined;
  /** What is missing, counted while collecting (`survey.ts`); the files that fail are added at the end. */
  private survey: Survey | undefined;
  /** Files of the todo that failed (they stay missing). */
  /** Files this run failed to restore, and whether the disk's copy was at fault (not DEST: destFault). */
  private readonly failedFiles: { vpath: Buffer; diskFault: boolean }[] = [];
  /** The small-file lane, while the files are restored (`restoreFiles`). */
  private lane: SmallFileLane<LaneEntry> | undefined;

  constructor(
    private readonly opts: RestoreOptions,
    private readonly cat: Catalog,
    private readonly prefixes: Buffer[],
    private readonly diskRoot: string | undefined,
    private readonly diskId: number | undefined,
    private readonly nameOf: (id: number) => string,
  ) {
    this.destText = path.resolve(opts.dest);
    this.tree = new DestTree(Buffer.from(this.destText));
    this.existingDirs = (opts.existing ?? []).map((d) => Buffer.from(path.resolve(d)));
    this.doc = emptyDoc(diskId === undefined ? null : nameOf(diskId), this.destText, opts.dryRun === true);
    this.doc.profile = opts.profile ?? null;
    this.meta = new MetaWriter(this.tree, (text) => warnOnce(this.doc, text));
    this.writer = new FileWriter(this.tree, this.meta, opts.kernelCopyMaxBytes, opts.signal);
    this.batch = new DurableBatch(this.tree);
    this.pace = new Pace(opts.signal);
  }

  async run(catalogue: 'home' | 'disk'): Promise<RestoreDoc> {
    this.doc.catalogue = catalogue;
    for (const d of this.existingDirs) {
      let st: fs.Stats;
      try {
        st = fs.statSync(d);
      } catch (err) {
        throw new UsageError(`${d.toString()}: --existing folder: ${describeError(err)}`, { path: d.toString() });
      }
      if (!st.isDirectory()) throw new UsageError(`${d.toString()}: --existing needs a folder`, { path: d.toString() });
    }
    try {
      if (this.opts.planOnly === true || this.opts.dryRun === true) {
        // Read-only: what an earlier restore into DEST already holds is not planned again.
        this.openState(path.join(this.realDestOrGiven(), STATE_DIR), true);
        try {
          if (this.opts.dryRun === true) {
            await dryRun({
              db: this.cat.db,
              prefixes: this.prefixes,
              destText: this.destText,
              tree: this.tree,
              sel: this.sel,
              state: this.state,
              doc: this.doc,
              diskId: this.diskId,
              opts: this.opts,
              pace: this.pace,
            });
          }
          survey(this.cat.db, this.prefixes, this.sel, this.doc, this.nameOf, undefined);
        } finally {
          this.state.close();
        }
        return this.doc;
      }
      const destReal = this.prepareDest();
      const lock = this.lockDest(destReal);
      try {
        this.openState(path.join(destReal, STATE_DIR), false);
        try {
          if (this.diskRoot !== undefined) this.writer.disk = DiskRoot.open(this.diskRoot);
          if (this.opts.link === true) this.checkLinkable();
          await this.collect();
          await this.restoreDirs();
          await this.restoreFiles();
          await this.commitBatch();
          if (this.pace.aborted()) {
            this.doc.interrupted = true;
            return this.doc;
          }
          this.tree.forgetChecked(); // symlinks may now exist: never trust a cached folder again
          await this.restoreSymlinks();
          await this.commitBatch();
          if (this.pace.aborted()) {
            this.doc.interrupted = true;
            return this.doc;
          }
          this.finishDirs();
          const s = this.survey as Survey;
          // A file that failed for a reason of DEST (full, refused, in the way) is still on this
          // disk: the guidance names it again rather than another disk, or none.
          for (const f of this.failedFiles) s.again(this.cat.db, f.vpath, !f.diskFault);
          s.finish(this.doc, this.nameOf);
        } catch (err) {
          // Stopped by an error: what waits to be recorded was never made durable.
          this.state.discardPending();
          throw err;
        } finally {
          this.state.close();
        }
      } finally {
        lock.release();
      }
      return this.doc;
    } finally {
      this.writer.close();
      this.tree.close();
    }
  }

  private openState(stateDir: string, readonly: boolean): void {
    this.state = RestoreState.open(stateDir, { readonly });
    this.sel = new Selection(
      this.state,
      this.opts.filters ?? [],
      this.existingDirs,
      this.tree,
      (p) => this.writer.hashFile(p),
      this.opts.keepRestored === true,
    );
  }

  /** DEST resolved when it exists (plans and dry runs never create it). */
  private realDestOrGiven(): string {
    try {
      const real = fs.realpathSync(this.destText);
      this.tree.dest = Buffer.from(real);
      return real;
    } catch {
      return this.destText;
    }
  }

  /** Create DEST (0700) if needed and resolve it; the state folder inside it too. */
  private prepareDest(): string {
    const { real, st } = ensureStateDir(this.destText);
    // Every target is built under the resolved DEST: a symlink given as DEST is the user's choice.
    this.tree.dest = Buffer.from(real);
    this.tree.reserve(st);
    return real;
  }

  private lockDest(real: string): Lock {
    return acquireLock(path.join(real, STATE_DIR, 'lock'), `the restore into ${real}`);
  }

  /** `--link` needs DEST on the filesystem of the disk's objects: hard links cannot cross. */
  private checkLinkable(): void {
    const disk = this.writer.disk;
    if (disk === undefined) return;
    const dest = this.tree.dest;
    const objects = path.join(disk.root, OBJECTS_DIR);
    const a = fs.statSync(dest, { bigint: true }).dev;
    let b: bigint;
    try {
      b = fs.statSync(objects, { bigint: true }).dev;
    } catch (err) {
      throw new DistbackupError(`${objects}: ${describeError(err)}`, { path: objects, cause: err });
    }
    if (a !== b) {
      throw new RefusedError(
        `${dest.toString()}: --link needs the restore folder on the disk's filesystem (${disk.root}); hard links cannot cross filesystems`,
        { code: 'cross-device', path: dest.toString() },
      );
    }
  }

  /**
   * Whether the connected disk holds the object of `t` although the catalogue lists it on no
   * disk: a catalogue copy written before a sync that copied it died, or lagging behind it. Its
   * hash is checked when it is restored, as any object's. Asked only of files the catalogue
   * lists nowhere (they would be "cannot be restored"): an lstat each.
   */
  private unlistedHere(t: RestoreTodo): boolean {
    const disk = this.writer.disk;
    if (disk === undefined || t.hash === EMPTY_HASH) return false;
    try {
      disk.prefixDir(t.hash, false);
      const st = fs.lstatSync(disk.objectPath(t.hash));
      return st.isFile() && st.size === t.sizeBytes;
    } catch {
      return false;
    }
  }

  /**
   * The one pass over the catalogue: what this run restores goes into the state's scratch table,
   * and everything else is counted by the survey now (files it restores only if they fail).
   */
  private async collect(): Promise<void> {
    this.state.clearTodo();
    const s = new Survey(this.sel, this.diskId);
    this.survey = s;
    let batch: RestoreTodo[] = [];
    for (const row of iterateFilesUnder(this.cat.db, this.prefixes)) {
      await this.pace.breathe();
      if (this.pace.aborted()) return;
      const c = checkRow(row);
      if (!c.ok) {
        s.row(row, c); // refused: listed at the end
        continue;
      }
      const t = c.todo;
      if (!this.sel.selected(t)) continue;
      if (t.kind === FileKind.file) {
        const here =
          this.diskId !== undefined &&
          (c.diskIds.includes(this.diskId) || (c.diskIds.length === 0 && this.unlistedHere(t)));
        if (this.sel.done(t) || (!here && t.hash !== EMPTY_HASH)) {
          s.row(row, c);
          continue;
        }
      } else if (t.kind === FileKind.symlink) {
        if (this.sel.done(t)) continue;
      }
      batch.push(t);
      if (batch.length >= 10_000) {
        this.state.addTodo(batch);
        batch = [];
      }
    }
    this.state.addTodo(batch);
    const totals = this.state.todoTotals(FileKind.file);
    this.doc.planned = { files: totals.count, bytes: totals.bytes };
    this.opts.progress?.setTotals(totals.bytes, totals.count);
  }

  // ---- folders ---------------------------------------------------------------------------

  private async restoreDirs(): Promise<void> {
    for (const t of this.state.iterateTodo(FileKind.dir, false)) {
      await this.pace.breathe();
      if (this.pace.aborted()) return;
      const split = splitVpath(t.vpath);
      if (!split.ok) continue;
      try {
        const target = this.tree.ensureDirs(split.parts, split.parts.length);
        this.tree.described(target);
        if (!insideDest(this.tree.dest, target)) throw new PathRefused('outside the restore folder');
        // A folder an earlier run restored keeps its mode and times (RestoreOptions.keepRestored):
        // taken before it is opened up, put back by finishDirs.
        if (this.opts.keepRestored === true && this.state.entry(t.vpath)?.kind === FileKind.dir) {
          this.tree.withDir(target, (fd) => {
            const st = fs.fstatSync(fd);
            this.keptDirs.set(t.vpath.toString('latin1'), { mode: st.mode & 0o7777, atime: st.atime, mtime: st.mtime });
          });
        }
        // A folder restored by an earlier run may be read-only by now: open it up while we work.
        if (this.meta.isRoot === false) this.tree.withDir(target, (fd) => fs.fchmodSync(fd, 0o700));
        this.readyDirs.add(t.vpath.toString('latin1'));
        this.state.markRestored(t.vpath, '', FileKind.dir);
        this.doc.dirs += 1;
      } catch (err) {
        this.fail(t.vpath, err);
      }
    }
  }

  /** Folder modes, owners and mtimes, deepest first (writing inside a folder changes its mtime). */
  private finishDirs(): void {
    this.tree.openImplicitDirs();
    const dirs: RestoreTodo[] = [];
    for (const t of this.state.iterateTodo(FileKind.dir, false)) dirs.push(t);
    for (let i = dirs.length - 1; i >= 0; i--) {
      const t = dirs[i] as RestoreTodo;
      // Only folders whose every ancestor was checked in this run: a refused one may sit
      // behind a symlink, and O_NOFOLLOW guards the last component only.
      if (!this.readyDirs.has(t.vpath.toString('latin1'))) continue;
      const split = splitVpath(t.vpath);
      if (!split.ok) continue;
      const target = joinTarget(this.tree.dest, split.parts);
      const kept = this.keptDirs.get(t.vpath.toString('latin1'));
      try {
        this.tree.withDir(target, (fd) => {
          if (kept === undefined) {
            this.meta.apply(fd, t);
            return;
          }
          fs.fchmodSync(fd, kept.mode);
          fs.futimesSync(fd, kept.atime, kept.mtime);
        });
      } catch (err) {
        addProblem(this.doc.errors, displayPath(t.vpath), `cannot set mode or time: ${describeError(err)}`);
      }
    }
  }

  // ---- files -----------------------------------------------------------------------------

  private async restoreFiles(): Promise<void> {
    const rows = this.state.iterateTodo(FileKind.file, true);
    // Started last before the loop, whose `finally` ends it (a thread left running would keep
    // the process alive). --link reads each object itself (it links the object, not a copy).
    if (this.opts.link !== true && this.doc.planned.files >= (this.opts.smallFileLaneMinFiles ?? LANE_MIN_FILES)) {
      try {
        // Only where every no-replace placement is one link(2) and names are case-sensitive
        // (SmallFileLane): on FAT, exFAT, NTFS or FUSE an lstat and a rename place a file, and
        // two writers could both find a name free that the folder takes for one.
        if (caseSensitiveWithLinks(this.opts.dest)) {
          // The device is looked at only now: most restores never start the lane.
          const disk = this.diskRoot;
          this.doc.profile ??= disk !== undefined && isRotational(disk) === false ? 'ssd' : 'hdd';
          this.lane = new SmallFileLane(
            (e, task, r) => this.laneResult(e, task, r),
            this.doc.profile === 'ssd' ? 2 : 1,
          );
        }
      } catch {
        // No thread: every file is written on this thread.
      }
    }
    const ahead: { t: RestoreTodo; fetched: Promise<Fetched> | undefined }[] = [];
    // --link reads each object itself (it links the object, not a copy); the lane reads its own.
    const fetch = this.opts.link !== true && this.lane === undefined;
    let end = false;
    const next = (): { t: RestoreTodo; fetched: Promise<Fetched> | undefined } | undefined => {
      while (!end && ahead.length <= (fetch ? READ_AHEAD_FILES : 0)) {
        const r = rows.next();
        if (r.done === true) end = true;
        else ahead.push({ t: r.value, fetched: fetch ? this.writer.fetch(r.value) : undefined });
      }
      return ahead.shift();
    };
    let broken = false;
    try {
      for (let a = next(); a !== undefined; a = next()) {
        const t = a.t;
        await this.pace.breathe();
        if (this.pace.aborted()) return;
        try {
          await this.restoreFile(t, a.fetched);
        } catch (err) {
          if (err instanceof Interrupted) return;
          if (err instanceof WriteBackError) {
            this.noteWriteBackFailed(t, err);
            return;
          }
          this.failedFiles.push({ vpath: t.vpath, diskFault: !destFault(err) });
          this.fail(t.vpath, err);
        }
        // Two files at least, whatever their size: the one being checked and the next one copied.
        while (
          this.inFlight.length > IN_FLIGHT_FILES ||
          (this.inFlightBytes > IN_FLIGHT_BYTES && this.inFlight.length > 1)
        )
          await this.settleOne();
        if (this.writeBackFailed !== undefined) return;
        this.opts.progress?.update(this.doc.bytesRestored, this.doc.restored);
        if (this.batch.full) await this.commitBatch();
      }
    } catch (err) {
      broken = true;
      throw err;
    } finally {
      rows.return(undefined);
      try {
        // Every file written on the lane has its result, then every file copied here is checked
        // and placed (or removed), before the batch is made durable. After an error the lane's
        // results are dropped: nothing of the batch is recorded (the run discards it).
        // The main thread's files are settled even when the lane failed: none of their
        // place() calls may go on in DEST after the run has ended.
        try {
          if (!broken) await this.lane?.drain();
        } finally {
          while (this.inFlight.length > 0) await this.settleOne();
        }
      } finally {
        this.writer.close();
        await this.lane?.close();
        this.lane = undefined;
      }
    }
  }

  /** A result of the lane: the file counted (recorded at the next durability point) or its problem listed. */
  private laneResult(e: LaneEntry, task: SmallFileTask, r: SmallFileResult): void {
    try {
      if (r.placed === undefined) throw this.writer.laneError(task, r);
      this.meta.report(r.placed);
      this.meta.checkTimeKept(e.target, e.t);
      this.written(e.t, e.target, e.parent);
    } catch (err) {
      this.failedFiles.push({ vpath: e.t.vpath, diskFault: !destFault(err) });
      this.fail(e.t.vpath, err);
    }
  }

  /**
   * Settle every file in flight, then make the batch durable and record it; after a failed early
   * write-back, abandon the batch instead (nothing recorded, its files removed, the run stops).
   */
  private async commitBatch(): Promise<void> {
    await this.lane?.drain();
    while (this.inFlight.length > 0) await this.settleOne();
    if (this.writeBackFailed !== undefined) {
      this.batch.abandon(this.state, this.writeBackFailed, this.writeBackFailedAt);
    }
    await this.batch.commit(this.state);
  }

  /** Wait for the oldest file in flight to be checked and placed, and count it (or its failure). */
  private async settleOne(): Promise<void> {
    const f = this.inFlight.shift();
    if (f === undefined) return;
    this.inFlightBytes -= f.t.sizeBytes;
    const err = await f.placed;
    if (err === undefined) this.written(f.t, f.target, f.parent, writtenBackEarly(f.t.sizeBytes));
    else if (err instanceof WriteBackError) this.noteWriteBackFailed(f.t, err);
    else {
      this.failedFiles.push({ vpath: f.t.vpath, diskFault: !destFault(err) });
      this.fail(f.t.vpath, err);
    }
  }

  /** The first failed early write-back of the run, and its file (see commitBatch). */
  private noteWriteBackFailed(t: RestoreTodo, err: WriteBackError): void {
    if (this.writeBackFailed !== undefined) return;
    this.writeBackFailed = err.errnoError;
    this.writeBackFailedAt = displayPath(t.vpath);
  }

  /**
   * A file written (or linked: `target` undefined) and in place: part of the batch, recorded at
   * its durability point.
   */
  private written(t: RestoreTodo, target: Buffer | undefined, parent: Buffer, writtenBack = false): void {
    this.batch.add(target, parent, t.sizeBytes, writtenBack);
    this.state.markRestored(t.vpath, t.hash, FileKind.file);
    this.doc.restored += 1;
    this.doc.bytesRestored += t.sizeBytes;
  }

  private fail(vpath: Buffer, err: unknown): void {
    const shown = displayPath(vpath);
    if (err instanceof PathRefused) addProblem(this.doc.refused, shown, err.message);
    else if (err instanceof ExistsError) addProblem(this.doc.existing, shown, err.message);
    else if (
      err instanceof DistbackupError &&
      (err.code === 'disk-vanished' || err.code === 'cross-device' || err.code === LANE_FAILED)
    )
      throw err;
    else addProblem(this.doc.errors, shown, err instanceof BadObject ? err.message : describeError(err));
  }

  /**
   * Restore the file `t`: on the small-file lane when it takes it, else here (`FileWriter.writeFile`;
   * `fetched`: its object, read ahead by `FileWriter.fetch`).
   */
  private async restoreFile(t: RestoreTodo, fetched: Promise<Fetched> | undefined): Promise<void> {
    const split = splitVpath(t.vpath);
    if (!split.ok) throw new PathRefused(split.reason);
    const parts = split.parts;
    if (this.existingDirs.length > 0 && this.sel.foundElsewhere(parts, t)) {
      this.state.markRestored(t.vpath, t.hash, KIND_FOUND_ELSEWHERE);
      this.doc.foundElsewhere += 1;
      return;
    }
    const name = parts[parts.length - 1] as Buffer;
    const parent = this.tree.ensureDirs(parts, parts.length - 1);
    const target = joinTarget(parent, [name]);
    if (!insideDest(this.tree.dest, target)) throw new PathRefused('outside the restore folder');
    // A folder this run created held nothing but what this run put there: no lstat needed (a
    // case-insensitive twin written earlier in the run still makes link() fail with EEXIST).
    const fresh = this.tree.created(parent);
    const tmp = tmpName(this.tree.dest, parent, name);
    // Before the file is written here or posted to the lane: no file of this run shares its temp name.
    if (!fresh) this.writer.clearStaleTmp(parent, name, tmp);
    const existing = fresh ? undefined : lstatOrUndefined(this.tree.sp(target));
    if (existing !== undefined) {
      if (existing.isDirectory()) throw new ExistsError('a folder is in the way');
      // Looked up only when something is in the way: a fresh restore asks the state nothing here.
      // The file in the way is hashed once, for both questions.
      let hash: string | undefined;
      const hashOf = (): string => {
        hash ??= this.writer.hashFile(this.tree.sp(target));
        return hash;
      };
      const ours = stillOurs(existing, this.state.restoredEntry(t.vpath), hashOf);
      if (ours && this.opts.keepRestored === true) {
        this.doc.alreadyRestored += 1;
        return;
      }
      if (!ours && this.opts.overwrite !== true) {
        if (existing.isFile() && existing.size === t.sizeBytes && hashOf() === t.hash) {
          // Recorded at the next durability point, which makes it durable too (it may be recent).
          this.batch.addFound(target, parent);
          this.state.markRestored(t.vpath, t.hash, FileKind.file);
          this.doc.alreadyRestored += 1;
          return;
        }
        throw new ExistsError('exists; not overwritten (use --overwrite)');
      }
    }
    if (this.opts.link === true && t.hash !== EMPTY_HASH) {
      this.writer.linkObject(t, target, existing !== undefined);
      this.doc.linked += 1;
      this.written(t, undefined, parent);
      return;
    }
    const replace = existing !== undefined;
    // A folder on another filesystem than DEST's (a mount below it) is written here, one file at
    // a time: the lane's threads run only where DEST's filesystem allows them (restoreFiles).
    const task =
      this.lane === undefined || this.tree.foreign(parent) ? undefined : this.writer.laneTask(t, tmp, target, replace);
    if (task !== undefined) {
      await this.lane?.add({ t, target, parent }, task);
      return;
    }
    const { placed } = await this.writer.writeFile(t, tmp, target, replace, fetched);
    this.inFlight.push({ t, target, parent, placed });
    this.inFlightBytes += t.sizeBytes;
  }

  // ---- symlinks --------------------------------------------------------------------------

  /**
   * Links are recorded as restored only once their folder entries are durable: they go through
   * the batch (their folders fsynced, or one syncfs) every LINKS_PER_BATCH links and at the end.
   */
  private async restoreSymlinks(): Promise<void> {
    let links = 0;
    for (const t of this.state.iterateTodo(FileKind.symlink, false)) {
      if (links >= LINKS_PER_BATCH) {
        links = 0;
        await this.commitBatch();
      }
      await this.pace.breathe();
      if (this.pace.aborted()) return;
      try {
        const split = splitVpath(t.vpath);
        if (!split.ok) throw new PathRefused(split.reason);
        const parts = split.parts;
        const parent = this.tree.ensureDirs(parts, parts.length - 1);
        const target = joinTarget(parent, [parts[parts.length - 1] as Buffer]);
        if (!insideDest(this.tree.dest, target)) throw new PathRefused('outside the restore folder');
        const sp = (p: Buffer): Buffer => this.tree.sp(p);
        const existing = lstatOrUndefined(sp(target));
        if (existing !== undefined) {
          const ours = stillOurs(existing, this.state.restoredEntry(t.vpath), () => this.writer.hashFile(sp(target)));
          if (existing.isDirectory()) throw new ExistsError('a folder is in the way');
          if (ours && this.opts.keepRestored === true) {
            this.doc.alreadyRestored += 1;
            continue;
          }
          if (!ours && this.opts.overwrite !== true) {
            if (
              existing.isSymbolicLink() &&
              fs.readlinkSync(sp(target), { encoding: 'buffer' }).equals(t.linkTarget ?? Buffer.alloc(0))
            ) {
              this.state.markRestored(t.vpath, linkHash(t.linkTarget), FileKind.symlink);
              this.batch.add(undefined, parent, 0);
              links += 1;
              this.doc.alreadyRestored += 1;
              continue;
            }
            throw new ExistsError('exists; not overwritten (use --overwrite)');
          }
          fs.unlinkSync(sp(target));
        }
        // The target is data: stored verbatim, never resolved or followed.
        fs.symlinkSync(t.linkTarget as Buffer, sp(target));
        if (this.meta.isRoot) {
          try {
            fs.lchownSync(sp(target), t.uid, t.gid);
          } catch {
            // no owners on this filesystem
          }
        }
        const s = secondsOf(t.mtimeNs);
        try {
          fs.lutimesSync(sp(target), s, s);
        } catch {
          // some filesystems cannot time a link
        }
        this.state.markRestored(t.vpath, linkHash(t.linkTarget), FileKind.symlink);
        this.batch.add(undefined, parent, 0);
        links += 1;
        this.doc.symlinks += 1;
      } catch (err) {
        this.fail(t.vpath, err);
      }
    }
  }
}

/** A file on the small-file lane: what its result needs. */
interface LaneEntry {
  readonly t: RestoreTodo;
  readonly target: Buffer;
  readonly parent: Buffer;
}
