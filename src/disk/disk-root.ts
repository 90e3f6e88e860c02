/**
 * A connected disk folder, treated as untrusted (RELIABILITY.md §2.21, §4): every folder we
 * write into or delete from (`distbackup-objects/`, its prefix folders, `.tmp/`, `.quarantine/`)
 * is checked with lstat to be a real folder on the disk root's device, never a symlink, so a
 * hostile or broken disk never makes us write or delete elsewhere; and the root's device is
 * re-checked before every commit, so an unplugged or lazily unmounted disk never lets writes
 * land on the host disk. Synchronous; one instance per run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fsyncDir } from '../core/durable.js';
import { DistbackupError, describeError, errnoCode, fileError } from '../core/errors.js';
import { readDiskIdentity } from './disk-json.js';
import { HASH_RE, OBJECTS_DIR, PREFIX_RE, QUARANTINE_DIR, TMP_DIR } from './layout.js';

/** An object file found on the disk. */
export interface DiskObject {
  readonly hash: string;
  readonly sizeBytes: number;
}

/** The result of listing a disk's objects: names and sizes only (no content is read). */
export interface DiskListing {
  readonly objects: DiskObject[];
  /** Entries that are not valid objects (bad names, wrong folder, not regular files). */
  readonly ignored: string[];
}

/** A disk folder whose device was recorded when it was opened. */
export class DiskRoot {
  readonly root: string;
  readonly objectsDir: string;
  readonly tmpDir: string;
  private readonly dev: bigint;
  private readonly ino: bigint;
  private readonly checkedDirs = new Set<string>();
  /** Folders holding entries made by `prefixDir` that are not fsynced yet (see syncNewDirs). */
  private readonly unsyncedParents = new Set<string>();

  private constructor(root: string, dev: bigint, ino: bigint) {
    this.root = root;
    this.dev = dev;
    this.ino = ino;
    this.objectsDir = path.join(root, OBJECTS_DIR);
    this.tmpDir = path.join(this.objectsDir, TMP_DIR);
  }

  /**
   * Open the disk at `root` (a folder holding distbackup-disk.json). With `create`, makes
   * `distbackup-objects/` and `.tmp/` when missing. Throws when a folder of the layout is a
   * symlink or on another device.
   */
  static open(root: string, options: { create?: boolean } = {}): DiskRoot {
    let st: fs.BigIntStats;
    try {
      st = fs.statSync(root, { bigint: true });
    } catch (err) {
      throw new DistbackupError(`${root}: cannot open the disk folder: ${describeError(err)}`, {
        code: errnoCode(err) ?? 'runtime',
        path: root,
        cause: err,
      });
    }
    if (!st.isDirectory()) throw new DistbackupError(`${root}: not a folder`, { path: root });
    const d = new DiskRoot(root, st.dev, st.ino);
    d.ensureDir(d.objectsDir, options.create ?? false);
    if (fs.existsSync(d.tmpDir) || options.create === true) d.ensureDir(d.tmpDir, true);
    return d;
  }

  /** The uuid the disk's identity file must keep (see `pinIdentity`). */
  private uuid: string | undefined;

  /**
   * From now on `checkMounted` also reads the disk's identity file and wants `uuid` there: the
   * device number and the root's inode alone let another disk pass, when it is mounted at the
   * same path after this one was pulled, gets the same major:minor (sdb1 again) and has its
   * root at the same inode (2 on every ext4).
   */
  pinIdentity(uuid: string): void {
    this.uuid = uuid;
  }

  /** Throw unless the disk folder is still the same folder on the same device (not unplugged). */
  checkMounted(): void {
    let st: fs.BigIntStats;
    try {
      st = fs.statSync(this.root, { bigint: true });
    } catch (err) {
      throw new DistbackupError(`${this.root}: the disk vanished (${describeError(err)}); was it unplugged?`, {
        code: 'disk-vanished',
        path: this.root,
        cause: err,
      });
    }
    if (st.dev !== this.dev || st.ino !== this.ino) {
      throw new DistbackupError(
        `${this.root}: the disk vanished (the folder is now on another device); was it unplugged or unmounted?`,
        { code: 'disk-vanished', path: this.root },
      );
    }
    if (this.uuid === undefined) return;
    let uuid: string;
    try {
      uuid = readDiskIdentity(this.root).uuid;
    } catch (err) {
      throw new DistbackupError(`${this.root}: the disk vanished (${describeError(err)}); was it unplugged?`, {
        code: 'disk-vanished',
        path: this.root,
        cause: err,
      });
    }
    if (uuid !== this.uuid) {
      throw new DistbackupError(
        `${this.root}: the disk vanished (another disk, uuid ${uuid}, is at its place now); was it swapped?`,
        { code: 'disk-vanished', path: this.root },
      );
    }
  }

