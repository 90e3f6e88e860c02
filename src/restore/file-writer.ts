/**
 * Writing one restored file: the disk's object copied to a temp name beside the target (0600,
 * created O_EXCL|O_NOFOLLOW), its SHA-256 checked (a mismatch is a BadObject: the file is not
 * restored), its metadata set, then linked into place without ever replacing what is there.
 * Files of 1 MiB-1 GiB are copied outside this process (libuv's copyFile or coreutils `cp`, from
 * the descriptor checked) and hashed from the page cache while the next ones are copied (the
 * caller collects the result later through `placed`), bigger ones in
 * 1 MiB chunks whose reads overlap the hashing and writing, small ones on the small-file lane
 * (`small-files.ts`, which `laneTask` prepares files for) when the run has one, else read whole
 * ahead on libuv's pool (`fetch.ts`) and checked before they are written (through one reused
 * buffer when they were not read ahead). Files of 8 MiB and more start their write-back (fdatasync on libuv's pool) as soon as
 * they are written, and get their final name only once it is done. `--link` hard-links the
 * checked object instead. Main thread only.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import type { RestoreTodo } from '../catalog/restore-state.js';
import { writeFully } from '../core/durable.js';
import { DistbackupError, describeError, errnoCode, RefusedError } from '../core/errors.js';
import { sha256Hex } from '../core/sha256.js';
import { displayPath } from '../core/vpath.js';
import type { DiskRoot } from '../disk/disk-root.js';
import { localKernelFs } from '../disk/fsinfo.js';
import { CP_COPY_MIN, CpRunner, ReadBackChecks, readAsync, writeFullyAsync } from '../pipeline/copy-io.js';
import { DIRECT_MAX } from '../pipeline/deep-path.js';
import { type DestTree, lstatOrUndefined } from './dest-tree.js';
import { BadObject, ExistsError, Interrupted, PathRefused, WriteBackError } from './errors.js';
import { FETCH_SLOTS, type Fetched, ObjectFetcher } from './fetch.js';
import type { MetaWriter } from './meta.js';
import { joinTarget } from './paths.js';
import { NOT_OVERWRITTEN, placeFile, TMP_FLAGS, TMP_FLAGS_RW, TMP_MODE } from './place.js';
import { EMPTY_HASH } from './rows.js';
import { objectProblem, type SmallFileResult, type SmallFileTask } from './small-files.js';

/** Read size of the reused buffer for small files: 1 MiB (NODE20.md: readSync into one reused 1 MiB buffer). */
const CHUNK_BYTES = 1024 * 1024;
/**
 * Files from this size up are copied outside this process, and then hashed from the page cache,
 * instead of read, hashed and written through a buffer: by libuv's copyFile below CP_COPY_MIN
 * when the disk is a local in-kernel filesystem (copyInKernel), else by `cp` (copyByCp).
 * Measured on 1 GiB of 64 MiB objects (bench/recovery.ts, cold cache, load 8–11 on 2 cores): the
 * buffer loop spent 4.3 s of system time and 11.5 s of wall time, a copy outside this process
 * plus read-back 1.3 s and 6.0 s (cp -a: 0.55 s and 1.6 s). On those files `cp` and copyFile were
 * even (5 rounds each, load 0.3–1.3: medians 1.37 s and 1.32 s, cp -a 1.23–1.35 s); on 256 files
 * of 2 MiB a `cp` per file (its fork and exec) took 1.24–1.43 s against copyFile's 0.92–0.99 s
 * (and 1.33–1.42 s through the buffered loop). copyFile is read from the checked descriptor's
 * /proc/self/fd name: by the object's name it would follow a link or block on a FIFO swapped in
 * after the check; and since libuv 1.46 copies the size it saw at its start and spins forever on
 * a file that shrinks meanwhile, which a FUSE or network disk could make happen, those disks get
 * `cp`. Below 1 MiB one read and one write are cheaper.
 */
