/**
 * The durability points of a restore: files and folder entries written since the last point
 * are made durable at once (syncfs of DEST's filesystem, else an fsync per file and folder),
 * then the restore state records them, so that a state entry never names a file a power cut
 * could take back. Main thread only.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import type { RestoreState } from '../catalog/restore-state.js';
import { errnoCode } from '../core/errors.js';
import type { DestTree } from './dest-tree.js';

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

/** What was written since the last durability point, and how to make it durable. */
export class DurableBatch {
  private files: Buffer[] = [];
  private dirs = new Map<string, Buffer>();
  private bytes = 0;
  private syncfsWorks: boolean | undefined;

  constructor(private readonly tree: DestTree) {}

  /** A file written at `file` (undefined: linked, nothing of ours to fsync) in folder `parent`. */
  add(file: Buffer | undefined, parent: Buffer, sizeBytes: number): void {
    if (file !== undefined) this.files.push(file);
    this.dirs.set(parent.toString('latin1'), parent);
    this.bytes += sizeBytes;
  }

  /** Whether the batch is big enough to be committed now. */
  get full(): boolean {
    return this.files.length >= BATCH_FILES || this.bytes >= BATCH_BYTES;
  }

  /**
   * Durability point: the batch's files and folder entries reach the disk, then `state`
   * records them (a state entry never names a file a power cut could take back).
   */
  commit(state: RestoreState): void {
    // A small batch is cheaper to fsync file by file than to flush the whole filesystem
    // (syncfs also writes back every other process's dirty data on it).
    const small = this.files.length <= SMALL_BATCH_FILES && this.bytes <= SMALL_BATCH_BYTES;
    const any = this.files.length > 0 || this.dirs.size > 0;
    if (any && (small || !this.syncfs())) {
      for (const f of this.files) fsyncPath(this.tree.sp(f), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      for (const d of this.dirs.values()) fsyncPath(this.tree.sp(d), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    }
    this.files = [];
    this.dirs = new Map();
    this.bytes = 0;
    state.commit();
  }

  /** syncfs(2) of DEST's filesystem through coreutils `sync -f`; false when unavailable. */
  private syncfs(): boolean {
    if (this.syncfsWorks === false) return false;
    const r = spawnSync('sync', ['-f', this.tree.dest.toString()], { stdio: 'ignore' });
    this.syncfsWorks = r.status === 0;
    return this.syncfsWorks;
  }
}

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