  /**
   * Check that `dir` (inside the disk) is a real folder on the disk's device, creating it when
   * `create` and missing (then fsyncing its parent, so the new entry is durable). A folder is
   * checked once per run (those met by the listing of the disk before the copy are checked
   * already). With `create`, mkdir comes first: a folder it makes is ours and needs no lstat;
   * only one that exists (EEXIST) is looked at (3,000 new objects: some 2,100 folders, each an
   * lstat that failed with ENOENT, a thrown exception, a mkdir and a second lstat before).
   */
  ensureDir(dir: string, create: boolean, deferParentSync = false): void {
    if (this.checkedDirs.has(dir)) return;
    if (create) {
      let made = true;
      try {
        fs.mkdirSync(dir, { mode: 0o755 });
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') throw fileError(dir, err, 'mkdir');
        made = false;
      }
      if (made) {
        this.madeDir(dir, deferParentSync);
        return;
      }
    }
    let st: fs.BigIntStats | undefined;
    try {
      st = fs.lstatSync(dir, { bigint: true, throwIfNoEntry: false }) ?? undefined;
    } catch (err) {
      throw new DistbackupError(`${dir}: ${describeError(err)}`, { code: errnoCode(err) ?? 'runtime', path: dir });
    }
    if (st === undefined) {
      throw new DistbackupError(`${dir}: ${describeError({ code: 'ENOENT' })}`, { code: 'ENOENT', path: dir });
    }
    if (st.isSymbolicLink() || !st.isDirectory()) {
      throw new DistbackupError(
        `${dir}: is ${st.isSymbolicLink() ? 'a symlink' : 'not a folder'}; refusing to use this disk`,
        {
          code: 'hostile-disk',
          path: dir,
        },
      );
    }
    if (st.dev !== this.dev) {
      throw new DistbackupError(`${dir}: is on another device than the disk folder; refusing to use this disk`, {
        code: 'hostile-disk',
        path: dir,
      });
    }
    this.checkedDirs.add(dir);
  }

  /** `dir` was just made by a mkdir of this run: checked; its parent fsynced now or by syncNewDirs. */
  private madeDir(dir: string, deferParentSync: boolean): void {
    if (deferParentSync) this.unsyncedParents.add(path.dirname(dir));
    else fsyncDir(path.dirname(dir));
    this.checkedDirs.add(dir);
  }

  /**
   * `distbackup-objects/<abc>` for `hash`, checked (and created when `create`). A folder created
   * here is not durable until `syncNewDirs()`: the copy pipeline fsyncs its parent once per
   * commit group (with the prefix folders themselves) instead of once per new folder.
   */
  prefixDir(hash: string, create: boolean): string {
    const dir = this.prefixPath(hash);
    this.ensureDir(dir, create, true);
    return dir;
  }

  /**
   * `distbackup-objects/<abc>`: joined as strings for a well-formed hash (path.join's
   * normalising was a tenth of a verify's main thread over 30,000 small objects), else by
   * path.join as before.
   */
  private prefixPath(hash: string): string {
    return HASH_RE.test(hash) ? `${this.objectsDir}/${hash.slice(0, 3)}` : path.join(this.objectsDir, hash.slice(0, 3));
  }

  /** The prefix folder of `hash`, and whether this run has checked (or made) it already. */
  prefixDirState(hash: string): { dir: string; checked: boolean } {
    const dir = path.join(this.objectsDir, hash.slice(0, 3));
    return { dir, checked: this.checkedDirs.has(dir) };
  }

  /**
   * The prefix folder of `hash` was made by a mkdir of this run on another thread (the copy's
   * small-file lane): checked, and made durable by the next `syncNewDirs()`, as by `prefixDir`.
   */
  madePrefixDir(hash: string): void {
    this.madeDir(path.join(this.objectsDir, hash.slice(0, 3)), true);
  }