const KERNEL_COPY_MIN = 1024 * 1024;
/**
 * Up to this size a file is copied by `cp` and then read back from the page cache. Bigger files
 * go through a pipelined loop of chunks (the read of the next chunk overlaps the hash and write
 * of this one) that hashes the object as it reads it: the read-back of a file the page cache
 * cannot hold would read it from DEST's disk a second time. When it was a kernel copy in one
 * call, the limit also kept Ctrl-C within a second (Ctrl-C now kills `cp` at once). 2 GiB of
 * 512 MiB files, cold, in turns at load 4-7 (/proc/diskstats for the disk): the chunked loop
 * (256 MiB limit) 5.3-17.5 s with 5-8 s of system time, the kernel copy 3.9-4.5 s with
 * 1.6-1.8 s; 1 GiB of 64 MiB files all through the loop: 4.4-5.2 s against 2.0-2.6 s with the
 * kernel copy.
 */
const KERNEL_COPY_MAX = 1024 * 1024 * 1024;
/**
 * Chunk of that loop. 4 MiB chunks spent 2-3 times the system time of 1 MiB ones in the kernel's
 * copies to and from the page cache: 2 GiB of 512 MiB files through the loop, in turns at load
 * 6-7: 12.7-17.5 s (5.1-7.8 s of system time) against 7.7-9.8 s (3.5-4.0 s); one 512 MiB file
 * read, hashed and written with an fdatasync every 64 MiB: 1.7-2.2 s against 0.8-1.1 s.
 */
const BIG_CHUNK_BYTES = 1024 * 1024;
/**
 * Files from this size up start their write-back as soon as they are written: an fdatasync on
 * libuv's pool while this thread hashes them and the kernel copies the next file, so the
 * durability point at the end of the batch (`batch.ts`, one syncfs) finds little left to write.
 * The device writes while we copy instead of after. 256 MiB of 64 MiB files, cold, the old and
 * the new code in turns with `cp -a && sync` (medians): 0.97 s → 0.78 s (cp -a && sync 0.56 s)
 * at load 5, 9 rounds 1.95 s → 1.35 s (0.82 s) at load 17–20; the final sync went from ~300 ms
 * to ~70 ms. Below 8 MiB an fsync per file costs more than it overlaps (5,000 small files: 22 s
 * against 0.9 s, batch.ts), and the final syncfs writes them back together.
 */
const EARLY_SYNC_MIN = 8 * 1024 * 1024;
/** A file written in chunks (over KERNEL_COPY_MAX) starts the write-back of what it wrote every this many bytes. */
const SYNC_EVERY_BYTES = 64 * 1024 * 1024;

/** Whether a file of `sizeBytes` written by FileWriter had its data fdatasynced before it was placed. */
export function writtenBackEarly(sizeBytes: number): boolean {
  return sizeBytes >= EARLY_SYNC_MIN;
}

/**
 * Errors of a filesystem that cannot fdatasync at all: the early write-back is only a head
 * start, so it is skipped there (the batch's own fsync or syncfs still makes the file durable
 * and reports what fails).
 */
const NO_DATASYNC = new Set(['EINVAL', 'ENOSYS', 'ENOTSUP', 'EOPNOTSUPP']);

/**
 * fdatasync(2) of `fd` on libuv's pool. Settles with the error or undefined and never rejects,
 * so it may wait unobserved; the caller keeps `fd` open until it has settled (a descriptor
 * closed under a call in flight could be reused by another file).
 */
function startWriteBack(fd: number): Promise<unknown> {
  return new Promise((resolve) => {
    fs.fdatasync(fd, (err) => resolve(err === null || NO_DATASYNC.has(err.code ?? '') ? undefined : err));
  });
}

/** SHA-256 (hex) of everything in `fd` from its start, reading with `buf`. */
export function hashOfFd(fd: number, buf: Buffer): string {
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

/**
 * SHA-256 (hex) of the regular file at `p` (a path the kernel accepts), never through a symlink,
 * read through `buf` (one of CHUNK_BYTES when not given).
 */
export function hashOfPath(p: Buffer, buf: Buffer = Buffer.allocUnsafe(CHUNK_BYTES)): string {
  // O_NONBLOCK: a FIFO swapped in fails its first read (ESPIPE) instead of blocking the open.
  const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    return hashOfFd(fd, buf);
  } finally {
    fs.closeSync(fd);
  }
}

/** A file copied: its fd, the hash check still running, the write-back under way (see copyObject). */
interface Copied {
  out: number;
  check: Promise<void> | undefined;
  /** Settles with the fdatasync error, or undefined; never rejects. */
  synced: Promise<unknown> | undefined;
}

