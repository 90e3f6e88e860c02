/**
 * The restore use-case (SPEC §6, RELIABILITY.md §4): rebuild files of the catalogue in use from
 * the objects of one connected disk, into DEST, and say which disk to connect next.
 *
 * Order of work: folders (created 0700), regular files in object order (one sequential stream
 * on a hard disk; each written 0600 under a temp name, hashed, refused on a mismatch, then
 * given its mode, owner and mtime and linked into place without ever replacing what is there),
 * symlinks last (targets verbatim, never followed), then folder modes and mtimes, deepest
 * first. Every target is built from checked components; every existing ancestor is lstat'ed
 * and a symlink or non-folder refuses the path. Paths longer than PATH_MAX are reached through
 * a folder descriptor (`pipeline/deep-path.ts`). The restore state (`catalog/restore-state.ts`)
 * records what was written, after it is durable, so the next disk adds only what is still
 * missing. An abort signal (Ctrl-C) stops between two files, or between two chunks of a big one:
 * what is written is made durable and recorded, and the next run goes on from there.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import picomatch from 'picomatch';
import { CATALOGUE_FILE, type Catalog, openCatalog, openUntrustedCatalogue } from '../catalog/db.js';
import { acquireLock, type Lock } from '../catalog/lock.js';
import { diskIdByUuid, diskNames, type FileReportRow, hasEntriesUnder, iterateFilesUnder } from '../catalog/reports.js';
import { KIND_FOUND_ELSEWHERE, RestoreState, type RestoreTodo } from '../catalog/restore-state.js';
import { FileKind } from '../catalog/schema.js';
import { writeFully } from '../core/durable.js';
import { DistbackupError, describeError, errnoCode, RefusedError, UsageError } from '../core/errors.js';
import { displayPath, normalizeVpath, printable } from '../core/vpath.js';
import { readDiskIdentity } from '../disk/disk-json.js';
import { DiskRoot } from '../disk/disk-root.js';
import { DISK_CATALOGUE, HASH_RE, OBJECTS_DIR } from '../disk/layout.js';
import { findDisk } from '../disks/open.js';
import { readAsync, writeFullyAsync } from '../pipeline/copy-io.js';
import { DIRECT_MAX, type DirReach, reachDir } from '../pipeline/deep-path.js';
import type { Progress } from '../ui/progress.js';
import { MissingTally, type PlanStep, planDisks } from './guide.js';
import { insideDest, joinTarget, STATE_DIR, splitVpath } from './paths.js';

/** SHA-256 of no bytes: an empty file needs no object. */
export const EMPTY_HASH = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** Read size of the reused buffer for small files: 1 MiB (NODE20.md: readSync into one reused 1 MiB buffer). */
const CHUNK_BYTES = 1024 * 1024;
/**
 * Files from this size up are copied in the kernel (`copyFile`: copy_file_range, else sendfile)
 * and then hashed from the page cache, instead of read, hashed and written through a buffer.
 * Measured on 1 GiB of 64 MiB objects (bench/recovery.ts, cold cache, load 8–11 on 2 cores):
 * the buffer loop spent 4.3 s of system time and 11.5 s of wall time, the kernel copy plus
 * read-back 1.3 s and 6.0 s (cp -a: 0.55 s and 1.6 s). Below 1 MiB one read and one write are
 * cheaper than a copyFile's extra open, fstat and fchmod.
 */
const KERNEL_COPY_MIN = 1024 * 1024;
/**
 * Up to this size the kernel copy runs in one call. Bigger files go through a pipelined loop of
 * 4 MiB chunks (the read of the next chunk overlaps the hash and write of this one), so Ctrl-C
 * stops within a chunk rather than after a whole file of many gigabytes.
 */
const KERNEL_COPY_MAX = 256 * 1024 * 1024;
const BIG_CHUNK_BYTES = 4 * 1024 * 1024;
/** Yield to the event loop (where SIGINT is delivered) at least this often, in ms. */
const YIELD_MS = 50;
/**
 * Files written between two durability points: the batch is made durable at once (syncfs of
 * DEST's filesystem, else an fsync per file and folder), then the state records it. An fsync
 * per file made 5,000 small files take 22 s against 0.9 s for `cp -a && sync`; one syncfs per
 * batch costs one journal commit. 10,000 files or 1 GiB bounds the work redone after a power cut.
 */
const BATCH_FILES = 10_000;
const BATCH_BYTES = 1024 ** 3;
/** Up to this many files (and bytes), a batch is fsynced file by file rather than by syncfs. */
const SMALL_BATCH_FILES = 64;
const SMALL_BATCH_BYTES = 64 * 1024 * 1024;
/** Errors of a filesystem that cannot keep a mode or a time at all (fusefat: ENOSYS). */
const UNSUPPORTED = new Set(['ENOSYS', 'ENOTSUP', 'EOPNOTSUPP']);
const MODES_LOST = 'modes are not preserved on this filesystem (FAT or exFAT?)';
/** At most this many entries per list in the result document (counts stay exact). */
const LIST_CAP = 1000;

export interface RestoreOptions {
  /** Restore folder (created 0700 when missing). */
  dest: string;
  /** Virtual paths to restore (subtrees); empty = everything. */
  vpaths: readonly string[];
  /** `--disk PATH`. */
  diskPath?: string | undefined;
  /** Home data folder. */
  dataDir: string;
  /** `home`, `disk`, or `auto` (home when it exists, else the disk's copy). */
  catalogue: 'home' | 'disk' | 'auto';
  overwrite?: boolean | undefined;
  /** Only print the disk order; restore nothing. */
  planOnly?: boolean | undefined;
  /** Globs on virtual paths (picomatch); a match of a folder takes its whole subtree. Empty = all. */
  filters?: readonly string[] | undefined;
  /** Folders that may already hold files (same relative path, size and content): those are skipped. */
  existing?: readonly string[] | undefined;
  /** Hard-link each file to the disk's object instead of copying it (DEST must be on the disk's filesystem). */
  link?: boolean | undefined;
  /** Say what would be restored (through `onDryRun`), write nothing. */
  dryRun?: boolean | undefined;
  /** Receives every entry a dry run would restore, in path order. */
  onDryRun?: ((entry: DryRunEntry) => void) | undefined;
  /** Biggest file copied in one kernel call (default 256 MiB; bigger ones go in 4 MiB chunks). */
  kernelCopyMaxBytes?: number | undefined;
  /** Stop soon after this aborts (Ctrl-C): what is written is made durable and recorded. */
  signal?: AbortSignal | undefined;
  progress?: Progress | undefined;
}