  /** fsync the folders that gained a prefix folder since the last call (errors thrown). */
  syncNewDirs(): void {
    for (const d of [...this.unsyncedParents]) {
      fsyncDir(d);
      this.unsyncedParents.delete(d);
    }
  }

  objectPath(hash: string): string {
    return HASH_RE.test(hash)
      ? `${this.objectsDir}/${hash.slice(0, 3)}/${hash}`
      : path.join(this.objectsDir, hash.slice(0, 3), hash);
  }

  quarantineDir(): string {
    const dir = path.join(this.objectsDir, QUARANTINE_DIR);
    this.ensureDir(dir, true);
    return dir;
  }

  /**
   * List every object: names and sizes from lstat, never following a link. A prefix folder that
   * is a symlink or on another device is reported in `ignored` and not entered.
   */
  listObjects(): DiskListing {
    const objects: DiskObject[] = [];
    const ignored: string[] = [];
    for (const e of fs.readdirSync(this.objectsDir, { withFileTypes: true })) {
      if (e.name === TMP_DIR || e.name === QUARANTINE_DIR) continue;
      const dir = path.join(this.objectsDir, e.name);
      if (!PREFIX_RE.test(e.name) || !e.isDirectory()) {
        ignored.push(dir);
        continue;
      }
      try {
        this.ensureDir(dir, false);
      } catch {
        ignored.push(dir);
        continue;
      }
      for (const f of fs.readdirSync(dir)) {
        const p = path.join(dir, f);
        if (!HASH_RE.test(f) || !f.startsWith(e.name)) {
          ignored.push(p);
          continue;
        }
        let st: fs.BigIntStats;
        try {
          st = fs.lstatSync(p, { bigint: true });
        } catch (err) {
          // Removed while listing; any other failure (EIO) must not read as the object gone.
          if (errnoCode(err) === 'ENOENT') continue;
          throw fileError(p, err, 'cannot list');
        }
        if (!st.isFile() || st.dev !== this.dev) {
          ignored.push(p);
          continue;
        }
        objects.push({ hash: f, sizeBytes: Number(st.size) });
      }
    }
    return { objects, ignored };
  }

  /**
   * The same listing as `listObjects`, streamed: one sorted chunk per prefix folder, in hash
   * order, so that a caller merging it with the catalogue holds one folder at a time (a disk of
   * ten million objects never becomes ten million strings in memory). Up to `concurrency`
   * folders are read ahead at once: on a cold cache each folder costs a disk read, and a deep
   * queue lets the device serve them in fewer passes. The sizes come from one synchronous lstat
   * per entry: a promise per file cost several times more CPU than the lstat itself (3,000
   * objects: 330 ms of listing against under 100 ms). An abort of `signal` throws (code
   * `interrupted`) between folders: a listing cut short must never read as objects missing.
   */
  async *listObjectChunks(concurrency = 16, signal?: AbortSignal): AsyncGenerator<DiskListing, void, undefined> {
    const top: DiskListing = { objects: [], ignored: [] };
    const dirs: string[] = [];
    for (const e of fs.readdirSync(this.objectsDir, { withFileTypes: true })) {
      if (e.name === TMP_DIR || e.name === QUARANTINE_DIR) continue;
      const dir = path.join(this.objectsDir, e.name);
      if (!PREFIX_RE.test(e.name) || !e.isDirectory()) {
        top.ignored.push(dir);
        continue;
      }
      try {
        this.ensureDir(dir, false);
      } catch {
        top.ignored.push(dir);
        continue;
      }
      dirs.push(e.name);
    }
    dirs.sort();
    if (top.ignored.length > 0) yield top;
    const dev = Number(this.dev);
    const readFolder = async (prefix: string): Promise<DiskListing> => {
      const dir = path.join(this.objectsDir, prefix);
      const names = (await fs.promises.readdir(dir)).sort();
      const chunk: { objects: DiskObject[]; ignored: string[] } = { objects: [], ignored: [] };
      for (const f of names) {
        const p = path.join(dir, f);
        if (!HASH_RE.test(f) || !f.startsWith(prefix)) {
          chunk.ignored.push(p);
          continue;
        }
        const st = fs.lstatSync(p, { throwIfNoEntry: false });
        if (st === undefined) continue; // removed while listing
        if (!st.isFile() || st.dev !== dev) chunk.ignored.push(p);
        else chunk.objects.push({ hash: f, sizeBytes: st.size });
      }
      return chunk;
    };
    // Ordered read-ahead: folder i is yielded while folders i+1 … i+concurrency-1 are read.
    const ahead: Promise<DiskListing>[] = [];
    let next = 0;
    const fill = (): void => {
      while (ahead.length < Math.max(1, concurrency) && next < dirs.length) {
        const p = readFolder(dirs[next++] ?? '');
        p.catch(() => {}); // awaited in order below; a failure is thrown there
        ahead.push(p);
      }
    };
    fill();
    for (let p = ahead.shift(); p !== undefined; p = ahead.shift()) {
      if (signal?.aborted === true) {
        throw new DistbackupError(`${this.root}: interrupted while listing the disk; nothing was changed`, {
          code: 'interrupted',
          path: this.root,
        });
      }
      const chunk = await p;
      fill();
      yield chunk;
    }
  }