/** Writes the files of one run from the connected disk's objects (see the module comment). */
export class FileWriter {
  /** The connected disk (none: a run that writes only empty files, folders and links). */
  disk: DiskRoot | undefined;
  private readonly buf = Buffer.allocUnsafe(CHUNK_BYTES);
  private bigBufs: Buffer[] | undefined;
  /** The checks of the copies by `cp`, one after the other (see `checkCopy`). */
  private readonly checks = new ReadBackChecks(CHUNK_BYTES);
  /** The early write-backs of whole files, one after the other (see `writeBack`); never rejects. */
  private syncing: Promise<unknown> = Promise.resolve();
  /** Reads the objects of upcoming small files whole (see `fetch`). */
  private readonly fetcher = new ObjectFetcher(FETCH_SLOTS);
  /** The shell whose `cp` copies the objects copyInKernel does not take (started at the first). */
  private copier: CpRunner | undefined;
  /** Whether the disk's filesystem is local and in the kernel (see copyInKernel), per disk root. */
  private local: { root: string; yes: boolean } | undefined;
  /** Ctrl-C ends the copy in flight at once. */
  private readonly killCopy = (): void => this.copier?.kill();

  constructor(
    private readonly tree: DestTree,
    private readonly meta: MetaWriter,
    private readonly kernelCopyMax: number = KERNEL_COPY_MAX,
    private readonly signal?: AbortSignal | undefined,
  ) {
    signal?.addEventListener('abort', this.killCopy, { once: true });
  }

  /**
   * The check of a copy by `cp`: the SHA-256 of `fd` (read back from the page cache the copy
   * just filled), compared with `t.hash`; rejects with BadObject on a mismatch. Checks run one
   * after the other, after the checks already queued, in 1 MiB reads on libuv's pool hashed on
   * this thread between them: the event loop stays free, so the copy of the next file
   * starts as soon as this one's is done, while its check runs (up to IN_FLIGHT_FILES files
   * ahead, restore.ts). Before, the check ran whole and blocking on this thread once the next
   * copy was started, so a copy that ended first waited for it, and the disk sat idle (1 GiB of
   * 64 MiB files, strace: 100 ms per file between the end of one copy and the start of the next).
   * A hash thread was measured before on the same files at load 10: the same wall time, 0.3 s
   * more CPU (its messages and reads into shared memory cost more than they overlap).
   */
  private checkCopy(fd: number, t: RestoreTodo): Promise<void> {
    return this.checks.check(fd).then((h) => {
      if (h !== t.hash) {
        throw new BadObject(`object ${t.hash} reads back as ${h}: damaged (run 'distbackup verify'); not restored`);
      }
    });
  }

  /**
   * Start reading the object of `t`, a file coming soon, whole on libuv's pool when it is small
   * (below KERNEL_COPY_MIN): give the promise to `writeFile`, which checks and writes those
   * bytes. Undefined for other files, and when the object's prefix folder fails its check
   * (`writeFile` then opens the object itself and reports what it finds).
   */
  fetch(t: RestoreTodo): Promise<Fetched> | undefined {
    if (t.sizeBytes >= KERNEL_COPY_MIN) {
      this.warmObject(t.hash);
      return undefined;
    }
    if (t.sizeBytes <= 0) return undefined;
    const object = this.readableObject(t.hash);
    return object === undefined ? undefined : this.fetcher.fetch(object, t.sizeBytes);
  }

  /**
   * Bring the inode of a big file's object (and its prefix folder) into memory on libuv's pool,
   * ahead of its copy: opening it on this thread, where the copy starts, waited 30 ms per cold
   * object behind the copies and write-backs filling the disk's queue, and the previous file's
   * check waited with it. Only a stat, whose result is not used: the object is still opened
   * without following a link, through a checked prefix folder (`openObject`).
   */
  private warmObject(hash: string): void {
    const disk = this.disk;
    if (disk !== undefined) fs.lstat(disk.objectPath(hash), () => undefined);
  }

  /**
   * The path of the object `hash` when it may be read by path: a disk is connected and the
   * object's prefix folder passes its check. Never through a prefix folder that is a symlink or on
   * another device (a hostile disk).
   */
  private readableObject(hash: string): string | undefined {
    const disk = this.disk;
    if (disk === undefined) return undefined;
    try {
      disk.prefixDir(hash, false);
    } catch {
      return undefined;
    }
    return disk.objectPath(hash);
  }

