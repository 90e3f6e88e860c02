/**
 * Which catalogue entries a restore considers: the `--filter` globs, whether the restore state
 * already holds an entry, and whether an `--existing` folder holds a file already (the hash
 * decides). Reads only; one run at a time.
 */
import type * as fs from 'node:fs';
import picomatch from 'picomatch';
import { KIND_FOUND_ELSEWHERE, type RestoreState, type RestoreTodo } from '../catalog/restore-state.js';
import { FileKind } from '../catalog/schema.js';
import { type DestTree, lstatOrUndefined } from './dest-tree.js';
import { joinTarget, splitVpath } from './paths.js';
import { linkHash } from './rows.js';

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

/** The selection of one run (see the module comment). */
export class Selection {
  private readonly wanted: ((vpath: Buffer) => boolean) | undefined;

  constructor(
    private readonly state: RestoreState,
    filters: readonly string[],
    /** Resolved `--existing` folders. */
    readonly existingDirs: readonly Buffer[],
    private readonly tree: DestTree,
    /** SHA-256 (hex) of the regular file at a path the kernel accepts. */
    private readonly hashFile: (p: Buffer) => string,
    /**
     * RestoreOptions.keepRestored: a file or link an earlier run restored is done whatever
     * version this catalogue lists (it is kept as it is).
     */
    private readonly keepRestored = false,
  ) {
    this.wanted = vpathFilter(filters);
  }

  /** Whether a checked catalogue entry is one this run (or the survey) considers. */
  selected(t: RestoreTodo): boolean {
    return this.wanted === undefined || this.wanted(t.vpath);
  }

  /** Whether a state record means "done" for `t` in this run. */
  done(t: RestoreTodo): boolean {
    const e = this.state.entry(t.vpath);
    if (e === undefined) return false;
    if (this.keepRestored && e.kind === t.kind && (t.kind === FileKind.file || t.kind === FileKind.symlink))
      return true;
    if (t.kind === FileKind.file) {
      if (e.hash !== t.hash) return false;
      if (e.kind === FileKind.file) return true;
      // Found in an --existing folder: counts only while a folder given in this run still holds
      // it (the folder may be another one, or the file gone or changed since).
      return e.kind === KIND_FOUND_ELSEWHERE && this.stillFoundElsewhere(t);
    }
    // A link: done while recorded with the same target ('' from older runs: taken as the same).
    return (
      t.kind === FileKind.symlink && e.kind === FileKind.symlink && (e.hash === '' || e.hash === linkHash(t.linkTarget))
    );
  }

  /** The last answer of `stillFoundElsewhere` (a file is asked about twice in a row). */
  private lastFound: { vpath: Buffer; found: boolean } | undefined;

  /** `foundElsewhere` for a file recorded as found in an `--existing` folder by an earlier run. */
  private stillFoundElsewhere(t: RestoreTodo): boolean {
    if (this.existingDirs.length === 0) return false;
    if (this.lastFound?.vpath.equals(t.vpath) === true) return this.lastFound.found;
    const split = splitVpath(t.vpath);
    const found = split.ok && this.foundElsewhere(split.parts, t);
    this.lastFound = { vpath: t.vpath, found };
    return found;
  }

  /**
   * True when an `--existing` folder holds this file: same relative path, a regular file of the
   * same size and mtime (to the second), whose SHA-256 is the catalogued one. The size and mtime
   * only pick the candidates; the hash decides, so a skipped file is never a different one.
   */
  foundElsewhere(parts: readonly Buffer[], t: RestoreTodo): boolean {
    for (const dir of this.existingDirs) {
      const p = joinTarget(dir, parts);
      let st: fs.Stats | undefined;
      try {
        st = lstatOrUndefined(this.tree.sp(p));
      } catch {
        continue; // unreadable there: not a proof of anything
      }
      if (st === undefined || !st.isFile() || st.size !== t.sizeBytes) continue;
      if (Math.floor(st.mtimeMs / 1000) !== Number(t.mtimeNs / 1_000_000_000n)) continue;
      try {
        if (this.hashFile(this.tree.sp(p)) === t.hash) return true;
      } catch {
        // unreadable: restore it
      }
    }
    return false;
  }
}
