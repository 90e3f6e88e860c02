/**
 * The scan stage of `update`: walks one mapped folder depth-first, one directory at a time, with
 * `readdirSync` + `lstatSync` (NODE20.md: awaiting one `lstat` promise per entry was 10× slower
 * than the synchronous calls, which stay within ~2.5× of `find`). Names stay Buffers end to end
 * (`{ encoding: 'buffer' }`; RELIABILITY.md 16: string readdir collapses distinct non-UTF-8
 * names), stats are bigint (device, inode and nanosecond times exact).
 *
 * The walk yields one `DirScan` per folder, so the caller compares one folder's listing with
 * that folder's catalogue rows and memory is bounded by the largest folder, never the tree.
 * Directories are visited in byte order of their names, so virtual paths come out ascending.
 *
 * What is recorded: regular files, folders (empty ones too), symlinks as symlinks with their
 * target bytes (followed only with follow_symlinks; then a link back to a folder on the current
 * path is a loop and is recorded as a link). FIFOs, sockets and devices are never opened: they
 * are reported in `skipped`. A folder that cannot be read yields `entries: null` and its
 * catalogued files must be kept (RELIABILITY.md 4).
 *
 * Not thread-safe; synchronous I/O on the calling thread, one directory per `next()`.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import type picomatchModule from 'picomatch';
import { describeError, errnoCode } from '../core/errors.js';
import { displayPath, vpathJoin } from '../core/vpath.js';
import { type DirReach, reachDir } from './deep-path.js';

/** Copy settings of one catalogued path (SPEC §5): priority ≥ 0, copy target, cap. */
export interface FileSettings {
  readonly priority: number;
  readonly minCopies: number;
  readonly maxCopies: number;
  /** A trusted SHA-256 (64 lowercase hex) given by the user (a `.meta-inf` sidecar): the file is not read. */
  readonly hash?: string;
}

/** What to do with a folder before it is read. */
export type DirAction =
  /** Read it and record what it holds. */
  | 'read'
  /** Do not read it; keep its catalogued rows as they are (a locked folder, a disk that is away). */
  | 'keep'
  /** Do not record it nor anything below it; catalogued rows there are removed (hidden, skipped). */
  | 'drop';

/** A folder as the policy sees it. `rel` is the path below the mapped folder ('' = the root). */
export interface DirContext {
  readonly vpath: Buffer;
  readonly realPath: Buffer;
  readonly rel: Buffer;
}

/**
 * Per-folder policy of a scan: the plug-in point for path settings and ignore rules
 * (`source set`, `.distbackup.skip`, `.meta-inf` sidecars). The scanner calls, in this order:
 *
 * - `enterDir(dir)` for every folder before it is read (the root included, and catalogued
 *   folders that are no longer listed, so a locked folder on an absent disk is kept, not
 *   removed). A rule file such as `.distbackup.skip` can be checked here with `dir.realPath`.
 * - `listed(dir, names)` (optional) with the folder's whole listing, once it was read.
 * - `filter(dir, name, isDir)` for every entry of a folder that was read: false leaves it out
 *   (and, for a folder, everything below it); its catalogued rows are then removed.
 * - `settingsFor(dir, name)` for every recorded entry: the effective priority, copy target and
 *   cap stored in its row (nearest folder's settings first, as the Python distbackup does).
 *
 * Calls come from one thread, parents before children; a policy may keep a stack of the folders
 * entered (a folder's entries are all filtered before any of its subfolders is entered).
 */
export interface ScanPolicy {
  enterDir(dir: DirContext): DirAction;
  /**
   * Optional: the whole listing of a folder that was read, before its entries are filtered.
   * Lets a policy learn which names sit side by side (a `<file>.meta-inf` next to `<file>`)
   * without one `stat` per entry (an `existsSync` per entry costs ~70 % of the scan's own lstat
   * walk, measured on 50,000 files).
   */
  listed?(dir: DirContext, names: readonly Buffer[]): void;
  filter(dir: DirContext, name: Buffer, isDir: boolean): boolean;
  settingsFor(dir: DirContext, name: Buffer): FileSettings;
  /**
   * Optional: whether symbolic links inside `dir` are followed (a folder's own setting,
   * `source set --follow`/`--nofollow`); the mapping's `followSymlinks` without it.
   */
  follows?(dir: DirContext): boolean;
}