  /**
   * The task of `t` for the small-file lane (`small-files.ts`); `target` and `replace` as for
   * `writeFile`. Undefined when
   * the file is not the lane's: 1 MiB or more, a path the kernel does not take as it is (longer
   * than PATH_MAX), or an object that cannot be read through a checked prefix folder (no disk, or
   * a prefix folder that is a symlink or on another device: `writeFile` reports what it finds).
   */
  laneTask(t: RestoreTodo, tmp: Buffer, target: Buffer, replace: boolean): SmallFileTask | undefined {
    if (t.sizeBytes >= KERNEL_COPY_MIN) return undefined;
    if (tmp.length > DIRECT_MAX || target.length > DIRECT_MAX) return undefined;
    let object: string | null = null;
    if (t.sizeBytes > 0 || t.hash !== EMPTY_HASH) {
      const readable = this.readableObject(t.hash);
      if (readable === undefined) return undefined;
      object = readable;
    }
    return {
      hash: t.hash,
      sizeBytes: t.sizeBytes,
      object,
      tmp: tmp.toString('latin1'),
      target: target.toString('latin1'),
      replace,
      mode: t.mode,
      uid: t.uid,
      gid: t.gid,
      mtimeNs: t.mtimeNs,
      checkMode: this.meta.takeModeCheck(),
    };
  }

  /**
   * The error of a lane's `task` that was not placed (`r.placed` unset), as `writeFile` would
   * have thrown it: a missing object first checks that the disk is still there (throws when it
   * vanished).
   */
  laneError(task: SmallFileTask, r: SmallFileResult): Error {
    // The file that was to read the mode back did not: the next one does.
    if (task.checkMode) this.meta.takeModeCheck(true);
    if (r.missing === true) return missingObject(this.disk as DiskRoot, task.hash);
    if (r.bad !== undefined) return this.badObject(r.bad);
    if (r.exists !== undefined) return new ExistsError(r.exists);
    const f = r.failed;
    if (f === undefined) return new Error('not restored');
    return Object.assign(
      new Error(f.message),
      { syscall: f.step, path: f.file },
      f.code === undefined ? {} : { code: f.code },
    );
  }

  private aborted(): boolean {
    return this.signal?.aborted === true;
  }

  /** SHA-256 (hex) of the regular file at `p` (a path the kernel accepts), never through a symlink. */
  hashFile(p: Buffer): string {
    return hashOfPath(p, this.buf);
  }

  /**
   * Write `t` under a temp name beside `target`, check it, give it its metadata, link it into
   * place. Resolves once the object is copied; `placed` then settles with undefined once the
   * file is checked and in place, or with the error that kept it out (the temp file removed).
   * Files copied by `cp` are checked meanwhile, and files of EARLY_SYNC_MIN or more wait
   * for their write-back (a failure settles `placed` with a WriteBackError), so the caller can
   * copy the next one; smaller files copied through the buffer are placed when this resolves.
   */
  async writeFile(
    t: RestoreTodo,
    tmp: Buffer,
    target: Buffer,
    replace: boolean,
    fetched?: Promise<Fetched>,
  ): Promise<{ placed: Promise<unknown> }> {
    let copied: Copied;
    try {
      if (fetched !== undefined) copied = this.writeFetched(t, tmp, await fetched);
      else if (t.sizeBytes > 0 || t.hash !== EMPTY_HASH) copied = await this.copyObject(t, tmp);
      else {
        const out = fs.openSync(this.tree.sp(tmp), TMP_FLAGS, TMP_MODE);
        copied = { out, check: undefined, synced: undefined };
      }
    } catch (err) {
      this.removeTmp(tmp);
      throw err;
    }
    const { out, check, synced } = copied;
    const place = async (): Promise<void> => {
      let kept = false;
      try {
        if (check !== undefined) await check;
        // The data is on the disk before the file gets its name (its inode and folder entry
        // become durable at the batch's durability point).
        const err = synced === undefined ? undefined : await synced;
        if (err !== undefined) throw new WriteBackError(err);
        this.meta.apply(out, t);
        placeFile(this.tree.sp(tmp), this.tree.sp(target), replace); // replace: ours, or --overwrite
        kept = true;
      } finally {
        if (synced !== undefined) await synced; // never close a descriptor under a call in flight
        fs.closeSync(out);
        if (!kept) this.removeTmp(tmp);
      }
      this.meta.checkTimeKept(target, t);
    };
    if (check === undefined && synced === undefined) {
      await place();
      return { placed: Promise.resolve(undefined) };
    }
    // Settles, never rejects: the caller collects it later (an unobserved rejection would end the process).
    return {
      placed: place().then(
        () => undefined,
        (err: unknown) => err ?? new Error('not restored'),
      ),
    };
  }