/** One entry of a dry run. */
export interface DryRunEntry {
  path: string;
  kind: 'file' | 'symlink' | 'folder';
  sizeBytes: number;
  /** What the run would do with it. */
  action: 'restore' | 'link' | 'overwrite' | 'exists' | 'found-elsewhere';
}

/** One disk of the plan, by name. */
export interface PlanDoc {
  disk: string;
  files: number;
  bytes: number;
}

/** One path that was not restored, and why. */
export interface PathProblem {
  path: string;
  error: string;
}

/** The `restore --json` document (SPEC §3a), with additions. */
export interface RestoreDoc {
  restored: number;
  bytesRestored: number;
  remaining: number;
  remainingBytes: number;
  next: PlanDoc | null;
  /** The disk used in this run (null with --plan and no disk). */
  disk: string | null;
  catalogue: 'home' | 'disk';
  dest: string;
  /** Files already in DEST from an earlier run (or identical files found there). */
  alreadyRestored: number;
  /** Of `restored`, files hard-linked to the disk's objects (`--link`). */
  linked: number;
  /** Files not written because an `--existing` folder holds the same content at the same path. */
  foundElsewhere: number;
  dirs: number;
  symlinks: number;
  /** Files that no disk in the catalogue holds (or none but this one, where they failed). */
  unavailable: number;
  unavailableBytes: number;
  /** Unsafe catalogue paths, refused (a disk is untrusted input). */
  refused: PathProblem[];
  /** Paths that exist in DEST and were not overwritten. */
  existing: PathProblem[];
  /** Per-file failures (bad object, I/O error). */
  errors: PathProblem[];
  /** The whole disk order for what is missing. */
  plan: PlanDoc[];
  warnings: string[];
  /** True when the run was stopped (Ctrl-C) before the end; `remaining` is then not counted. */
  interrupted: boolean;
  /** Files and bytes this run set out to restore from this disk. */
  planned: { files: number; bytes: number };
  /** True for a dry run: nothing was written; `wouldRestore` says what would have been. */
  dryRun: boolean;
  wouldRestore: { files: number; bytes: number; symlinks: number; dirs: number };
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
    if (useHome) cat = home;
    else if (diskRoot !== undefined) cat = openUntrustedCatalogue(path.join(diskRoot, DISK_CATALOGUE));
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
    const engine = new RestoreRun(opts, cat, prefixes, diskRoot, diskId, nameOf);
    return await engine.run(useHome ? 'home' : 'disk');
  } finally {
    if (cat !== undefined && cat !== home) cat.close();
    home?.close();
  }
}

/** A row of the catalogue, checked: a restorable entry, or the reason it is refused. */
type Checked =
  | { ok: true; todo: RestoreTodo; parts: Buffer[]; diskIds: number[]; priority: number }
  | { ok: false; path: string; reason: string };

const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

function asBig(v: unknown): bigint | undefined {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  return undefined;
}

/** Check every value of an untrusted catalogue row before it is used. */
export function checkRow(r: FileReportRow): Checked {
  const vpath = Buffer.isBuffer(r.vpath) ? r.vpath : typeof r.vpath === 'string' ? Buffer.from(r.vpath) : undefined;
  if (vpath === undefined) return { ok: false, path: String(r.vpath), reason: 'path is not text or bytes' };
  const shown = displayPath(vpath);
  const bad = (reason: string): Checked => ({ ok: false, path: shown, reason });
  const split = splitVpath(vpath);
  if (!split.ok) return bad(split.reason);
  const kind = asBig(r.kind);
  if (kind !== 0n && kind !== 1n && kind !== 2n) return bad(`unknown kind ${String(r.kind)}`);
  const size = asBig(r.size) ?? -1n;
  if (size < 0n || size > SAFE_MAX) return bad(`invalid size ${String(r.size)}`);
  const mtimeNs = asBig(r.mtimeNs) ?? 0n;
  const mode = Number((asBig(r.mode) ?? 0n) & 0o7777n);
  const uid = asBig(r.uid) ?? 0n;
  const gid = asBig(r.gid) ?? 0n;
  if (uid < 0n || uid > 0xffffffffn || gid < 0n || gid > 0xffffffffn) return bad('invalid owner');
  let hash = '';
  let linkTarget: Buffer | null = null;
  if (kind === 0n) {
    if (r.hash === null || r.hash === undefined) {
      if (size !== 0n) return bad('never hashed: not backed up');
      hash = EMPTY_HASH;
    } else if (typeof r.hash !== 'string' || !HASH_RE.test(r.hash)) {
      return bad('invalid object hash');
    } else hash = r.hash;
  } else if (kind === 2n) {
    const t = r.linkTarget;
    linkTarget = Buffer.isBuffer(t) ? t : typeof t === 'string' ? Buffer.from(t) : null;
    if (linkTarget === null || linkTarget.length === 0 || linkTarget.includes(0)) return bad('invalid symlink target');
  }
  const diskIds: number[] = [];
  if (typeof r.diskIds === 'string') {
    for (const s of r.diskIds.split(',')) {
      const n = Number(s);
      if (Number.isSafeInteger(n)) diskIds.push(n);
    }
  }
  return {
    ok: true,
    todo: {
      vpath,
      kind: Number(kind),
      sizeBytes: Number(size),
      mtimeNs,
      mode,
      uid: Number(uid),
      gid: Number(gid),
      linkTarget,
      hash,
    },
    parts: split.parts,
    diskIds,
    priority: Number(asBig(r.priority) ?? 1n),
  };
}

/**
 * The `--filter` test: true when one of `patterns` matches the virtual path or one of its
 * folders (a matching folder brings its whole subtree). A pattern without `/` matches a name at
 * any depth (`*.jpg`), one with `/` the whole path (`/photos/2024-0[1-6]`). Names are decoded
 * as UTF-8 for matching only.
 */