/** Kinds recorded in the catalogue. */
export type EntryKind = 'file' | 'dir' | 'symlink';

/** One recorded entry of a folder. */
export interface ScanEntry {
  readonly name: Buffer;
  readonly kind: EntryKind;
  /** lstat, or the stat of the target when a symlink was followed. */
  readonly stat: fs.BigIntStats;
  /** Target bytes of a symlink (kind `symlink`), else null. */
  readonly linkTarget: Buffer | null;
  /** Reached through a followed symlink (the hash then opens the path without O_NOFOLLOW). */
  readonly followed: boolean;
  /**
   * A symlink that was to be followed but whose target is missing (ENOENT): recorded as the
   * link it is, unless a folder was catalogued here, which is then kept (an unmounted share or
   * disk behind the link reads the same way, see update's compareEntry).
   */
  readonly unreachable?: boolean;
  readonly settings: FileSettings;
}

/** A per-path problem; the run goes on. `path` is the real path, printable. */
export interface ScanProblem {
  readonly path: string;
  readonly error: string;
}

/** One folder's scan. */
export interface DirScan {
  readonly dir: DirContext;
  /** Recorded entries in byte order of name; null when the folder was not read (see `readError`, `kept`). */
  readonly entries: ScanEntry[] | null;
  /** Set when the folder could not be read: its catalogued rows must be kept. */
  readonly readError: string | null;
  /** The policy said `keep`: not read, catalogued rows kept. */
  readonly kept: boolean;
  /**
   * Names present on disk whose catalogued rows must be kept as they are although not in
   * `entries` (lstat failed with something other than ENOENT, a folder the policy keeps).
   * Keys are `name.toString('latin1')` (byte-exact).
   */
  readonly keepNames: ReadonlySet<string>;
  /** Entries left out on purpose (FIFOs, sockets, devices, symlink loops). */
  readonly skipped: ScanProblem[];
  /** Entries that could not be examined. */
  readonly errors: ScanProblem[];
}

/** One mapped folder to scan. */
export interface ScanRoot {
  /** Virtual path of the mapping, e.g. `/photos`. */
  readonly vpath: string;
  readonly realPath: Buffer;
  readonly followSymlinks: boolean;
  /** Virtual paths of mappings nested in this one: their subtrees are theirs, not scanned here. */
  readonly nested: readonly string[];
}

const SLASH = Buffer.from('/');
const EMPTY = Buffer.alloc(0);

function joinReal(dir: Buffer, name: Buffer): Buffer {
  return Buffer.concat([dir, SLASH, name]);
}

function joinRel(rel: Buffer, name: Buffer): Buffer {
  return rel.length === 0 ? name : Buffer.concat([rel, SLASH, name]);
}

function specialKind(st: fs.BigIntStats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'of an unknown file type';
}

interface Frame {
  readonly dir: DirContext;
  /** `dev:ino` of this folder and its ancestors, for loop detection. */
  readonly chain: readonly string[];
}

/**
 * Walk `root` with `policy`; yields one DirScan per folder, the root first, then depth-first in
 * byte order. The root must be a folder (the caller checks that first).
 */