  private removeTmp(tmp: Buffer): void {
    try {
      fs.rmSync(this.tree.sp(tmp), { force: true });
    } catch {
      // the folder itself is gone or unreachable: nothing to clean
    }
  }

  /**
   * Write a small object read whole by `fetch` to the new file `tmp`, once its bytes are checked:
   * the right length (not one byte more or less) and the SHA-256 of its name. Throws BadObject
   * otherwise, naming the object and what was wrong; nothing is created then.
   */
  private writeFetched(t: RestoreTodo, tmp: Buffer, f: Fetched): Copied {
    if (!f.ok) {
      if (f.err.code === 'ENOENT') throw missingObject(this.disk as DiskRoot, t.hash);
      throw this.badObject(`object ${t.hash}: ${describeError(f.err)}`);
    }
    const bad = objectProblem(t.hash, t.sizeBytes, f.bytes);
    if (bad !== undefined) throw new BadObject(bad);
    const out = fs.openSync(this.tree.sp(tmp), TMP_FLAGS, TMP_MODE);
    try {
      writeFully(out, f.bytes, 0);
    } catch (err) {
      fs.closeSync(out);
      throw err;
    }
    return { out, check: undefined, synced: undefined };
  }

  /**
   * Remove the temp name of the file `name` in folder `parent` when an interrupted restore left a
   * file there: one killed while writing it, or between linking it into place and removing the
   * temp name (the file is then in place, and found there with the right content). Call it only
   * for folders this run did not create (nothing else can be in those).
   */
  clearStaleTmp(parent: Buffer, name: Buffer, tmp: Buffer): void {
    for (const stale of [tmp, legacyTmpName(parent, name)]) {
      const old = lstatOrUndefined(this.tree.sp(stale));
      if (old !== undefined) {
        if (!old.isFile()) throw new PathRefused(`${displayPath(stale)} is in the way`);
        fs.unlinkSync(this.tree.sp(stale)); // left by an interrupted restore
      }
    }
  }

  /**
   * Copy the object of `t` from the disk to the new file `tmp`, checking its SHA-256; returns
   * an fd of `tmp` (the caller closes it once `synced` has settled), for a copy by `cp` the check
   * still running (it rejects with BadObject on a mismatch), and for a file of EARLY_SYNC_MIN or
   * more its write-back under way. Throws BadObject on a mismatch found while copying,
   * Interrupted on abort, WriteBackError when a write-back during the copy failed.
   */
  private async copyObject(t: RestoreTodo, tmp: Buffer): Promise<Copied> {
    const disk = this.disk;
    if (disk === undefined) throw new BadObject('no disk connected');
    const inFd = this.openObject(t, disk);
    try {
      const st = this.checkObject(t, inFd);
      const kernelMax = this.kernelCopyMax;
      const outside = t.sizeBytes >= KERNEL_COPY_MIN && t.sizeBytes <= kernelMax;
      // copyFile gives the new file the object's mode until it gets its own: only when that
      // mode shows others no more than the file's own will (0444 objects for 0644 files, not
      // for a 0600 one), never lets them write, and has no special bits.
      const interim = st.mode & 0o7777;
      if (
        outside &&
        t.sizeBytes < CP_COPY_MIN &&
        (interim & 0o7022) === 0 &&
        (interim & ~t.mode & 0o077) === 0 &&
        this.localDisk(disk)
      ) {
        return await this.copyInKernel(t, inFd, tmp);
      }
      const byCp = outside && this.copier?.usable !== false;
      // Readable too when `cp` copies into it: its check reads it back.
      const out = fs.openSync(this.tree.sp(tmp), byCp ? TMP_FLAGS_RW : TMP_FLAGS, TMP_MODE);
      try {
        if (byCp) {
          const copied = await this.copyByCp(t, inFd, out);
          if (copied !== undefined) return copied;
        }
        const got = t.sizeBytes > kernelMax || byCp ? await this.pipedCopy(inFd, out) : this.smallCopy(inFd, out);
        if (got.bytes !== t.sizeBytes || got.hash !== t.hash) {
          throw new BadObject(
            `object ${t.hash} reads back as ${got.hash}: damaged (run 'distbackup verify'); not restored`,
          );
        }
        return { out, check: undefined, synced: this.writeBack(out, t) };
      } catch (err) {
        fs.closeSync(out);
        throw err;
      }
    } finally {
      fs.closeSync(inFd);
    }
  }

