/**
 * The per-folder policy that `update` asks while it walks a source: whether to enter a folder
 * (or keep it locked, or skip it), which names to keep, and the priority / copy target / cap (and
 * a trusted hash) of each file. It applies path settings and ignore rules (path-settings.ts), the
 * `.distbackup.skip` marker and `<file>.meta-inf` sidecars, with the Python distbackup's meanings:
 *
 * - a locked folder is not scanned: its catalogued files are kept as they are;
 * - a hidden folder, one at priority 0, one whose name an ignore rule matches, and one holding a
 *   `.distbackup.skip` file are left out (their catalogued files go);
 * - names ending in `.meta-inf` are never backed up; `<file>.meta-inf` may give `hash` (trusted:
 *   the file is not read), `priority` and `maxcopies` (a number or "inf"); an invalid sidecar is
 *   a warning and is ignored.
 *
 * One policy per update run; it reads small files (markers, sidecars) but never the catalogue.
 * Not thread-safe (it caches folder states).
 */
import * as fs from 'node:fs';
import type { Db } from '../catalog/db.js';
import { NO_CAP } from '../catalog/schema.js';
import { listSources, type SourceRow } from '../catalog/sources.js';
import { describeError } from '../core/errors.js';
import { displayPath } from '../core/vpath.js';
import type { DirAction, DirContext, FileSettings, ScanPolicy as PipelinePolicy } from '../pipeline/scan.js';
import { type Exclusion, type FolderState, fileSettings } from './path-settings.js';
import { loadSettingsMap, type SettingsMap, SettingsResolver } from './settings.js';

/** Name of the marker file that excludes its folder. */
export const SKIP_MARKER = '.distbackup.skip';
/** Suffix of a file's sidecar. */
export const SIDECAR_SUFFIX = '.meta-inf';
/** Largest sidecar read (a sidecar is a few bytes of JSON; anything larger is not one). */
export const SIDECAR_MAX_BYTES = 64 * 1024;

const SIDECAR_SUFFIX_BYTES = Buffer.from(SIDECAR_SUFFIX);
const SKIP_MARKER_BYTES = Buffer.from(SKIP_MARKER);

/** What to do with a folder. `lock` = keep its catalogued files, do not read it. */
export interface FolderDecision {
  readonly action: 'scan' | 'lock' | 'skip';
  readonly vpath: Buffer;
  readonly state: FolderState;
  /** Why it is skipped (`skip` only). */
  readonly exclusion: Exclusion | null;
  /** Follow symbolic links to folders and files inside it. */
  readonly follow: boolean;
}

/** A name kept inside a folder, and whether a `<name>.meta-inf` sidecar sits beside it. */
export interface KeptName {
  readonly name: Buffer;
  readonly hasSidecar: boolean;
}

/** A file's settings: what the planner reads from `files`, and a trusted hash when a sidecar gave one. */
export interface FilePolicy {
  priority: number;
  minCopies: number;
  /** Cap, or null for none. */
  maxCopies: number | null;
  /** 64 lowercase hex from the sidecar (the file need not be read), else undefined. */
  hash?: string;
  /** Problems worth a warning (an invalid sidecar), one line each. */
  warnings: string[];
}

/** The sidecar's fields, validated. */
export interface Sidecar {
  hash?: string;
  priority?: number;
  maxcopies?: number | 'inf';
}

/** Policy of one update run over the catalogue's settings and mappings. */
export class ScanPolicy {
  private readonly resolver: SettingsResolver;

  constructor(settings: SettingsMap, sources: readonly SourceRow[]) {
    this.resolver = new SettingsResolver(settings, sources);
  }

  /**
   * Decide about folder `vpath` (a mapping root or any folder below one) whose real path is
   * `realPath`. Checks lock, then hide / priority 0 / ignored name, then the skip marker.
   */
  enterFolder(vpath: Buffer | string, realPath: Buffer | string): FolderDecision {
    const v = typeof vpath === 'string' ? Buffer.from(vpath, 'utf8') : vpath;
    const state = this.resolver.folder(v);
    const base = { vpath: v, state, follow: state.follow };
    if (state.excluded !== null) return { ...base, action: 'skip', exclusion: state.excluded };
    if (state.lockedAt !== null) return { ...base, action: 'lock', exclusion: null };
    const real = typeof realPath === 'string' ? Buffer.from(realPath) : realPath;
    if (fs.existsSync(Buffer.concat([real, Buffer.from('/'), SKIP_MARKER_BYTES]))) {
      return { ...base, action: 'skip', exclusion: { reason: 'skip-file', at: v.toString('utf8') } };
    }
    return { ...base, action: 'scan', exclusion: null };
  }