export function* scanTree(root: ScanRoot, policy: ScanPolicy): Generator<DirScan, void, undefined> {
  const nested = new Set(root.nested.map((v) => Buffer.from(v, 'utf8').toString('latin1')));
  const rootDir: DirContext = { vpath: Buffer.from(root.vpath, 'utf8'), realPath: root.realPath, rel: EMPTY };
  const rootAction = policy.enterDir(rootDir);
  if (rootAction !== 'read') {
    yield {
      dir: rootDir,
      entries: rootAction === 'keep' ? null : [],
      readError: null,
      kept: rootAction === 'keep',
      keepNames: new Set(),
      skipped: [],
      errors: [],
    };
    return;
  }
  let rootId = '';
  try {
    const st = fs.statSync(root.realPath, { bigint: true });
    rootId = `${st.dev}:${st.ino}`;
  } catch {}
  const stack: Frame[] = [{ dir: rootDir, chain: [rootId] }];
  for (;;) {
    const frame = stack.pop();
    if (frame === undefined) return;
    const { dir } = frame;
    let names: Buffer[];
    // A folder deeper than PATH_MAX is reached through a descriptor (deep-path.ts); a short
    // one by its path, as before. Every entry below is stat'ed through `reach`.
    let reach: DirReach;
    try {
      reach = reachDir(dir.realPath);
    } catch (err) {
      yield unreadDir(dir, err);
      continue;
    }
    try {
      names = fs.readdirSync(reach.self, { encoding: 'buffer' });
    } catch (err) {
      reach.close();
      yield unreadDir(dir, err);
      continue;
    }
    try {
      yield* scanDir(frame, names, reach, root, policy, nested, stack);
    } finally {
      reach.close();
    }
  }
}

function unreadDir(dir: DirContext, err: unknown): DirScan {
  return {
    dir,
    entries: null,
    readError: `cannot read folder: ${describeError(err)}; its catalogued files are kept`,
    kept: false,
    keepNames: new Set(),
    skipped: [],
    errors: [],
  };
}

/** Examine the listing `names` of `frame`'s folder; yields its DirScan and pushes its subfolders on `stack`. */
function* scanDir(
  frame: Frame,
  names: Buffer[],
  reach: DirReach,
  root: ScanRoot,
  policy: ScanPolicy,
  nested: ReadonlySet<string>,
  stack: Frame[],
): Generator<DirScan, void, undefined> {
  const { dir } = frame;
  names.sort(Buffer.compare);
  policy.listed?.(dir, names);
  const follow = policy.follows?.(dir) ?? root.followSymlinks;
  const entries: ScanEntry[] = [];
  const keepNames = new Set<string>();
  const skipped: ScanProblem[] = [];
  const errors: ScanProblem[] = [];
  const subdirs: Frame[] = [];
  for (const name of names) {
    if (nested.size > 0 && nested.has(vpathJoin(dir.vpath, name).toString('latin1'))) continue;
    // `at` reaches the entry (its real path, or through the folder's descriptor when deep).
    const at = reach.entry(name);
    const real = reach.deep ? joinReal(dir.realPath, name) : at;
    let st: fs.BigIntStats;
    try {
      st = fs.lstatSync(at, { bigint: true });
    } catch (err) {
      // Gone since the readdir: absent, its row goes. Anything else: we do not know, keep it.
      if (errnoCode(err) !== 'ENOENT') {
        keepNames.add(name.toString('latin1'));
        errors.push({ path: displayPath(real), error: describeError(err) });
      }
      continue;
    }
    let kind: EntryKind;
    let linkTarget: Buffer | null = null;
    let followed = false;
    let unreachable = false;
    if (st.isFile()) kind = 'file';
    else if (st.isDirectory()) kind = 'dir';
    else if (st.isSymbolicLink()) {
      kind = 'symlink';
      try {
        linkTarget = fs.readlinkSync(at, { encoding: 'buffer' });
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') {
          keepNames.add(name.toString('latin1'));
          errors.push({ path: displayPath(real), error: describeError(err) });
        }
        continue;
      }
      if (follow) {
        let target: fs.BigIntStats | undefined;
        try {
          target = fs.statSync(at, { bigint: true });
        } catch (err) {
          // A chain of links that loops (ELOOP): recorded as the link it is; dangling (ENOENT):
          // the same, marked. Any other error (EIO, EACCES, ENOTCONN of a dead FUSE daemon): we
          // do not know what is behind it, so what was catalogued at this path is kept.
          const code = errnoCode(err);
          if (code === 'ELOOP') {
            skipped.push({ path: displayPath(real), error: 'symbolic link loop; recorded as a link' });
          } else if (code === 'ENOENT' || code === 'ENOTDIR') {
            unreachable = true;
          } else {
            keepNames.add(name.toString('latin1'));
            errors.push({
              path: displayPath(real),
              error: `cannot follow the symbolic link: ${describeError(err)}; what was catalogued at this path is kept`,
            });
            continue;
          }
        }
        if (target?.isDirectory() === true) {
          if (frame.chain.includes(`${target.dev}:${target.ino}`)) {
            skipped.push({
              path: displayPath(real),
              error: 'symbolic link to a folder above it (a loop); recorded as a link',
            });
          } else {
            kind = 'dir';
            st = target;
            linkTarget = null;
            followed = true;
          }
        } else if (target?.isFile() === true) {
          kind = 'file';
          st = target;
          linkTarget = null;
          followed = true;
        } else if (target !== undefined) {
          skipped.push({ path: displayPath(real), error: `links to ${specialKind(target)}; not read` });
          continue;
        }
      }
    } else {
      skipped.push({ path: displayPath(real), error: `${specialKind(st)}; not read` });
      continue;
    }
    if (!policy.filter(dir, name, kind === 'dir')) continue;
    if (kind === 'dir') {
      const child: DirContext = { vpath: vpathJoin(dir.vpath, name), realPath: real, rel: joinRel(dir.rel, name) };
      const id = `${st.dev}:${st.ino}`;
      if (frame.chain.includes(id)) {
        // A bind mount of an ancestor (or a followed link found above): never descend into a loop.
        skipped.push({ path: displayPath(real), error: 'the same folder as one above it (a loop); not descended' });
        continue;
      }
      const action = policy.enterDir(child);
      if (action === 'drop') continue;
      if (action === 'keep') {
        keepNames.add(name.toString('latin1'));
        continue;
      }
      subdirs.push({ dir: child, chain: [...frame.chain, id] });
    }
    entries.push({
      name,
      kind,
      stat: st,
      linkTarget,
      followed,
      ...(unreachable ? { unreachable } : {}),
      settings: policy.settingsFor(dir, name),
    });
  }
  yield { dir, entries, readError: null, kept: false, keepNames, skipped, errors };
  for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i] as Frame);
}