  /**
   * Copy the object (`inFd`, opened and checked) to the new file `tmp` in the kernel (libuv's
   * copyFile: copy_file_range, else sendfile), from the descriptor's /proc/self/fd name, which is
   * that same file whatever its name on the disk holds by now; then check the size and start the
   * SHA-256 read-back, as after a copy by `cp`. Only on a local in-kernel filesystem (libuv 1.46
   * copies the size it saw at its start and spins forever if the file shrinks meanwhile, which a
   * FUSE or network disk could make happen).
   */
  private async copyInKernel(t: RestoreTodo, inFd: number, tmp: Buffer): Promise<Copied> {
    // The new file is made here (O_EXCL|O_NOFOLLOW, 0600) and copied into through its
    // descriptor's name too: `sp` names a deep folder by a descriptor that a later call may
    // close and reuse while the copy waits for a pool thread, and no name is looked up again.
    const out = fs.openSync(this.tree.sp(tmp), TMP_FLAGS_RW, TMP_MODE);
    try {
      await new Promise<void>((resolve, reject) => {
        fs.copyFile(`/proc/self/fd/${inFd}`, `/proc/self/fd/${out}`, 0, (err) => (err ? reject(err) : resolve()));
      });
      return this.copied(t, out);
    } catch (err) {
      fs.closeSync(out);
      // The kernel does not say which side failed: a disk that vanished is said so first.
      this.disk?.checkMounted();
      throw err;
    }
  }

  /** Whether the connected disk's filesystem is a local in-kernel one (asked once per disk). */
  private localDisk(disk: DiskRoot): boolean {
    if (this.local?.root !== disk.root) this.local = { root: disk.root, yes: localKernelFs(disk.root) };
    return this.local.yes;
  }

  /**
   * Copy the object (`inFd`, opened and checked) into the new file `out` by `cp`, descriptor to
   * descriptor (CpRunner, as sync's large files): no byte passes through this process, and no
   * name is looked up again, so an object swapped for a link or a FIFO after its check is never
   * read. Then the size is checked and the SHA-256 read back from the page cache while `cp`
   * copies the next file. Undefined when `cp` failed other than by Ctrl-C: `out` is emptied for
   * the buffered loop, which tells a bad object from a failing DEST as before (and takes every
   * file once `cp` is not usable any more: CpRunner.usable).
   */
  private async copyByCp(t: RestoreTodo, inFd: number, out: number): Promise<Copied | undefined> {
    if (this.copier === undefined) {
      this.copier = new CpRunner();
      this.copier.start();
    }
    try {
      await this.copier.copy(inFd, out);
    } catch (err) {
      if (this.aborted()) throw new Interrupted();
      const code = errnoCode(err);
      // DEST full or read-only: that file's error, as the loop would report it.
      if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EROFS') throw err;
      fs.ftruncateSync(out, 0);
      return undefined;
    }
    return this.copied(t, out);
  }

  /**
   * A file copied outside this process into `out`: its size checked, then its SHA-256 read back
   * (`checkCopy`, under way when this returns) and, for a big one, its write-back started.
   */
  private copied(t: RestoreTodo, out: number): Copied {
    const got = fs.fstatSync(out).size;
    if (got !== t.sizeBytes) {
      throw new BadObject(
        `object ${t.hash} copied as ${got} bytes, not ${t.sizeBytes}: damaged (run 'distbackup verify'); not restored`,
      );
    }
    const check = this.checkCopy(out, t);
    // Started last: nothing after it throws, so `out` stays open until it settles.
    return { out, check, synced: this.writeBack(out, t) };
  }

  /** End the copying shell, once nothing is copied any more (idempotent). */
  close(): void {
    this.signal?.removeEventListener('abort', this.killCopy);
    this.copier?.close();
    this.copier = undefined;
  }