  /**
   * The names of a folder's listing that are backed up: sidecars (`*.meta-inf`) and names the
   * ignore rules ignore are dropped; each kept name says whether its sidecar is in the listing.
   * Folders among them are decided again by enterFolder (their own settings may apply).
   */
  filterNames(folder: FolderDecision, names: readonly Buffer[]): KeptName[] {
    const sidecars = new Set<string>();
    for (const n of names) if (endsWith(n, SIDECAR_SUFFIX_BYTES)) sidecars.add(n.toString('latin1'));
    const out: KeptName[] = [];
    for (const name of names) {
      if (endsWith(name, SIDECAR_SUFFIX_BYTES)) continue;
      if (fileSettings(folder.state, name).exclusion !== null) continue;
      out.push({ name, hasSidecar: sidecars.has(`${name.toString('latin1')}${SIDECAR_SUFFIX}`) });
    }
    return out;
  }

  /** True when `name` in `folder` is backed up (filterNames for one name, sidecar aside). */
  keepsName(folder: FolderDecision, name: Buffer): boolean {
    return !endsWith(name, SIDECAR_SUFFIX_BYTES) && fileSettings(folder.state, name).exclusion === null;
  }

  /**
   * Settings of the regular file `name` in `folder` (real path `realPath`). When `hasSidecar`,
   * reads `<realPath>.meta-inf`: its priority and cap override the folder's, its hash is trusted.
   */
  fileSettings(folder: FolderDecision, name: Buffer, realPath: Buffer | string, hasSidecar: boolean): FilePolicy {
    const s = fileSettings(folder.state, name);
    const out: FilePolicy = { priority: s.priority, minCopies: s.minCopies, maxCopies: s.maxCopies, warnings: [] };
    if (!hasSidecar) return out;
    const real = typeof realPath === 'string' ? Buffer.from(realPath) : realPath;
    const sidecarPath = Buffer.concat([real, SIDECAR_SUFFIX_BYTES]);
    const read = readSidecar(sidecarPath);
    if ('warning' in read) {
      out.warnings.push(read.warning);
      return out;
    }
    const sc = read.sidecar;
    if (sc.priority !== undefined) out.priority = sc.priority;
    if (sc.maxcopies !== undefined) out.maxCopies = sc.maxcopies === 'inf' ? null : sc.maxcopies;
    if (sc.hash !== undefined) out.hash = sc.hash;
    return out;
  }
}

/** The policy for an update run over catalogue `db` (its settings and mappings, read once). */
export function loadScanPolicy(db: Db): ScanPolicy {
  return new ScanPolicy(loadSettingsMap(db), listSources(db));
}