  /**
   * Remove what an interrupted run left in `.tmp/`: regular files and links only (unlinking a
   * link never touches its target); sub-folders are left alone. Returns the count removed.
   */
  emptyTmp(): number {
    if (!fs.existsSync(this.tmpDir)) return 0;
    this.ensureDir(this.tmpDir, false);
    let n = 0;
    for (const e of fs.readdirSync(this.tmpDir)) {
      const p = path.join(this.tmpDir, e);
      const st = fs.lstatSync(p, { bigint: true });
      if (st.isFile() || st.isSymbolicLink()) {
        fs.unlinkSync(p);
        n += 1;
      }
    }
    if (n > 0) fsyncDir(this.tmpDir);
    return n;
  }

  /**
   * Unlink the object `hash` if it is a regular file on this disk (checked with lstat first).
   * Returns false when it was already gone; throws when it is something else.
   */
  unlinkObject(hash: string): boolean {
    if (!HASH_RE.test(hash)) throw new DistbackupError(`refusing to delete '${hash}': not an object name`);
    const dir = path.join(this.objectsDir, hash.slice(0, 3));
    this.ensureDir(dir, false);
    const p = path.join(dir, hash);
    let st: fs.BigIntStats;
    try {
      st = fs.lstatSync(p, { bigint: true });
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw err;
    }
    if (!st.isFile() || st.dev !== this.dev) {
      throw new DistbackupError(`${p}: not a regular file on the disk; refusing to delete it`, {
        code: 'hostile-disk',
        path: p,
      });
    }
    fs.unlinkSync(p);
    return true;
  }

  /** fsync the prefix folder `prefix` (3 hex) after unlinks in it, when it exists. */
  fsyncPrefix(prefix: string): void {
    if (!PREFIX_RE.test(prefix)) return;
    const dir = path.join(this.objectsDir, prefix);
    if (!fs.existsSync(dir)) return;
    this.ensureDir(dir, false);
    fsyncDir(dir);
  }

  /**
   * Remove temp files an interrupted run left in the disk folder (`.distbackup.sqlite.<hex>.tmp`
   * and the like, written by the atomic writes of the catalogue copy, manifest and script).
   */
  cleanRootTemps(): number {
    let n = 0;
    for (const e of fs.readdirSync(this.root)) {
      if (!/^\.distbackup[-.a-z]*\.[0-9a-f]{12}\.tmp(-journal|-wal|-shm)?$/.test(e)) continue;
      const p = path.join(this.root, e);
      const st = fs.lstatSync(p);
      if (st.isFile() || st.isSymbolicLink()) {
        fs.unlinkSync(p);
        n += 1;
      }
    }
    if (n > 0) fsyncDir(this.root);
    return n;
  }

  /** Move an object that is not what its name says into `.quarantine/` (never deleted). */
  quarantine(hash: string): string {
    const q = this.quarantineDir();
    const to = path.join(q, `${hash}.${Date.now()}`);
    fs.renameSync(this.objectPath(hash), to);
    fsyncDir(q);
    fsyncDir(path.dirname(this.objectPath(hash)));
    return to;
  }
}
