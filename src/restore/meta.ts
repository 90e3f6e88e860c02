/**
 * Metadata of restored entries: mode (special bits stripped), owner when root, and mtime. A
 * filesystem that cannot keep modes or times (FAT over FUSE answers ENOSYS) gets one warning,
 * not an error per file: the content is what matters there. `applyMeta` runs on any thread (the
 * small-file lane's too, small-files.ts); MetaWriter, which warns, on the main thread only.
 */
import * as fs from 'node:fs';
import type { RestoreTodo } from '../catalog/restore-state.js';
import { errnoCode } from '../core/errors.js';
import type { DestTree } from './dest-tree.js';

/** Errors of a filesystem that cannot keep a mode or a time at all (fusefat: ENOSYS). */
const UNSUPPORTED = new Set(['ENOSYS', 'ENOTSUP', 'EOPNOTSUPP']);
const MODES_LOST = 'modes are not preserved on this filesystem (FAT or exFAT?)';
const TIMES_LOST = 'modification times are not preserved on this filesystem';

/** Nanoseconds since the epoch as the seconds utimes takes (µs precision, what a double keeps). */
export function secondsOf(ns: bigint): number {
  // Node and libuv keep microseconds and truncate: aim at the middle of the microsecond so the
  // double rounding never lands one below (measured: 753244 µs came back as 753243).
  return (Number(ns / 1000n) + 0.5) / 1e6;
}

/** Whether this process may give files their owners. */
const IS_ROOT = process.getuid?.() === 0;

/** What a filesystem could not keep of one entry's metadata. */
export interface MetaLost {
  modes?: true;
  times?: true;
}

/**
 * Mode, owner when root, and times of `t` on the open `fd`; with `checkMode`, reads the mode back
 * (does this filesystem keep modes?). Returns what the filesystem cannot keep; other errors are
 * thrown. Any thread.
 */
export function applyMeta(
  fd: number,
  t: Pick<RestoreTodo, 'mode' | 'uid' | 'gid' | 'mtimeNs'>,
  checkMode: boolean,
): MetaLost {
  const lost: MetaLost = {};
  if (IS_ROOT) {
    try {
      fs.fchownSync(fd, t.uid, t.gid);
    } catch {
      // a filesystem without owners (exFAT, FAT)
    }
  }
  try {
    fs.fchmodSync(fd, t.mode & 0o777);
    if (checkMode && (fs.fstatSync(fd).mode & 0o777) !== (t.mode & 0o777)) lost.modes = true;
  } catch (err) {
    if (!UNSUPPORTED.has(errnoCode(err) ?? '')) throw err;
    lost.modes = true;
  }
  const s = secondsOf(t.mtimeNs);
  try {
    fs.futimesSync(fd, s, s);
  } catch (err) {
    if (!UNSUPPORTED.has(errnoCode(err) ?? '')) throw err;
    lost.times = true;
  }
  return lost;
}

/** Sets modes, owners and times for one run; says through `warn` what the filesystem cannot keep. */
export class MetaWriter {
  /** Whether this process may give files their owners. */
  readonly isRoot = IS_ROOT;
  private modesChecked = false;
  /** Whether times must be set again after a file is closed (undefined: not known yet). */
  private timesAfterClose: boolean | undefined;

  constructor(
    private readonly tree: DestTree,
    private readonly warn: (text: string) => void,
  ) {}

  /** Mode, owner when root, and times of `t` on the open fd. */
  apply(fd: number, t: RestoreTodo): void {
    this.report(applyMeta(fd, t, this.takeModeCheck()));
  }

  /**
   * Whether the next file should read its mode back (`applyMeta`): true once per run, for the
   * first file; `again` after a file that was to check it failed before it did.
   */
  takeModeCheck(again = false): boolean {
    if (again) this.modesChecked = false;
    const first = !this.modesChecked;
    this.modesChecked = true;
    return first;
  }

  /** One warning for each thing `lost` says the filesystem cannot keep. */
  report(lost: MetaLost): void {
    if (lost.modes === true) this.warn(MODES_LOST);
    if (lost.times === true) this.warn(TIMES_LOST);
  }

  /**
   * Some FUSE filesystems (fusefat) write a file's data back when it is closed and stamp the
   * time of that write over the one set on the open file. The first file tells: from then on,
   * the time is set again by path (never following a link) after the file is closed.
   */
  checkTimeKept(target: Buffer, t: RestoreTodo): void {
    if (this.timesAfterClose === false) return;
    const s = secondsOf(t.mtimeNs);
    if (this.timesAfterClose === undefined) {
      const got = fs.lstatSync(this.tree.sp(target)).mtimeMs / 1000;
      // 2 s: FAT keeps even seconds.
      this.timesAfterClose = Math.abs(got - s) > 2;
      if (!this.timesAfterClose) return;
    }
    try {
      fs.lutimesSync(this.tree.sp(target), s, s);
    } catch (err) {
      if (!UNSUPPORTED.has(errnoCode(err) ?? '')) throw err;
      this.warn(TIMES_LOST);
    }
  }
}