export function vpathFilter(patterns: readonly string[]): ((vpath: Buffer) => boolean) | undefined {
  if (patterns.length === 0) return undefined;
  const opts = { dot: true };
  const base = patterns.filter((p) => !p.includes('/'));
  const full = patterns.filter((p) => p.includes('/')).map((p) => (p.startsWith('/') ? p : `/${p}`));
  const mBase = base.length > 0 ? picomatch(base, opts) : undefined;
  const mFull = full.length > 0 ? picomatch(full, opts) : undefined;
  return (vpath) => {
    const text = vpath.toString('utf8');
    // Every folder on the way, then the path itself: "/a", "/a/b", "/a/b/c".
    let at = 0;
    for (;;) {
      const slash = text.indexOf('/', at + 1);
      const end = slash < 0 ? text.length : slash;
      if (mFull?.(text.slice(0, end)) === true) return true;
      if (mBase?.(text.slice(at + 1, end)) === true) return true;
      if (slash < 0) return false;
      at = slash;
    }
  };
}

/** A path refused or failed during the work; thrown to skip one entry. */
class PathRefused extends Error {}
/** Thrown out of a copy when the abort signal fired. */
class Interrupted extends Error {}

class RestoreRun {
  private dest: Buffer;
  private readonly destText: string;
  private state!: RestoreState;
  private disk: DiskRoot | undefined;
  private readonly isRoot = process.getuid?.() === 0;
  private readonly knownDirs = new Set<string>();
  /** Catalogue folders checked and in place in this run (vpath as latin1). */
  private readonly readyDirs = new Set<string>();
  /** Folders this run created (latin1 keys): nothing else can be in them. */
  private readonly createdDirs = new Set<string>();
  /** Folders this run created that no catalogue entry describes (given 0755 at the end). */
  private readonly implicitDirs = new Map<string, Buffer>();
  private readonly buf = Buffer.allocUnsafe(CHUNK_BYTES);
  private bigBufs: Buffer[] | undefined;
  private batchFiles: Buffer[] = [];
  private syncfsWorks: boolean | undefined;
  private batchDirs = new Map<string, Buffer>();
  private batchBytes = 0;
  private modesChecked = false;
  /** Whether times must be set again after a file is closed (undefined: not known yet). */
  private timesAfterClose: boolean | undefined;
  private readonly doc: RestoreDoc;
  private readonly wanted: ((vpath: Buffer) => boolean) | undefined;
  private readonly existingDirs: Buffer[];
  /** The folder reached last through a descriptor (paths longer than PATH_MAX), kept open. */
  private reachCache: { key: string; reach: DirReach } | undefined;
  private lastYield = performance.now();