  /**
   * The write-back of `out` when `t` is big enough (EARLY_SYNC_MIN), else undefined: started
   * once the write-backs already queued are done. One at a time: each one fills the disk's queue
   * on its own, and since copies now run ahead of their checks, several at once would hold
   * libuv's 4 threads and starve the copy and the checks' reads.
   */
  private writeBack(out: number, t: RestoreTodo): Promise<unknown> | undefined {
    if (!writtenBackEarly(t.sizeBytes)) return undefined;
    const run = this.syncing.then(() => startWriteBack(out));
    this.syncing = run;
    return run;
  }

  /** Open the object of `t` read-only without following a symlink; BadObject when it is not there. */
  private openObject(t: RestoreTodo, disk: DiskRoot): number {
    try {
      disk.prefixDir(t.hash, false);
      // O_NONBLOCK: a FIFO under an object's name (a hostile disk) fails checkObject instead of
      // blocking this thread, and Ctrl-C with it, until something writes to it.
      return fs.openSync(
        disk.objectPath(t.hash),
        fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK,
      );
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || (err instanceof DistbackupError && err.code === 'ENOENT')) {
        throw missingObject(disk, t.hash);
      }
      throw this.badObject(`object ${t.hash}: ${describeError(err)}`);
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
      const n = this.readObject(() => fs.readSync(inFd, this.buf, 0, CHUNK_BYTES, pos));
      if (n === 0) break;
      const chunk = this.buf.subarray(0, n);
      h.update(chunk);
      writeFully(out, chunk, pos);
      pos += n;
    }
    return { bytes: pos, hash: h.digest('hex') };
  }

  /**
   * Big files: BIG_CHUNK_BYTES chunks, the read of the next chunk on libuv's pool while this one is
   * hashed and written; checks the abort signal between chunks. Every SYNC_EVERY_BYTES the
   * write-back of what is written starts (one fdatasync in flight at most), so that the dirty
   * pages of a file of many gigabytes go to the disk during the copy.
   */
  private async pipedCopy(inFd: number, out: number): Promise<{ bytes: number; hash: string }> {
    this.bigBuf();
    const bufs = this.bigBufs as Buffer[];
    const h = createHash('sha256');
    let pos = 0;
    let k = 0;
    const failed = (err: unknown): never => this.objectReadFailed(err);
    let reading = readAsync(inFd, bufs[0] as Buffer, 0, BIG_CHUNK_BYTES, 0).catch(failed);
    // Seen as handled at once: a read failing while a write is awaited (and the reverse) is
    // thrown where it is awaited, never as an unhandled rejection.
    reading.catch(() => {});
    let writing: Promise<void> = Promise.resolve();
    let syncing: Promise<void> | undefined;
    let syncError: unknown;
    let syncedTo = 0;
    try {
      for (;;) {
        const n = await reading;
        if (n === 0) break;
        const chunk = (bufs[k % 3] as Buffer).subarray(0, n);
        k += 1;
        // Three buffers: one being read, one being written, one free for the next read.
        reading = readAsync(inFd, bufs[k % 3] as Buffer, 0, BIG_CHUNK_BYTES, pos + n).catch(failed);
        reading.catch(() => {});
        h.update(chunk);
        await writing;
        writing = writeFullyAsync(out, chunk, pos);
        writing.catch(() => {});
        pos += n;
        if (syncing === undefined && pos - syncedTo >= SYNC_EVERY_BYTES) {
          syncedTo = pos;
          syncing = startWriteBack(out).then((e) => {
            syncError ??= e;
            syncing = undefined;
          });
        }
        if (syncError !== undefined) throw new WriteBackError(syncError);
        if (this.aborted()) throw new Interrupted();
      }
      await writing;
      await syncing;
      if (syncError !== undefined) throw new WriteBackError(syncError);
    } catch (err) {
      // Let the calls in flight end before the caller closes the descriptors.
      await reading.catch(() => 0);
      await writing.catch(() => undefined);
      await syncing;
      throw err;
    }
    return { bytes: pos, hash: h.digest('hex') };
  }

  /**
   * A read of the disk's object failed (EIO of a bad sector, …): the object's fault, so the
   * guidance looks for the file on another disk (restore.ts destFault); but a disk gone (pulled,
   * its FUSE daemon dead) says so and stops the run.
   */
  private objectReadFailed(err: unknown): never {
    throw this.badObject(`cannot read the object: ${describeError(err)}`);
  }

  /**
   * A failure to read the disk's object, as the object's fault; but a disk that is no longer
   * there is said so first (throws), not called a bad object file after file.
   */
  private badObject(message: string): BadObject {
    this.disk?.checkMounted();
    return new BadObject(message);
  }

  /** `read()` of the object, its failure as objectReadFailed's. */
  private readObject(read: () => number): number {
    try {
      return read();
    } catch (err) {
      return this.objectReadFailed(err);
    }
  }

  /**
   * `--link`: check the object's hash, then hard-link it at `target`. The file shares the
   * object's inode, so its mode and mtime are the object's: changing them would change the
   * backup itself (and a writable mode would let an edit in DEST rot the object), so none is set.
   */
  linkObject(t: RestoreTodo, target: Buffer, replace: boolean): void {
    const disk = this.disk;
    if (disk === undefined) throw new BadObject('no disk connected');
    const inFd = this.openObject(t, disk);
    try {
      const st = this.checkObject(t, inFd);
      const h = hashOfFd(inFd, this.buf);
      if (h !== t.hash) {
        throw new BadObject(`object ${t.hash} reads back as ${h}: damaged (run 'distbackup verify'); not restored`);
      }
      if ((st.mode & 0o222) !== 0) {
        // Linked, an edit in DEST would change the backup itself (objects sync writes are 0444;
        // one adopted from elsewhere may not be).
        throw new PathRefused(`object ${t.hash} is writable on the disk; not linked (restore it without --link)`);
      }
      // Replacing: linked at a temp name beside it, then renamed over it, so the file in the
      // way stays until the link is made (a link refused with EXDEV leaves it as it was).
      const slash = target.lastIndexOf(0x2f);
      const at = replace ? tmpName(this.tree.dest, target.subarray(0, slash), target.subarray(slash + 1)) : target;
      if (replace) fs.rmSync(this.tree.sp(at), { force: true });
      try {
        fs.linkSync(disk.objectPath(t.hash), this.tree.sp(at));
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'EEXIST') throw new ExistsError(NOT_OVERWRITTEN);
        if (code === 'EXDEV') {
          throw new RefusedError(`${displayPath(target)}: --link cannot cross filesystems (the disk is ${disk.root})`, {
            code: 'cross-device',
            path: target.toString(),
          });
        }
        throw err;
      }
      // The name linked must be the object just checked (not one swapped in meanwhile).
      const now = fs.lstatSync(this.tree.sp(at));
      if (now.ino !== st.ino || now.dev !== st.dev) {
        fs.unlinkSync(this.tree.sp(at));
        throw new BadObject(`object ${t.hash} changed while it was linked; not restored`);
      }
      if (replace) fs.renameSync(this.tree.sp(at), this.tree.sp(target));
    } finally {
      fs.closeSync(inFd);
    }
  }
}