/** picomatch, loaded when a mapping has globs (~30 ms of CPU a run without globs does not pay). */
function loadPicomatch(): typeof picomatchModule {
  return createRequire(import.meta.url)('picomatch') as typeof picomatchModule;
}

/**
 * The default policy: the mapping's include and exclude globs, with picomatch, on the path
 * relative to the mapped folder (names decoded as UTF-8 for matching only). A glob without a
 * `/` matches the base name at any depth (`*.part`), like gitignore; one with a `/` matches the
 * whole relative path (`cache/**`). Excludes apply to files and folders (an excluded folder's
 * subtree is not read); includes, when given, keep only the files they match (folders are
 * still descended). Every entry gets `settings`.
 */
export function globPolicy(include: readonly string[], exclude: readonly string[], settings: FileSettings): ScanPolicy {
  const compile = (globs: readonly string[]): ((rel: string, base: string) => boolean) | undefined => {
    if (globs.length === 0) return undefined;
    const opts = { dot: true };
    const base = globs.filter((g) => !g.includes('/'));
    const full = globs.filter((g) => g.includes('/')).map((g) => (g.startsWith('/') ? g.slice(1) : g));
    const picomatch = loadPicomatch();
    const mBase = base.length > 0 ? picomatch(base, opts) : undefined;
    const mFull = full.length > 0 ? picomatch(full, opts) : undefined;
    return (rel, name) => (mBase?.(name) ?? false) || (mFull?.(rel) ?? false);
  };
  const inc = compile(include);
  const exc = compile(exclude);
  return {
    enterDir: () => 'read',
    filter: (dir, name, isDir) => {
      if (inc === undefined && exc === undefined) return true;
      const base = name.toString('utf8');
      const rel = dir.rel.length === 0 ? base : `${dir.rel.toString('utf8')}/${base}`;
      if (exc?.(rel, base) === true) return false;
      if (!isDir && inc !== undefined && !inc(rel, base)) return false;
      return true;
    },
    settingsFor: () => settings,
  };
}