/** Read and validate one sidecar; any problem is returned as a one-line warning naming the file. */
export function readSidecar(file: Buffer): { sidecar: Sidecar } | { warning: string } {
  let text: string;
  try {
    // O_NONBLOCK: a FIFO under a sidecar's name does not block the run (refused as not a file).
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    try {
      if (!fs.fstatSync(fd).isFile())
        return { warning: `${displayPath(file)}: sidecar is not a regular file, ignored` };
      const buf = Buffer.alloc(SIDECAR_MAX_BYTES + 1);
      const n = fs.readSync(fd, buf, 0, buf.length, 0);
      if (n > SIDECAR_MAX_BYTES) return { warning: `${displayPath(file)}: sidecar larger than 64 KiB, ignored` };
      text = buf.toString('utf8', 0, n);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    return { warning: `${displayPath(file)}: cannot read the sidecar: ${describeError(err)}` };
  }
  try {
    return { sidecar: parseSidecar(JSON.parse(text) as unknown) };
  } catch (err) {
    return { warning: `${displayPath(file)}: invalid sidecar, ignored: ${(err as Error).message}` };
  }
}

/** Validate a sidecar's JSON. Unknown keys are allowed (and ignored); known ones must be right. */
export function parseSidecar(value: unknown): Sidecar {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
  const v = value as Record<string, unknown>;
  const out: Sidecar = {};
  if (v.hash !== undefined && v.hash !== null) {
    if (typeof v.hash !== 'string' || !/^[0-9a-fA-F]{64}$/.test(v.hash)) throw new Error('hash is not 64 hex digits');
    out.hash = v.hash.toLowerCase();
  }
  if (v.priority !== undefined && v.priority !== null) {
    if (typeof v.priority !== 'number' || !Number.isInteger(v.priority) || v.priority < 0) {
      throw new Error('priority is not a whole number ≥ 0');
    }
    out.priority = v.priority;
  }
  if (v.maxcopies !== undefined && v.maxcopies !== null) {
    if (v.maxcopies === 'inf') out.maxcopies = 'inf';
    else if (typeof v.maxcopies === 'number' && Number.isInteger(v.maxcopies) && v.maxcopies >= 0) {
      out.maxcopies = v.maxcopies;
    } else throw new Error('maxcopies is not a whole number ≥ 0 or "inf"');
  }
  return out;
}

function endsWith(name: Buffer, suffix: Buffer): boolean {
  return name.length > suffix.length && name.subarray(name.length - suffix.length).equals(suffix);
}

/** Settings of one entry as the scan stores them, with the sidecar's trusted hash when there is one. */
export interface EntrySettings extends FileSettings {
  /** 64 lowercase hex from `<file>.meta-inf`: use it instead of reading the file. */
  readonly hash?: string;
}

/**
 * The scan's per-folder hook (pipeline/scan.ts) with path settings, ignore rules, the skip
 * marker and sidecars in front of `base` (the mapping's own include/exclude globs): a folder
 * this policy drops or keeps never reaches `base`; a name it drops is not offered to `base`;
 * the settings of every recorded entry are this policy's (`base`'s are ignored). Sidecar
 * problems go to `onWarning`, one line each. One per update run; not thread-safe.
 */
export function withPathSettings(
  base: PipelinePolicy,
  policy: ScanPolicy,
  onWarning: (line: string) => void = () => {},
): PipelinePolicy {
  // Folder decisions by virtual path: the scanner filters and asks settings for a folder's
  // entries right after entering it, so a small map (cleared when large) serves every call,
  // and the last folder asked about is kept by identity (one DirContext per folder).
  const decisions = new Map<string, FolderDecision>();
  let lastDir: DirContext | undefined;
  let lastDecision: FolderDecision | undefined;
  const decide = (dir: DirContext): FolderDecision => {
    if (dir === lastDir && lastDecision !== undefined) return lastDecision;
    const key = dir.vpath.toString('latin1');
    let d = decisions.get(key);
    if (d === undefined) {
      d = policy.enterFolder(dir.vpath, dir.realPath);
      if (decisions.size > 4096) decisions.clear();
      decisions.set(key, d);
    }
    lastDir = dir;
    lastDecision = d;
    return d;
  };
  // A folder without ignore rules gives every name its own settings: one object for all its
  // files without a sidecar (most folders), instead of a stat, a lookup and objects per file.
  let plainFor: FolderDecision | undefined;
  let plain: EntrySettings | undefined;
  // Sidecar names of the folder whose listing came last: the scanner asks the settings of a
  // folder's entries right after listing it, so one listing serves them without a stat each.
  let listedDir: DirContext | undefined;
  let sidecars = new Set<string>();
  return {
    listed(dir: DirContext, names: readonly Buffer[]): void {
      listedDir = dir;
      sidecars = new Set();
      for (const n of names) if (endsWith(n, SIDECAR_SUFFIX_BYTES)) sidecars.add(n.toString('latin1'));
    },
    enterDir(dir: DirContext): DirAction {
      decisions.delete(dir.vpath.toString('latin1'));
      lastDir = undefined;
      const d = decide(dir);
      if (d.action === 'skip') return 'drop';
      if (d.action === 'lock') return 'keep';
      return base.enterDir(dir);
    },
    filter(dir: DirContext, name: Buffer, isDir: boolean): boolean {
      const d = decide(dir);
      const keep =
        d.state.chain.length === 0 && d.state.excluded === null
          ? !endsWith(name, SIDECAR_SUFFIX_BYTES)
          : policy.keepsName(d, name);
      return keep && base.filter(dir, name, isDir);
    },
    follows(dir: DirContext): boolean {
      return decide(dir).follow;
    },
    settingsFor(dir: DirContext, name: Buffer): EntrySettings {
      const d = decide(dir);
      const listed = listedDir === dir;
      const hasSidecar = listed
        ? sidecars.size > 0 && sidecars.has(`${name.toString('latin1')}${SIDECAR_SUFFIX}`)
        : fs.existsSync(Buffer.concat([dir.realPath, Buffer.from('/'), name, SIDECAR_SUFFIX_BYTES]));
      if (!hasSidecar && d.state.chain.length === 0) {
        if (plainFor !== d || plain === undefined) {
          plain = entrySettings(policy.fileSettings(d, name, dir.realPath, false), onWarning);
          plainFor = d;
        }
        return plain;
      }
      const real = Buffer.concat([dir.realPath, Buffer.from('/'), name]);
      return entrySettings(policy.fileSettings(d, name, real, hasSidecar), onWarning);
    },
  };
}

function entrySettings(f: FilePolicy, onWarning: (line: string) => void): EntrySettings {
  for (const w of f.warnings) onWarning(w);
  const out = { priority: f.priority, minCopies: f.minCopies, maxCopies: f.maxCopies ?? NO_CAP };
  return f.hash === undefined ? out : { ...out, hash: f.hash };
}
