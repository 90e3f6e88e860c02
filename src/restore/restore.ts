/**
 * The restore use-case (SPEC §6, RELIABILITY.md §4): rebuild files of the catalogue in use from
 * the objects of one connected disk, into DEST, and say which disk to connect next.
 *
 * Order of work: folders (created 0700), regular files in object order (one sequential stream
 * on a hard disk; each written 0600 under a temp name, hashed while written, refused on a
 * mismatch, then given its mode, owner and mtime and linked into place without ever replacing
 * what is there), symlinks last (targets verbatim, never followed), then folder modes and
 * mtimes, deepest first. Every target is built from checked components; every existing
 * ancestor is lstat'ed and a symlink or non-folder refuses the path. The restore state in
 * `DEST/.distbackup-restore/` records what was written, after it is durable, so the next disk
 * adds only what is still missing.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CATALOGUE_FILE, type Catalog, openCatalog, openUntrustedCatalogue } from '../catalog/db.js';
import { acquireLock, type Lock } from '../catalog/lock.js';
import { diskIdByUuid, diskNames, type FileReportRow, hasEntriesUnder, iterateFilesUnder } from '../catalog/reports.js';
import { RestoreState, type RestoreTodo } from '../catalog/restore-state.js';
import { FileKind } from '../catalog/schema.js';
import { writeFully } from '../core/durable.js';
import { DistbackupError, describeError, errnoCode, RefusedError, UsageError } from '../core/errors.js';
import { displayPath, normalizeVpath, printable } from '../core/vpath.js';
import { readDiskIdentity } from '../disk/disk-json.js';
import { DiskRoot } from '../disk/disk-root.js';
import { DISK_CATALOGUE, HASH_RE } from '../disk/layout.js';
import { findDisk } from '../disks/open.js';
import type { Progress } from '../ui/progress.js';
import { MissingTally, type PlanStep, planDisks } from './guide.js';
import { insideDest, joinTarget, STATE_DIR, splitVpath } from './paths.js';

/** SHA-256 of no bytes: an empty file needs no object. */
export const EMPTY_HASH = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** Read size of the reused buffer: 1 MiB (NODE20.md: readSync into one reused 1 MiB buffer). */
const CHUNK_BYTES = 1024 * 1024;
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
  overwrite?: boolean;
  /** Only print the disk order; restore nothing. */
  planOnly?: boolean;
  progress?: Progress;
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
}

