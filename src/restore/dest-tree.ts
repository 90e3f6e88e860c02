/**
 * The folders of DEST as one run sees them: paths the kernel accepts for targets of any length
 * (through a folder descriptor past PATH_MAX, `pipeline/deep-path.ts`), and the folders on the
 * way to a target, checked (every existing ancestor lstat'ed: a symlink or a non-folder refuses
 * the path) or created 0700. Remembers which folders this run created (nothing else can be in
 * them) and which no catalogue entry describes (given 0755 at the end). Main thread only.
 */
import * as fs from 'node:fs';
import { describeError, errnoCode } from '../core/errors.js';
import { displayPath } from '../core/vpath.js';
import { DIRECT_MAX, type DirReach, reachDir } from '../pipeline/deep-path.js';
import { PathRefused } from './errors.js';
import { joinTarget } from './paths.js';

/** lstat of `p`, undefined when it does not exist. */
export function lstatOrUndefined(p: Buffer): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** DEST's folders during one run (see the module comment). */
export class DestTree {
  /** Folders checked in this run (latin1 keys of their paths). */
  private readonly knownDirs = new Set<string>();
  /** Folders this run created (latin1 keys): nothing else can be in them. */
  private readonly createdDirs = new Set<string>();
  /** Folders this run created that no catalogue entry describes (given 0755 at the end). */
  private readonly implicitDirs = new Map<string, Buffer>();
  /** Folders created since the last `takeNewDirs()`: their entries are not durable yet. */
  private newDirs: Buffer[] = [];
  /** Folders checked in this run that are on another filesystem than DEST (a mount below it). */
  private readonly foreignDirs = new Set<string>();
  /** DEST's device, once looked at. */
  private destDev: number | undefined;
  /** The folder reached last through a descriptor (paths longer than PATH_MAX), kept open. */
  private reachCache: { key: string; reach: DirReach } | undefined;

  /** The restore state's folder in DEST (see `reserve`). */
  private stateDir: { dev: number; ino: number } | undefined;

  /** `dest`: the restore folder, absolute; replaced by its real path once it exists. */
  constructor(public dest: Buffer) {}

  /** The folder `st` (DEST's restore state) is never a folder of a restored path, by any name. */
  reserve(st: fs.Stats): void {
    this.stateDir = { dev: st.dev, ino: st.ino };
  }

  /**
   * A path for `abs` (absolute, under DEST or an --existing folder) that the kernel accepts: itself
   * when short, else through a descriptor of its folder (`/proc/self/fd/N/name`). Valid until the
   * next call for another folder: use it at once.
   */
  sp(abs: Buffer): Buffer {
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

  /** Close the folder descriptor kept for long paths. */
  close(): void {
    this.reachCache?.reach.close();
    this.reachCache = undefined;
  }

  /** lstat for a dry run: undefined when the path or a folder on its way is missing or unreadable. */
  peek(p: Buffer): fs.Stats | undefined {
    try {
      return lstatOrUndefined(this.sp(p));
    } catch {
      return undefined;
    }
  }

  /**
   * Make sure `parts[0..n)` exist as real folders under DEST, creating missing ones 0700.
   * Returns the folder's path. Throws PathRefused when an ancestor is a symlink or not a folder.
   */
  ensureDirs(parts: readonly Buffer[], n: number): Buffer {
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
          this.newDirs.push(cur);
        } catch (err) {
          if (errnoCode(err) !== 'EEXIST') throw new PathRefused(`cannot create folder: ${describeError(err)}`);
        }
        st = fs.lstatSync(this.sp(cur));
      }
      if (st.isSymbolicLink()) throw new PathRefused(`${displayPath(cur)} is a symlink; refusing to write through it`);
      if (!st.isDirectory()) throw new PathRefused(`${displayPath(cur)} is not a folder`);
      // Another name of the restore state's folder (FAT's short alias DISTBA~1, a case or a
      // spelling paths.ts did not foresee): the same folder, never written into.
      if (i === 0 && this.stateDir !== undefined && st.dev === this.stateDir.dev && st.ino === this.stateDir.ino) {
        throw new PathRefused(`${displayPath(cur)} is the restore state's folder under another name`);
      }
      this.destDev ??= fs.statSync(this.sp(this.dest)).dev;
      if (st.dev !== this.destDev) this.foreignDirs.add(key);
      this.knownDirs.add(key);
    }
    return cur;
  }

  /**
   * Whether the folder `dir` (one `ensureDirs` returned) is on another filesystem than DEST: a
   * syncfs of DEST does not make its files durable, and the small-file lane does not write there.
   */
  foreign(dir: Buffer): boolean {
    return this.foreignDirs.size > 0 && this.foreignDirs.has(dir.toString('latin1'));
  }

  /** The folders created since the last call (for the next durability point). */
  takeNewDirs(): Buffer[] {
    const out = this.newDirs;
    this.newDirs = [];
    return out;
  }

  /** Whether this run created the folder `dir` (so nothing but what this run put there is in it). */
  created(dir: Buffer): boolean {
    return this.createdDirs.has(dir.toString('latin1'));
  }

  /** The folder `dir` is a catalogue entry: it gets the catalogue's mode, not 0755. */
  described(dir: Buffer): void {
    this.implicitDirs.delete(dir.toString('latin1'));
  }

  /** Forget which folders were checked (symlinks may now exist: never trust a cached folder again). */
  forgetChecked(): void {
    this.knownDirs.clear();
  }

  /** Open folder `p` without following a symlink and run `fn` on its fd. */
  withDir(p: Buffer, fn: (fd: number) => void): void {
    const fd = fs.openSync(this.sp(p), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
    try {
      fn(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Give 0755 to the folders this run created that no catalogue entry describes, deepest first. */
  openImplicitDirs(): void {
    for (const [, p] of [...this.implicitDirs].sort((a, b) => (a[0] < b[0] ? 1 : -1))) {
      try {
        this.withDir(p, (fd) => fs.fchmodSync(fd, 0o755));
      } catch {
        // best effort: the folder stays 0700
      }
    }
  }
}