  constructor(
    private readonly opts: RestoreOptions,
    private readonly cat: Catalog,
    private readonly prefixes: Buffer[],
    private readonly diskRoot: string | undefined,
    private readonly diskId: number | undefined,
    private readonly nameOf: (id: number) => string,
  ) {
    this.destText = path.resolve(opts.dest);
    this.dest = Buffer.from(this.destText);
    this.wanted = vpathFilter(opts.filters ?? []);
    this.existingDirs = (opts.existing ?? []).map((d) => Buffer.from(path.resolve(d)));
    this.doc = {
      restored: 0,
      bytesRestored: 0,
      remaining: 0,
      remainingBytes: 0,
      next: null,
      disk: diskId === undefined ? null : nameOf(diskId),
      catalogue: 'home',
      dest: this.destText,
      alreadyRestored: 0,
      linked: 0,
      foundElsewhere: 0,
      dirs: 0,
      symlinks: 0,
      unavailable: 0,
      unavailableBytes: 0,
      refused: [],
      existing: [],
      errors: [],
      plan: [],
      warnings: [],
      interrupted: false,
      planned: { files: 0, bytes: 0 },
      dryRun: opts.dryRun === true,
      wouldRestore: { files: 0, bytes: 0, symlinks: 0, dirs: 0 },
    };
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
        this.state = RestoreState.open(path.join(this.realDestOrGiven(), STATE_DIR), { readonly: true });
        try {
          if (this.opts.dryRun === true) await this.dryRun();
          this.survey(undefined);
        } finally {
          this.state.close();
        }
        return this.doc;
      }
      const destReal = this.prepareDest();
      const lock = this.lockDest(destReal);
      try {
        this.state = RestoreState.open(path.join(destReal, STATE_DIR));
        try {
          if (this.diskRoot !== undefined) this.disk = DiskRoot.open(this.diskRoot);
          if (this.opts.link === true) this.checkLinkable();
          await this.collect();
          await this.restoreDirs();
          await this.restoreFiles();
          this.commitBatch();
          if (this.aborted()) {
            this.doc.interrupted = true;
            return this.doc;
          }
          this.knownDirs.clear(); // symlinks may now exist: never trust a cached folder again
          await this.restoreSymlinks();
          this.state.commit();
          if (this.aborted()) {
            this.doc.interrupted = true;
            return this.doc;
          }
          this.finishDirs();
          this.survey(this.diskId);
        } finally {
          this.state.close();
        }
      } finally {
        lock.release();
      }
      return this.doc;
    } finally {
      this.reachCache?.reach.close();
      this.reachCache = undefined;
    }
  }

  private aborted(): boolean {
    return this.opts.signal?.aborted === true;
  }

  /** Let the event loop run (SIGINT is delivered there) when the last chance is YIELD_MS old. */
  private async breathe(): Promise<void> {
    const now = performance.now();
    if (now - this.lastYield < YIELD_MS) return;
    await new Promise((resolve) => setImmediate(resolve));
    this.lastYield = performance.now();
  }

  /** DEST resolved when it exists (plans and dry runs never create it). */
  private realDestOrGiven(): string {
    try {
      const real = fs.realpathSync(this.destText);
      this.dest = Buffer.from(real);
      return real;
    } catch {
      return this.destText;
    }
  }

  /** Create DEST (0700) if needed and resolve it; the state folder inside it too. */
  private prepareDest(): string {
    try {
      fs.mkdirSync(this.destText, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new DistbackupError(`${this.destText}: cannot create the restore folder: ${describeError(err)}`, {
        path: this.destText,
        cause: err,
      });
    }
    const real = fs.realpathSync(this.destText);
    if (!fs.statSync(real).isDirectory()) throw new UsageError(`${this.destText}: not a folder`);
    // Every target is built under the resolved DEST: a symlink given as DEST is the user's choice.
    this.dest = Buffer.from(real);
    const stateDir = path.join(real, STATE_DIR);
    try {
      fs.mkdirSync(stateDir, { mode: 0o700 });
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
    const st = fs.lstatSync(stateDir);
    if (!st.isDirectory() || st.isSymbolicLink()) {
      throw new RefusedError(`${stateDir}: is not a folder; refusing to restore here`, { path: stateDir });
    }
    return real;
  }

  private lockDest(real: string): Lock {
    return acquireLock(path.join(real, STATE_DIR, 'lock'), `the restore into ${real}`);
  }

  /** `--link` needs DEST on the filesystem of the disk's objects: hard links cannot cross. */
  private checkLinkable(): void {
    if (this.disk === undefined) return;
    const objects = path.join(this.disk.root, OBJECTS_DIR);
    const a = fs.statSync(this.dest, { bigint: true }).dev;
    let b: bigint;
    try {
      b = fs.statSync(objects, { bigint: true }).dev;
    } catch (err) {
      throw new DistbackupError(`${objects}: ${describeError(err)}`, { path: objects, cause: err });
    }
    if (a !== b) {
      throw new RefusedError(
        `${this.dest.toString()}: --link needs the restore folder on the disk's filesystem (${this.disk.root}); hard links cannot cross filesystems`,
        { code: 'cross-device', path: this.dest.toString() },
      );
    }
  }

  private problem(list: PathProblem[], p: string, error: string): void {
    if (list.length < LIST_CAP) list.push({ path: p, error });
  }

  /**
   * A path for `abs` (absolute, under DEST or an --existing folder) that the kernel accepts: itself
   * when short, else through a descriptor of its folder (`/proc/self/fd/N/name`). Valid until the
   * next call for another folder: use it at once.
   */
  private sp(abs: Buffer): Buffer {
    if (abs.length <= DIRECT_MAX) return abs;
    const i = abs.lastIndexOf(0x2f);
    const dir = abs.subarray(0, i);
    const key = dir.toString('latin1');
    if (this.reachCache?.key !== key) {
      this.reachCache?.reach.close();
      this.reachCache = undefined;
      this.reachCache = { key, reach: reachDir(dir) };
    }
    return this.reachCache.reach.entry(abs.subarray(i + 1));
  }

  /** Whether a state record means "done" for `t` in this run. */
  private done(t: RestoreTodo): boolean {
    const e = this.state.entry(t.vpath);
    if (e === undefined || e.hash !== t.hash) return false;
    if (t.kind === FileKind.file) {
      // Found in an --existing folder counts only in runs that are given --existing again.
      return e.kind === FileKind.file || (e.kind === KIND_FOUND_ELSEWHERE && this.existingDirs.length > 0);
    }
    return t.kind === FileKind.symlink && e.kind === FileKind.symlink;
  }

  /** Whether a checked catalogue entry is one this run (or the survey) considers. */
  private selected(t: RestoreTodo): boolean {
    return this.wanted === undefined || this.wanted(t.vpath);
  }

  /** First pass: what this run restores goes into the state's scratch table. */
  private async collect(): Promise<void> {
    this.state.clearTodo();
    let batch: RestoreTodo[] = [];
    for (const row of iterateFilesUnder(this.cat.db, this.prefixes)) {
      await this.breathe();
      if (this.aborted()) return;
      const c = checkRow(row);
      if (!c.ok) continue; // reported by the survey at the end
      const t = c.todo;
      if (!this.selected(t)) continue;
      if (t.kind === FileKind.file) {
        if (this.done(t)) continue;
        const here = this.diskId !== undefined && c.diskIds.includes(this.diskId);
        if (!here && t.hash !== EMPTY_HASH) continue;
      } else if (t.kind === FileKind.symlink) {
        if (this.done(t)) continue;
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

  // ---- dry run ---------------------------------------------------------------------------

  /** What a run would do, entry by entry, without writing anything. */
  private async dryRun(): Promise<void> {
    const destExists = fs.existsSync(this.destText);
    for (const row of iterateFilesUnder(this.cat.db, this.prefixes)) {
      await this.breathe();
      if (this.aborted()) return;
      const c = checkRow(row);
      if (!c.ok) continue;
      const t = c.todo;
      if (!this.selected(t)) continue;
      const shown = displayPath(t.vpath);
      if (t.kind === FileKind.dir) {
        if (destExists && this.peek(joinTarget(this.dest, c.parts)) !== undefined) continue;
        this.doc.wouldRestore.dirs += 1;
        this.opts.onDryRun?.({ path: shown, kind: 'folder', sizeBytes: 0, action: 'restore' });
        continue;
      }
      if (this.done(t)) continue;
      if (t.kind === FileKind.file) {
        const here = this.diskId !== undefined && c.diskIds.includes(this.diskId);
        if (!here && t.hash !== EMPTY_HASH) continue;
        if (this.foundElsewhere(c.parts, t)) {
          this.doc.foundElsewhere += 1;
          this.opts.onDryRun?.({ path: shown, kind: 'file', sizeBytes: t.sizeBytes, action: 'found-elsewhere' });
          continue;
        }
      }
      let action: DryRunEntry['action'] = this.opts.link === true && t.kind === FileKind.file ? 'link' : 'restore';
      const inDest = destExists ? this.peek(joinTarget(this.dest, c.parts)) : undefined;
      if (inDest !== undefined) {
        const ours = this.state.restoredHash(t.vpath) !== undefined;
        if (inDest.isDirectory() || (!ours && this.opts.overwrite !== true)) action = 'exists';
        else action = 'overwrite';
      }
      if (action === 'exists') this.problem(this.doc.existing, shown, 'exists; not overwritten (use --overwrite)');
      else if (t.kind === FileKind.file) {
        this.doc.wouldRestore.files += 1;
        this.doc.wouldRestore.bytes += t.sizeBytes;
      } else this.doc.wouldRestore.symlinks += 1;
      this.opts.onDryRun?.({
        path: shown,
        kind: t.kind === FileKind.file ? 'file' : 'symlink',
        sizeBytes: t.sizeBytes,
        action,
      });
    }
  }

  /** lstat for a dry run: undefined when the path or a folder on its way is missing or unreadable. */
  private peek(p: Buffer): fs.Stats | undefined {
    try {
      return lstatOrUndefined(this.sp(p));
    } catch {
      return undefined;
    }
  }

  // ---- folders ---------------------------------------------------------------------------

  /**
   * Make sure `parts[0..n)` exist as real folders under DEST, creating missing ones 0700.
   * Returns the folder's path. Throws PathRefused when an ancestor is a symlink or not a folder.
   */
  private ensureDirs(parts: readonly Buffer[], n: number): Buffer {
    let cur = this.dest;
    for (let i = 0; i < n; i++) {
      cur = joinTarget(cur, [parts[i] as Buffer]);
      const key = cur.toString('latin1');
      if (this.knownDirs.has(key)) continue;
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(this.sp(cur));
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw new PathRefused(`${displayPath(cur)}: ${describeError(err)}`);
      }
      if (st === undefined) {
        try {
          fs.mkdirSync(this.sp(cur), { mode: 0o700 });
          this.implicitDirs.set(key, cur);
          this.createdDirs.add(key);
        } catch (err) {
          if (errnoCode(err) !== 'EEXIST') throw new PathRefused(`cannot create folder: ${describeError(err)}`);
        }
        st = fs.lstatSync(this.sp(cur));
      }
      if (st.isSymbolicLink()) throw new PathRefused(`${displayPath(cur)} is a symlink; refusing to write through it`);
      if (!st.isDirectory()) throw new PathRefused(`${displayPath(cur)} is not a folder`);
      this.knownDirs.add(key);
    }
    return cur;
  }

  private async restoreDirs(): Promise<void> {
    for (const t of this.state.iterateTodo(FileKind.dir, false)) {
      await this.breathe();
      if (this.aborted()) return;
      const split = splitVpath(t.vpath);
      if (!split.ok) continue;
      try {
        const target = this.ensureDirs(split.parts, split.parts.length);
        const key = target.toString('latin1');
        this.implicitDirs.delete(key);
        if (!insideDest(this.dest, target)) throw new PathRefused('outside the restore folder');
        // A folder restored by an earlier run may be read-only by now: open it up while we work.
        if (this.isRoot === false) this.withDir(target, (fd) => fs.fchmodSync(fd, 0o700));
        this.readyDirs.add(t.vpath.toString('latin1'));
        this.state.markRestored(t.vpath, '', FileKind.dir);
        this.doc.dirs += 1;
      } catch (err) {
        this.fail(t.vpath, err);
      }
    }
  }

  /** Open folder `p` without following a symlink and run `fn` on its fd. */
  private withDir(p: Buffer, fn: (fd: number) => void): void {
    const fd = fs.openSync(this.sp(p), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
    try {
      fn(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Folder modes, owners and mtimes, deepest first (writing inside a folder changes its mtime). */
  private finishDirs(): void {
    for (const [, p] of [...this.implicitDirs].sort((a, b) => (a[0] < b[0] ? 1 : -1))) {
      try {
        this.withDir(p, (fd) => fs.fchmodSync(fd, 0o755));
      } catch {
        // best effort: the folder stays 0700
      }
    }
    const dirs: RestoreTodo[] = [];
    for (const t of this.state.iterateTodo(FileKind.dir, false)) dirs.push(t);
    for (let i = dirs.length - 1; i >= 0; i--) {
      const t = dirs[i] as RestoreTodo;
      // Only folders whose every ancestor was checked in this run: a refused one may sit
      // behind a symlink, and O_NOFOLLOW guards the last component only.
      if (!this.readyDirs.has(t.vpath.toString('latin1'))) continue;
      const split = splitVpath(t.vpath);
      if (!split.ok) continue;
      const target = joinTarget(this.dest, split.parts);
      try {
        this.withDir(target, (fd) => this.applyMeta(fd, t));
      } catch (err) {
        this.problem(this.doc.errors, displayPath(t.vpath), `cannot set mode or time: ${describeError(err)}`);
      }
    }
  }

  /**
   * Mode (special bits stripped), owner when root, and times on an open fd. A filesystem that
   * cannot keep modes or times (FAT over FUSE answers ENOSYS) gets one warning, not an error
   * per file: the content is what matters there.
   */
  private applyMeta(fd: number, t: RestoreTodo): void {
    if (this.isRoot) {
      try {
        fs.fchownSync(fd, t.uid, t.gid);
      } catch {
        // a filesystem without owners (exFAT, FAT)
      }
    }
    try {
      fs.fchmodSync(fd, t.mode & 0o777);
      if (!this.modesChecked) {
        this.modesChecked = true;
        if ((fs.fstatSync(fd).mode & 0o777) !== (t.mode & 0o777)) this.warnOnce(MODES_LOST);
      }
    } catch (err) {
      if (!UNSUPPORTED.has(errnoCode(err) ?? '')) throw err;
      this.warnOnce(MODES_LOST);
    }
    const s = secondsOf(t.mtimeNs);
    try {
      fs.futimesSync(fd, s, s);
    } catch (err) {
      if (!UNSUPPORTED.has(errnoCode(err) ?? '')) throw err;
      this.warnOnce('modification times are not preserved on this filesystem');
    }
  }

  private warnOnce(text: string): void {
    if (!this.doc.warnings.includes(text)) this.doc.warnings.push(text);
  }

  // ---- files -----------------------------------------------------------------------------

  private async restoreFiles(): Promise<void> {
    for (const t of this.state.iterateTodo(FileKind.file, true)) {
      await this.breathe();
      if (this.aborted()) return;
      try {
        await this.restoreFile(t);
      } catch (err) {
        if (err instanceof Interrupted) return;
        this.fail(t.vpath, err);
      }
      this.opts.progress?.update(this.doc.bytesRestored, this.doc.restored);
      if (this.batchFiles.length >= BATCH_FILES || this.batchBytes >= BATCH_BYTES) this.commitBatch();
    }
  }

  private fail(vpath: Buffer, err: unknown): void {
    const shown = displayPath(vpath);
    if (err instanceof PathRefused) this.problem(this.doc.refused, shown, err.message);
    else if (err instanceof ExistsError) this.problem(this.doc.existing, shown, err.message);
    else if (err instanceof DistbackupError && (err.code === 'disk-vanished' || err.code === 'cross-device')) throw err;
    else this.problem(this.doc.errors, shown, err instanceof BadObject ? err.message : describeError(err));
  }

  /**
   * True when an `--existing` folder holds this file: same relative path, a regular file of the
   * same size and mtime (to the second), whose SHA-256 is the catalogued one. The size and mtime
   * only pick the candidates; the hash decides, so a skipped file is never a different one.
   */
  private foundElsewhere(parts: readonly Buffer[], t: RestoreTodo): boolean {
    for (const dir of this.existingDirs) {
      const p = joinTarget(dir, parts);
      let st: fs.Stats | undefined;
      try {
        st = lstatOrUndefined(this.sp(p));
      } catch {
        continue; // unreadable there: not a proof of anything
      }
      if (st === undefined || !st.isFile() || st.size !== t.sizeBytes) continue;
      if (Math.floor(st.mtimeMs / 1000) !== Number(t.mtimeNs / 1_000_000_000n)) continue;
      try {
        if (hashOfFile(this.sp(p), this.buf) === t.hash) return true;
      } catch {
        // unreadable: restore it
      }
    }
    return false;
  }

  private async restoreFile(t: RestoreTodo): Promise<void> {
    const split = splitVpath(t.vpath);
    if (!split.ok) throw new PathRefused(split.reason);
    const parts = split.parts;
    if (this.existingDirs.length > 0 && this.foundElsewhere(parts, t)) {
      this.state.markRestored(t.vpath, t.hash, KIND_FOUND_ELSEWHERE);
      this.doc.foundElsewhere += 1;
      return;
    }
    const name = parts[parts.length - 1] as Buffer;
    const parent = this.ensureDirs(parts, parts.length - 1);
    const target = joinTarget(parent, [name]);
    if (!insideDest(this.dest, target)) throw new PathRefused('outside the restore folder');
    const ours = this.state.restoredHash(t.vpath) !== undefined;
    // A folder this run created held nothing but what this run put there: no lstat needed (a
    // case-insensitive twin written earlier in the run still makes link() fail with EEXIST).
    const fresh = this.createdDirs.has(parent.toString('latin1'));
    const existing = fresh ? undefined : lstatOrUndefined(this.sp(target));
    if (existing !== undefined) {
      if (existing.isDirectory()) throw new ExistsError('a folder is in the way');
      if (!ours && this.opts.overwrite !== true) {
        if (existing.isFile() && existing.size === t.sizeBytes && hashOfFile(this.sp(target), this.buf) === t.hash) {
          this.state.markRestored(t.vpath, t.hash, FileKind.file);
          this.doc.alreadyRestored += 1;
          return;
        }
        throw new ExistsError('exists; not overwritten (use --overwrite)');
      }
    }
    if (this.opts.link === true && t.hash !== EMPTY_HASH) {
      this.linkObject(t, target, existing !== undefined);
    } else {
      await this.writeFile(t, parent, name, target, existing !== undefined, fresh);
      this.batchFiles.push(target);
    }
    this.batchDirs.set(parent.toString('latin1'), parent);
    this.batchBytes += t.sizeBytes;
    this.state.markRestored(t.vpath, t.hash, FileKind.file);
    this.doc.restored += 1;
    this.doc.bytesRestored += t.sizeBytes;
  }

  /** Write `t` under a temp name beside `target`, check it, give it its metadata, link it into place. */
  private async writeFile(
    t: RestoreTodo,
    parent: Buffer,
    name: Buffer,
    target: Buffer,
    replace: boolean,
    fresh: boolean,
  ): Promise<void> {
    const tmp = joinTarget(parent, [
      Buffer.from(`.dsb-${createHash('sha256').update(name).digest('hex').slice(0, 16)}.part`),
    ]);
    const old = fresh ? undefined : lstatOrUndefined(this.sp(tmp));
    if (old !== undefined) {
      if (!old.isFile()) throw new PathRefused(`${displayPath(tmp)} is in the way`);
      fs.unlinkSync(this.sp(tmp)); // left by an interrupted restore
    }
    let out: number | undefined;
    let kept = false;
    try {
      if (t.sizeBytes > 0 || t.hash !== EMPTY_HASH) out = await this.copyObject(t, tmp);
      else {
        out = fs.openSync(
          this.sp(tmp),
          fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
          0o600,
        );
      }
      this.applyMeta(out, t);
      if (replace) fs.unlinkSync(this.sp(target)); // ours, or --overwrite: unlink and recreate
      this.placeNoReplace(tmp, target);
      kept = true;
    } finally {
      if (out !== undefined) fs.closeSync(out);
      if (!kept) {
        try {
          fs.rmSync(this.sp(tmp), { force: true });
        } catch {
          // the folder itself is gone or unreachable: nothing to clean
        }
      }
    }
    this.checkTimeKept(target, t);
  }

  /**
   * Some FUSE filesystems (fusefat) write a file's data back when it is closed and stamp the
   * time of that write over the one set on the open file. The first file tells: from then on,
   * the time is set again by path (never following a link) after the file is closed.
   */
  private checkTimeKept(target: Buffer, t: RestoreTodo): void {
    if (this.timesAfterClose === false) return;
    const s = secondsOf(t.mtimeNs);
    if (this.timesAfterClose === undefined) {
      const got = fs.lstatSync(this.sp(target)).mtimeMs / 1000;
      // 2 s: FAT keeps even seconds.
      this.timesAfterClose = Math.abs(got - s) > 2;
      if (!this.timesAfterClose) return;
    }
    try {
      fs.lutimesSync(this.sp(target), s, s);
    } catch (err) {
      if (!UNSUPPORTED.has(errnoCode(err) ?? '')) throw err;
      this.warnOnce('modification times are not preserved on this filesystem');
    }
  }

  /**
   * Copy the object of `t` from the disk to the new file `tmp`, checking its SHA-256; returns
   * an fd of `tmp` (the caller closes it). Throws BadObject on a mismatch, Interrupted on abort.
   */
  private async copyObject(t: RestoreTodo, tmp: Buffer): Promise<number> {
    const disk = this.disk;
    if (disk === undefined) throw new BadObject('no disk connected');
    const objectPath = disk.objectPath(t.hash);
    const inFd = this.openObject(t, disk);
    try {
      const st = this.checkObject(t, inFd);
      const plain = (st.mode & 0o7000) === 0;
      const kernelMax = this.opts.kernelCopyMaxBytes ?? KERNEL_COPY_MAX;
      if (plain && t.sizeBytes >= KERNEL_COPY_MIN && t.sizeBytes <= kernelMax) {
        // In the kernel (no copy through this process), then hashed from the page cache. The
        // new file takes the object's permission bits (copyFile copies them); special bits are
        // excluded above, and the file gets its own mode before it is linked into place.
        await new Promise<void>((resolve, reject) => {
          fs.copyFile(objectPath, this.sp(tmp), fs.constants.COPYFILE_EXCL, (err) => (err ? reject(err) : resolve()));
        });
        const out = fs.openSync(this.sp(tmp), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
        try {
          const got = fs.fstatSync(out);
          if (!got.isFile() || got.size !== t.sizeBytes) {
            throw new BadObject(`object ${t.hash} copied as ${got.size} bytes, not ${t.sizeBytes}; not restored`);
          }
          const h = hashOfFd(out, this.bigBuf());
          if (h !== t.hash) {
            throw new BadObject(`object ${t.hash} reads back as ${h}: damaged (run 'distbackup verify'); not restored`);
          }
          return out;
        } catch (err) {
          fs.closeSync(out);
          throw err;
        }
      }
      const out = fs.openSync(
        this.sp(tmp),
        fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
        0o600,
      );
      try {
        const got = t.sizeBytes > kernelMax ? await this.pipedCopy(inFd, out) : this.smallCopy(inFd, out);
        if (got.bytes !== t.sizeBytes || got.hash !== t.hash) {
          throw new BadObject(
            `object ${t.hash} reads back as ${got.hash}: damaged (run 'distbackup verify'); not restored`,
          );
        }
        return out;
      } catch (err) {
        fs.closeSync(out);
        throw err;
      }
    } finally {
      fs.closeSync(inFd);
    }
  }

  /** Open the object of `t` read-only without following a symlink; BadObject when it is not there. */
  private openObject(t: RestoreTodo, disk: DiskRoot): number {
    try {
      disk.prefixDir(t.hash, false);
      return fs.openSync(disk.objectPath(t.hash), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || (err instanceof DistbackupError && err.code === 'ENOENT')) {
        disk.checkMounted();
        throw new BadObject(`object ${t.hash} is not on this disk (run 'distbackup disk refresh')`);
      }
      throw new BadObject(`object ${t.hash}: ${describeError(err)}`);
    }
  }

  /** The object's fstat, after checking it is a regular file of the catalogued size. */
  private checkObject(t: RestoreTodo, fd: number): fs.Stats {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new BadObject(`object ${t.hash} is not a regular file`);
    if (st.size !== t.sizeBytes) {
      throw new BadObject(
        `object ${t.hash} has ${st.size} bytes, not ${t.sizeBytes}: damaged (run 'distbackup verify')`,
      );
    }
    return st;
  }

  private bigBuf(): Buffer {
    this.bigBufs ??= [0, 1, 2].map(() => Buffer.allocUnsafe(BIG_CHUNK_BYTES));
    return this.bigBufs[0] as Buffer;
  }

  /** Read, hash and write through the reused 1 MiB buffer (small files: one read, one write). */
  private smallCopy(inFd: number, out: number): { bytes: number; hash: string } {
    const h = createHash('sha256');
    let pos = 0;
    for (;;) {
      const n = fs.readSync(inFd, this.buf, 0, CHUNK_BYTES, pos);
      if (n === 0) break;
      const chunk = this.buf.subarray(0, n);
      h.update(chunk);
      writeFully(out, chunk, pos);
      pos += n;
    }
    return { bytes: pos, hash: h.digest('hex') };
  }

  /**
   * Big files: 4 MiB chunks, the read of the next chunk on libuv's pool while this one is
   * hashed and written; checks the abort signal between chunks.
   */
  private async pipedCopy(inFd: number, out: number): Promise<{ bytes: number; hash: string }> {
    this.bigBuf();
    const bufs = this.bigBufs as Buffer[];
    const h = createHash('sha256');
    let pos = 0;
    let k = 0;
    let reading = readAsync(inFd, bufs[0] as Buffer, 0, BIG_CHUNK_BYTES, 0);
    let writing: Promise<void> = Promise.resolve();
    try {
      for (;;) {
        const n = await reading;
        if (n === 0) break;
        const chunk = (bufs[k % 3] as Buffer).subarray(0, n);
        k += 1;
        // Three buffers: one being read, one being written, one free for the next read.
        reading = readAsync(inFd, bufs[k % 3] as Buffer, 0, BIG_CHUNK_BYTES, pos + n);
        h.update(chunk);
        await writing;
        writing = writeFullyAsync(out, chunk, pos);
        pos += n;
        if (this.aborted()) throw new Interrupted();
      }
      await writing;
    } catch (err) {
      // Let the calls in flight end before the caller closes the descriptors.
      await reading.catch(() => 0);
      await writing.catch(() => undefined);
      throw err;
    }
    return { bytes: pos, hash: h.digest('hex') };
  }

  /**
   * `--link`: check the object's hash, then hard-link it at `target`. The file shares the
   * object's inode, so its mode and mtime are the object's: changing them would change the
   * backup itself (and a writable mode would let an edit in DEST rot the object), so none is set.
   */
  private linkObject(t: RestoreTodo, target: Buffer, replace: boolean): void {
    const disk = this.disk;
    if (disk === undefined) throw new BadObject('no disk connected');
    const inFd = this.openObject(t, disk);
    try {
      const st = this.checkObject(t, inFd);
      const h = hashOfFd(inFd, this.buf);
      if (h !== t.hash) {
        throw new BadObject(`object ${t.hash} reads back as ${h}: damaged (run 'distbackup verify'); not restored`);
      }
      if (replace) fs.unlinkSync(this.sp(target));
      try {
        fs.linkSync(disk.objectPath(t.hash), this.sp(target));
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'EEXIST') throw new ExistsError('exists; not overwritten (use --overwrite)');
        if (code === 'EXDEV') {
          throw new RefusedError(`${displayPath(target)}: --link cannot cross filesystems (the disk is ${disk.root})`, {
            code: 'cross-device',
            path: target.toString(),
          });
        }
        throw err;
      }
      // The name linked must be the object just checked (not one swapped in meanwhile).
      const now = fs.lstatSync(this.sp(target));
      if (now.ino !== st.ino || now.dev !== st.dev) {
        fs.unlinkSync(this.sp(target));
        throw new BadObject(`object ${t.hash} changed while it was linked; not restored`);
      }
      this.doc.linked += 1;
    } finally {
      fs.closeSync(inFd);
    }
  }

  /**
   * Give the finished temp file its final name without ever replacing a file: link() fails with
   * EEXIST when the name exists (also a case-insensitive twin). Filesystems without hard links
   * (exFAT, FAT) get an lstat check and a rename.
   */
  private placeNoReplace(tmp: Buffer, target: Buffer): void {
    try {
      fs.linkSync(this.sp(tmp), this.sp(target));
      fs.unlinkSync(this.sp(tmp));
      return;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'EEXIST') throw new ExistsError('exists; not overwritten (use --overwrite)');
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EMLINK' && code !== 'ENOSYS')
        throw err;
    }
    if (lstatOrUndefined(this.sp(target)) !== undefined)
      throw new ExistsError('exists; not overwritten (use --overwrite)');
    fs.renameSync(this.sp(tmp), this.sp(target));
  }

  /**
   * Durability point: the batch's files and folder entries reach the disk, then the state
   * records them (a state entry never names a file a power cut could take back).
   */
  private commitBatch(): void {
    // A small batch is cheaper to fsync file by file than to flush the whole filesystem
    // (syncfs also writes back every other process's dirty data on it).
    const small = this.batchFiles.length <= SMALL_BATCH_FILES && this.batchBytes <= SMALL_BATCH_BYTES;
    const any = this.batchFiles.length > 0 || this.batchDirs.size > 0;
    if (any && (small || !this.syncfs())) {
      for (const f of this.batchFiles) fsyncPath(this.sp(f), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      for (const d of this.batchDirs.values()) fsyncPath(this.sp(d), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    }
    this.batchFiles = [];
    this.batchDirs = new Map();
    this.batchBytes = 0;
    this.state.commit();
  }

  /** syncfs(2) of DEST's filesystem through coreutils `sync -f`; false when unavailable. */
  private syncfs(): boolean {
    if (this.syncfsWorks === false) return false;
    const r = spawnSync('sync', ['-f', this.dest.toString()], { stdio: 'ignore' });
    this.syncfsWorks = r.status === 0;
    return this.syncfsWorks;
  }

  // ---- symlinks --------------------------------------------------------------------------

  private async restoreSymlinks(): Promise<void> {
    for (const t of this.state.iterateTodo(FileKind.symlink, false)) {
      await this.breathe();
      if (this.aborted()) return;
      try {
        const split = splitVpath(t.vpath);
        if (!split.ok) throw new PathRefused(split.reason);
        const parts = split.parts;
        const parent = this.ensureDirs(parts, parts.length - 1);
        const target = joinTarget(parent, [parts[parts.length - 1] as Buffer]);
        if (!insideDest(this.dest, target)) throw new PathRefused('outside the restore folder');
        const existing = lstatOrUndefined(this.sp(target));
        if (existing !== undefined) {
          const ours = this.state.restoredHash(t.vpath) !== undefined;
          if (existing.isDirectory()) throw new ExistsError('a folder is in the way');
          if (!ours && this.opts.overwrite !== true) {
            if (
              existing.isSymbolicLink() &&
              fs.readlinkSync(this.sp(target), { encoding: 'buffer' }).equals(t.linkTarget ?? Buffer.alloc(0))
            ) {
              this.state.markRestored(t.vpath, '', FileKind.symlink);
              this.doc.alreadyRestored += 1;
              continue;
            }
            throw new ExistsError('exists; not overwritten (use --overwrite)');
          }
          fs.unlinkSync(this.sp(target));
        }
        // The target is data: stored verbatim, never resolved or followed.
        fs.symlinkSync(t.linkTarget as Buffer, this.sp(target));
        if (this.isRoot) {
          try {
            fs.lchownSync(this.sp(target), t.uid, t.gid);
          } catch {
            // no owners on this filesystem
          }
        }
        const s = secondsOf(t.mtimeNs);
        try {
          fs.lutimesSync(this.sp(target), s, s);
        } catch {
          // some filesystems cannot time a link
        }
        this.state.markRestored(t.vpath, '', FileKind.symlink);
        this.doc.symlinks += 1;
      } catch (err) {
        this.fail(t.vpath, err);
      }
    }
  }

  // ---- what is left ----------------------------------------------------------------------

  /**
   * Count what is still missing and plan the disks for it. `exclude`: the disk just used (what
   * it holds and is still missing failed on it).
   */
  private survey(exclude: number | undefined): void {
    const tally = new MissingTally();
    for (const row of iterateFilesUnder(this.cat.db, this.prefixes)) {
      const c = checkRow(row);
      if (!c.ok) {
        // Files never hashed are not backed up: not "missing" unless they should have been.
        if (c.reason.startsWith('never hashed')) continue;
        this.problem(this.doc.refused, c.path, c.reason);
        this.doc.remaining += 1;
        this.doc.remainingBytes += Number(asBig(row.size) ?? 0n);
        continue;
      }
      const t = c.todo;
      if (t.kind !== FileKind.file) continue;
      if (!this.selected(t)) continue;
      if (this.done(t)) continue;
      if (c.priority === 0 && c.diskIds.length === 0) continue; // excluded from the backup on purpose
      this.doc.remaining += 1;
      this.doc.remainingBytes += t.sizeBytes;
      if (t.hash === EMPTY_HASH) continue;
      tally.add(
        c.diskIds.filter((d) => d !== exclude),
        t.sizeBytes,
      );
    }
    this.doc.unavailable = tally.unavailableFiles;
    this.doc.unavailableBytes = tally.unavailableBytes;
    const steps: PlanStep[] = planDisks(tally.list, this.nameOf);
    this.doc.plan = steps.map((s) => ({ disk: this.nameOf(s.diskId), files: s.files, bytes: s.bytes }));
    this.doc.next = this.doc.plan[0] ?? null;
  }
}

class ExistsError extends Error {}
class BadObject extends Error {}

/** fsync the file or folder at `p`; EINVAL/ENOTSUP (folders on some filesystems) are ignored. */
function fsyncPath(p: Buffer, flags: number): void {
  const fd = fs.openSync(p, flags);
  try {
    fs.fsyncSync(fd);
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'EINVAL' && code !== 'ENOTSUP') throw err;
  } finally {
    fs.closeSync(fd);
  }
}

function lstatOrUndefined(p: Buffer): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** SHA-256 of the file at `p` (hex), reading with `buf`. */
function hashOfFile(p: Buffer, buf: Buffer): string {
  const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    return hashOfFd(fd, buf);
  } finally {
    fs.closeSync(fd);
  }
}

/** SHA-256 (hex) of everything in `fd` from its start, reading with `buf`. */
function hashOfFd(fd: number, buf: Buffer): string {
  const h = createHash('sha256');
  let pos = 0;
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, pos);
    if (n === 0) break;
    h.update(buf.subarray(0, n));
    pos += n;
  }
  return h.digest('hex');
}

/** Nanoseconds since the epoch as the seconds utimes takes (µs precision, what a double keeps). */
function secondsOf(ns: bigint): number {
  // Node and libuv keep microseconds and truncate: aim at the middle of the microsecond so the
  // double rounding never lands one below (measured: 753244 µs came back as 753243).
  return (Number(ns / 1000n) + 0.5) / 1e6;
}
