/**
 * The durability points of a restore: files and folder entries written since the last point
 * are made durable at once, then the restore state records them, so that a state entry never
 * names a file a power cut could take back.
 *
 * How: one syncfs(2) of DEST's filesystem for a big batch (coreutils `sync -f`; the kernel
 * reports write-back errors from syncfs since 5.8), an fsync per file and folder for a small
 * one, and always an fsync per file and folder where syncfs is not known to be durable
 * (`disk/fsinfo.ts` `syncfsDurable`): on FUSE (exfat-fuse, fusefat, ntfs-3g) syncfs does not
 * reach the daemon, fsync does; `DISTBACKUP_FSYNC=file` asks for it too. When making a batch durable fails, nothing of it is
 * recorded: its files (all written by this run under names it created) are removed, the
 * records waiting in the state are dropped, and the error stops the run; the next run redoes
 * the batch. Main thread only.
 */
import * as fs from 'node:fs';
import type { RestoreState } from '../catalog/restore-state.js';
import { fsyncDir } from '../core/durable.js';
import { DistbackupError, describeError, errnoCode } from '../core/errors.js';
import { displayPath } from '../core/vpath.js';
import { syncfsDurable } from '../disk/fsinfo.js';
import { syncfs } from '../pipeline/copy-io.js';
import type { DestTree } from './dest-tree.js';

/**
 * Files written between two durability points: the batch is made durable at once (syncfs of
 * DEST's filesystem, else an fsync per file and folder), then the state records it. An fsync
 * per file made 5,000 small files take 22 s against 0.9 s for `cp -a && sync`; one syncfs per
 * batch costs one journal commit. 10,000 files or 1 GiB bounds the work redone after a power cut.
 */
const BATCH_FILES = 10_000;
const BATCH_BYTES = 1024 ** 3;
/**
 * Up to this many files (and bytes not written back yet), a batch is fsynced file by file rather
 * than by syncfs. Files whose data an early fdatasync already wrote (`file-writer.ts`) leave only
 * their inode to write: 16 files of 64 MiB are 16 small fsyncs, where a syncfs would also wait
 * for every other writer's dirty data on the filesystem.
 */
const SMALL_BATCH_FILES = 64;
const SMALL_BATCH_BYTES = 64 * 1024 * 1024;

/** What was written since the last durability point, and how to make it durable. */
export class DurableBatch {
  private files: Buffer[] = [];
  private found: Buffer[] = [];
  private dirs = new Map<string, Buffer>();
  private bytes = 0;
  /** Bytes of the batch's files whose data was not written back early. */
  private dirtyBytes = 0;
  /** Whether syncfs can serve: false on FUSE, or where `sync -f` is missing (undefined: not known yet). */
  private syncfsUsable: boolean | undefined;

  constructor(private readonly tree: DestTree) {}

  /**
   * A file written at `file` (undefined: linked, nothing of ours to fsync) in folder `parent`;
   * `writtenBack`: its data was fdatasynced already, only its inode and entry remain.
   */
  add(file: Buffer | undefined, parent: Buffer, sizeBytes: number, writtenBack = false): void {
    if (file !== undefined) this.files.push(file);
    this.dirs.set(parent.toString('latin1'), parent);
    this.bytes += sizeBytes;
    if (!writtenBack) this.dirtyBytes += sizeBytes;
  }

  /** A file found in place with the right content (not ours: fsynced, never removed). */
  addFound(file: Buffer, parent: Buffer): void {
    this.found.push(file);
    this.dirs.set(parent.toString('latin1'), parent);
  }

  /** Whether the batch is big enough to be committed now. */
  get full(): boolean {
    return this.files.length >= BATCH_FILES || this.bytes >= BATCH_BYTES;
  }