/** Restore (or, with `planOnly`, plan) as described in the module comment. */
export function runRestore(opts: RestoreOptions): RestoreDoc {
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
    return engine.run(useHome ? 'home' : 'disk');
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

/** A path refused or failed during the work; thrown to skip one entry. */
class PathRefused extends Error {}

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
  private batchFiles: Buffer[] = [];
  private syncfsWorks: boolean | undefined;
  private batchDirs = new Map<string, Buffer>();
  private batchBytes = 0;
  private modesChecked = false;
  private readonly doc: RestoreDoc;

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
      dirs: 0,
      symlinks: 0,
      unavailable: 0,
      unavailableBytes: 0,
      refused: [],
      existing: [],
      errors: [],
      plan: [],
      warnings: [],
    };
  }

  run(catalogue: 'home' | 'disk'): RestoreDoc {
    this.doc.catalogue = catalogue;
    if (this.opts.planOnly === true) {
      // What an earlier restore into DEST already holds is not planned again.
      const stateFile = path.join(this.destText, STATE_DIR, 'state.sqlite');
      if (fs.existsSync(stateFile)) {
        this.state = RestoreState.open(stateFile);
        try {
          this.survey(undefined, false);
        } finally {
          this.state.close();
        }
      } else this.survey(undefined, true);
      return this.doc;
    }
    const destReal = this.prepareDest();
    const lock = this.lockDest(destReal);
    try {
      this.state = RestoreState.open(path.join(destReal, STATE_DIR, 'state.sqlite'));
      try {
        if (this.diskRoot !== undefined) this.disk = DiskRoot.open(this.diskRoot);
        this.collect();
        this.restoreDirs();
        this.restoreFiles();
        this.commitBatch();
        this.knownDirs.clear(); // symlinks may now exist: never trust a cached folder again
        this.restoreSymlinks();
        this.state.commit();
        this.finishDirs();
        this.survey(this.diskId, false);
      } finally {
        this.state.close();
      }
    } finally {
      lock.release();
    }
    return this.doc;
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

  private problem(list: PathProblem[], p: string, error: string): void {
    if (list.length < LIST_CAP) list.push({ path: p, error });
  }

  /** First pass: what this run restores goes into the state's scratch table. */
  private collect(): void {
    this.state.clearTodo();
    let batch: RestoreTodo[] = [];
    for (const row of iterateFilesUnder(this.cat.db, this.prefixes)) {
      const c = checkRow(row);
      if (!c.ok) continue; // reported by the survey at the end
      const t = c.todo;
      if (t.kind === FileKind.file) {
        if (this.state.restoredHash(t.vpath) === t.hash) continue;
        const here = this.diskId !== undefined && c.diskIds.includes(this.diskId);
        if (!here && t.hash !== EMPTY_HASH) continue;
      } else if (t.kind === FileKind.symlink) {
        if (this.state.restoredHash(t.vpath) === '') continue;
      }
      batch.push(t);
      if (batch.length >= 10_000) {
        this.state.addTodo(batch);
        batch = [];
      }
    }
    this.state.addTodo(batch);
    const totals = this.state.todoTotals(FileKind.file);
    this.opts.progress?.setTotals(totals.bytes, totals.count);
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
        st = fs.lstatSync(cur);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw new PathRefused(`${displayPath(cur)}: ${describeError(err)}`);
      }
      if (st === undefined) {
        try {
          fs.mkdirSync(cur, { mode: 0o700 });
          this.implicitDirs.set(key, cur);
          this.createdDirs.add(key);
        } catch (err) {
          if (errnoCode(err) !== 'EEXIST') throw new PathRefused(`cannot create folder: ${describeError(err)}`);
        }
        st = fs.lstatSync(cur);
      }
      if (st.isSymbolicLink()) throw new PathRefused(`${displayPath(cur)} is a symlink; refusing to write through it`);
      if (!st.isDirectory()) throw new PathRefused(`${displayPath(cur)} is not a folder`);
      this.knownDirs.add(key);
    }
    return cur;
  }

  private restoreDirs(): void {
    for (const t of this.state.iterateTodo(FileKind.dir, false)) {
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
    const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
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

  /** Mode (special bits stripped), owner when root, and times on an open fd. */
  private applyMeta(fd: number, t: RestoreTodo): void {
    if (this.isRoot) {
      try {
        fs.fchownSync(fd, t.uid, t.gid);
      } catch {
        // a filesystem without owners (exFAT, FAT)
      }
    }
    fs.fchmodSync(fd, t.mode & 0o777);
    if (!this.modesChecked) {
      this.modesChecked = true;
      if ((fs.fstatSync(fd).mode & 0o777) !== (t.mode & 0o777)) {
        this.doc.warnings.push('modes are not preserved on this filesystem (FAT or exFAT?)');
      }
    }
    const s = secondsOf(t.mtimeNs);
    fs.futimesSync(fd, s, s);
  }

  // ---- files -----------------------------------------------------------------------------

  private restoreFiles(): void {
    for (const t of this.state.iterateTodo(FileKind.file, true)) {
      try {
        this.restoreFile(t);
      } catch (err) {
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
    else if (err instanceof DistbackupError && err.code === 'disk-vanished') throw err;
    else this.problem(this.doc.errors, shown, err instanceof BadObject ? err.message : describeError(err));
  }

  private restoreFile(t: RestoreTodo): void {
    const split = splitVpath(t.vpath);
    if (!split.ok) throw new PathRefused(split.reason);
    const parts = split.parts;
    const name = parts[parts.length - 1] as Buffer;
    const parent = this.ensureDirs(parts, parts.length - 1);
    const target = joinTarget(parent, [name]);
    if (!insideDest(this.dest, target)) throw new PathRefused('outside the restore folder');
    const ours = this.state.restoredHash(t.vpath) !== undefined;
    // A folder this run created held nothing but what this run put there: no lstat needed (a
    // case-insensitive twin written earlier in the run still makes link() fail with EEXIST).
    const fresh = this.createdDirs.has(parent.toString('latin1'));
    const existing = fresh ? undefined : lstatOrUndefined(target);
    if (existing !== undefined) {
      if (existing.isDirectory()) throw new ExistsError('a folder is in the way');
      if (!ours && this.opts.overwrite !== true) {
        if (existing.isFile() && existing.size === t.sizeBytes && hashOfFile(target, this.buf) === t.hash) {
          this.state.markRestored(t.vpath, t.hash, FileKind.file);
          this.doc.alreadyRestored += 1;
          return;
        }
        throw new ExistsError('exists; not overwritten (use --overwrite)');
      }
    }
    const tmp = joinTarget(parent, [
      Buffer.from(`.dsb-${createHash('sha256').update(name).digest('hex').slice(0, 16)}.part`),
    ]);
    const old = fresh ? undefined : lstatOrUndefined(tmp);
    if (old !== undefined) {
      if (!old.isFile()) throw new PathRefused(`${displayPath(tmp)} is in the way`);
      fs.unlinkSync(tmp); // left by an interrupted restore
    }
    const out = fs.openSync(
      tmp,
      fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
      0o600,
    );
    let kept = false;
    try {
      if (t.sizeBytes > 0 || t.hash !== EMPTY_HASH) this.copyObject(t, out);
      this.applyMeta(out, t);
      if (existing !== undefined) fs.unlinkSync(target); // ours, or --overwrite: unlink and recreate
      placeNoReplace(tmp, target);
      kept = true;
    } finally {
      fs.closeSync(out);
      if (!kept) fs.rmSync(tmp, { force: true });
    }
    this.batchFiles.push(target);
    this.batchDirs.set(parent.toString('latin1'), parent);
    this.batchBytes += t.sizeBytes;
    this.state.markRestored(t.vpath, t.hash, FileKind.file);
    this.doc.restored += 1;
    this.doc.bytesRestored += t.sizeBytes;
  }

  /** Copy the object of `t` from the disk into `out`, hashing it; throws BadObject on a mismatch. */
  private copyObject(t: RestoreTodo, out: number): void {
    const disk = this.disk;
    if (disk === undefined) throw new BadObject('no disk connected');
    let inFd: number;
    try {
      disk.prefixDir(t.hash, false);
      inFd = fs.openSync(disk.objectPath(t.hash), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || (err instanceof DistbackupError && err.code === 'ENOENT')) {
        disk.checkMounted();
        throw new BadObject(`object ${t.hash} is not on this disk (run 'distbackup disk refresh')`);
      }
      throw new BadObject(`object ${t.hash}: ${describeError(err)}`);
    }
    try {
      const st = fs.fstatSync(inFd);
      if (!st.isFile()) throw new BadObject(`object ${t.hash} is not a regular file`);
      if (st.size !== t.sizeBytes) {
        throw new BadObject(
          `object ${t.hash} has ${st.size} bytes, not ${t.sizeBytes}: damaged (run 'distbackup verify')`,
        );
      }
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
      const got = h.digest('hex');
      if (pos !== t.sizeBytes || got !== t.hash) {
        throw new BadObject(`object ${t.hash} reads back as ${got}: damaged (run 'distbackup verify'); not restored`);
      }
    } finally {
      fs.closeSync(inFd);
    }
  }

  /**
   * Durability point: the batch's files and folder entries reach the disk, then the state
   * records them (a state entry never names a file a power cut could take back).
   */
  private commitBatch(): void {
    // A small batch is cheaper to fsync file by file than to flush the whole filesystem
    // (syncfs also writes back every other process's dirty data on it).
    const small = this.batchFiles.length <= SMALL_BATCH_FILES && this.batchBytes <= SMALL_BATCH_BYTES;
    if (this.batchFiles.length > 0 && (small || !this.syncfs())) {
      for (const f of this.batchFiles) fsyncPath(f, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      for (const d of this.batchDirs.values()) fsyncPath(d, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
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

  private restoreSymlinks(): void {
    for (const t of this.state.iterateTodo(FileKind.symlink, false)) {
      try {
        const split = splitVpath(t.vpath);
        if (!split.ok) throw new PathRefused(split.reason);
        const parts = split.parts;
        const parent = this.ensureDirs(parts, parts.length - 1);
        const target = joinTarget(parent, [parts[parts.length - 1] as Buffer]);
        if (!insideDest(this.dest, target)) throw new PathRefused('outside the restore folder');
        const existing = lstatOrUndefined(target);
        if (existing !== undefined) {
          const ours = this.state.restoredHash(t.vpath) !== undefined;
          if (existing.isDirectory()) throw new ExistsError('a folder is in the way');
          if (!ours && this.opts.overwrite !== true) {
            if (
              existing.isSymbolicLink() &&
              fs.readlinkSync(target, { encoding: 'buffer' }).equals(t.linkTarget ?? Buffer.alloc(0))
            ) {
              this.state.markRestored(t.vpath, '', FileKind.symlink);
              this.doc.alreadyRestored += 1;
              continue;
            }
            throw new ExistsError('exists; not overwritten (use --overwrite)');
          }
          fs.unlinkSync(target);
        }
        // The target is data: stored verbatim, never resolved or followed.
        fs.symlinkSync(t.linkTarget as Buffer, target);
        if (this.isRoot) {
          try {
            fs.lchownSync(target, t.uid, t.gid);
          } catch {
            // no owners on this filesystem
          }
        }
        const s = secondsOf(t.mtimeNs);
        try {
          fs.lutimesSync(target, s, s);
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
   * it holds and is still missing failed on it). `ignoreState`: count everything as missing.
   */
  private survey(exclude: number | undefined, ignoreState: boolean): void {
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
      if (!ignoreState && this.state.restoredHash(t.vpath) === t.hash) continue;
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

/**
 * Give the finished temp file its final name without ever replacing a file: link() fails with
 * EEXIST when the name exists (also a case-insensitive twin). Filesystems without hard links
 * (exFAT, FAT) get an lstat check and a rename.
 */
function placeNoReplace(tmp: Buffer, target: Buffer): void {
  try {
    fs.linkSync(tmp, target);
    fs.unlinkSync(tmp);
    return;
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EEXIST') throw new ExistsError('exists; not overwritten (use --overwrite)');
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EMLINK') throw err;
  }
  if (lstatOrUndefined(target) !== undefined) throw new ExistsError('exists; not overwritten (use --overwrite)');
  fs.renameSync(tmp, target);
}

/** SHA-256 of the file at `p` (hex), reading with `buf`. */
function hashOfFile(p: Buffer, buf: Buffer): string {
  const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const h = createHash('sha256');
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
    return h.digest('hex');
  } finally {
    fs.closeSync(fd);
  }
}

/** Nanoseconds since the epoch as the seconds utimes takes (µs precision, what a double keeps). */
function secondsOf(ns: bigint): number {
  // Node and libuv keep microseconds and truncate: aim at the middle of the microsecond so the
  // double rounding never lands one below (measured: 753244 µs came back as 753243).
  return (Number(ns / 1000n) + 0.5) / 1e6;
}