/**
 * The temp name of the file `name` in folder `parent` of DEST `dest`: `.dsb-<16 hex digits of the
 * SHA-256 of its path below DEST>.part`. From its whole path, not its name alone: on a filesystem
 * that folds case, `Dir/x` and `dir/x` are in one folder, and with one temp name between them the
 * clean-up of one (`clearStaleTmp`) could remove the other's temp file while it was being written,
 * and the other then placed a file that was not its own. Two files of one run never share a temp
 * name; a rerun finds its file's temp name again.
 */
export function tmpName(dest: Buffer, parent: Buffer, name: Buffer): Buffer {
  const rel = Buffer.concat([parent.subarray(dest.length), Buffer.from('/'), name]);
  return joinTarget(parent, [Buffer.from(`.dsb-${sha256Hex(rel).slice(0, 16)}.part`)]);
}

/** The temp name of releases before 2026-11-29 (from the name alone), cleared as stale too. */
function legacyTmpName(parent: Buffer, name: Buffer): Buffer {
  return joinTarget(parent, [Buffer.from(`.dsb-${sha256Hex(name).slice(0, 16)}.part`)]);
}

/** The error of an object that is not on `disk`, once the disk is known to be still there (throws when it vanished). */
function missingObject(disk: DiskRoot, hash: string): BadObject {
  disk.checkMounted();
  return new BadObject(`object ${hash} is not on this disk (run 'distbackup disk refresh')`);
}