  /**
   * Durability point: the batch's files and folder entries reach the disk, then `state`
   * records them. On a failure nothing of the batch is recorded (see the module comment).
   */
  async commit(state: RestoreState): Promise<void> {
    const files = this.files;
    const found = this.found;
    const dirs = this.dirs;
    // A folder created since the last point is durable once its parent's entry is.
    for (const d of this.tree.takeNewDirs()) {
      const parent = d.subarray(0, d.lastIndexOf(0x2f));
      dirs.set(parent.toString('latin1'), parent);
    }
    const small = files.length <= SMALL_BATCH_FILES && this.dirtyBytes <= SMALL_BATCH_BYTES;
    this.files = [];
    this.found = [];
    this.dirs = new Map();
    this.bytes = 0;
    this.dirtyBytes = 0;
    try {
      // A small batch is cheaper to fsync file by file than to flush the whole filesystem
      // (syncfs also writes back every other process's dirty data on it).
      if ((files.length > 0 || found.length > 0 || dirs.size > 0) && (small || !(await this.syncfs()))) {
        for (const f of files) fsyncFile(this.tree.sp(f));
        for (const f of found) fsyncFile(this.tree.sp(f));
        for (const d of dirs.values()) fsyncDir(this.tree.sp(d));
      } else {
        // DEST's syncfs reaches DEST's filesystem only: what went to a mount below it is fsynced.
        const foreign = (p: Buffer): boolean => this.tree.foreign(p.subarray(0, p.lastIndexOf(0x2f)));
        for (const f of files) if (foreign(f)) fsyncFile(this.tree.sp(f));
        for (const f of found) if (foreign(f)) fsyncFile(this.tree.sp(f));
        for (const d of dirs.values()) if (this.tree.foreign(d)) fsyncDir(this.tree.sp(d));
      }
    } catch (err) {
      this.abandonFiles(state, files, err);
    }
    state.commit();
  }

  /**
   * The batch cannot be made durable (`err`: an early write-back of one of its files failed, see
   * `file-writer.ts`): nothing of it is recorded, its files are removed, and the run stops with
   * the error naming DEST (see the module comment). Always throws.
   */
  abandon(state: RestoreState, err: unknown, file?: string): never {
    const files = this.files;
    this.files = [];
    this.found = [];
    this.dirs = new Map();
    this.bytes = 0;
    this.dirtyBytes = 0;
    this.abandonFiles(state, files, err, file);
  }

  /** `file`: the file whose write-back failed, when known (named in the line). */
  private abandonFiles(state: RestoreState, files: Buffer[], err: unknown, file?: string): never {
    state.discardPending();
    for (const f of files) {
      try {
        fs.rmSync(this.tree.sp(f), { force: true });
      } catch {
        // unreachable now: the next run finds it unrecorded and checks it by its hash
      }
    }
    // describeError: "EIO (input/output error)" for a syncfs or fsync error, whatever wrapped it.
    throw new DistbackupError(
      `${displayPath(this.tree.dest)}: cannot make the restored files durable: ${file === undefined ? '' : `write-back of ${file}: `}${describeError(err)}; the last ${files.length} files were not recorded and were removed: run the restore again`,
      { code: errnoCode(err) ?? 'runtime', path: this.tree.dest.toString(), cause: err },
    );
  }

  /**
   * syncfs(2) of DEST's filesystem (`pipeline/copy-io.ts`). True when done; false when it
   * cannot serve (FUSE, an unknown filesystem, no `sync -f`): then the caller fsyncs file by
   * file. Throws when the kernel reports a write-back error.
   */
  private async syncfs(): Promise<boolean> {
    const dest = this.tree.dest.toString();
    this.syncfsUsable ??= syncfsDurable(dest);
    if (!this.syncfsUsable) return false;
    try {
      await syncfs(dest);
      return true;
    } catch (err) {
      if (errnoCode(err) !== 'ENOSYS') throw err;
      this.syncfsUsable = false;
      return false;
    }
  }
}

const FSYNC_OPEN = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

/**
 * fsync the regular file at `p` (a path the kernel accepts), never through a symlink; errors
 * thrown. A file whose restored mode lets its owner not read it (000, 200: a restore not run as
 * root cannot open it) is opened with its owner's read bit for the moment, then given its mode
 * back.
 */
function fsyncFile(p: Buffer): void {
  let fd: number;
  let mode: number | undefined;
  try {
    fd = fs.openSync(p, FSYNC_OPEN);
  } catch (err) {
    const st = errnoCode(err) === 'EACCES' ? fs.lstatSync(p) : undefined;
    if (st === undefined || !st.isFile() || (st.mode & 0o400) !== 0) throw err;
    mode = st.mode & 0o7777;
    fs.chmodSync(p, mode | 0o400);
    fd = fs.openSync(p, FSYNC_OPEN);
  }
  try {
    if (mode !== undefined) fs.fchmodSync(fd, mode);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
