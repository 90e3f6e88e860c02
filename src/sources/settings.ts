/**
 * Use-cases of `source set`, `source lock`, `source unlock` and `source reset`: store path
 * settings, and bring the per-file priority / copy target / cap of the catalogued files below a
 * changed folder up to date in the same transaction, so that the planner sees a change without a
 * rescan. Ignore rules, lock, hide and follow take full effect (files added or dropped) at the
 * next `update`; until then, files that a new rule or `hide` leaves out get priority 0.
 */
import type { Catalog, Db } from '../catalog/db.js';
import {
  deletePathSettings,
  deletePathSettingsUnder,
  type FileSettingsValue,
  getPathSettingsJson,
  listPathSettings,
  putPathSettingsJson,
  recomputeFileSettings,
} from '../catalog/settings.js';
import { listSources, type SourceRow } from '../catalog/sources.js';
import { UsageError } from '../core/errors.js';
import { normalizeVpath } from '../core/vpath.js';
import {
  applyChange,
  type Exclusion,
  enterChild,
  enterFolder,
  type FolderState,
  fileSettings,
  isEmptySettings,
  type PathSettings,
  parsePathSettings,
  rootState,
  type SettingsChange,
  settingsToJson,
} from './path-settings.js';

/** Every stored setting, keyed by the latin1 form of the folder's UTF-8 bytes (byte-exact). */
export type SettingsMap = Map<string, PathSettings>;

/** Key of a virtual path (string or bytes) in a SettingsMap. */
export function settingsKey(vpath: Buffer | string): string {
  return (typeof vpath === 'string' ? Buffer.from(vpath, 'utf8') : vpath).toString('latin1');
}

/** Load every stored setting (validated; a bad stored row is an error naming its path). */
export function loadSettingsMap(db: Db): SettingsMap {
  const map: SettingsMap = new Map();
  for (const row of listPathSettings(db)) {
    map.set(settingsKey(row.vpath), parsePathSettings(JSON.parse(row.json) as unknown, row.vpath));
  }
  return map;
}

/**
 * Resolves inherited folder states from a settings map and the source mappings, caching the
 * states of folders already seen (bounded). Not thread-safe; one per use.
 */
export class SettingsResolver {
  private readonly cache = new Map<string, FolderState>();
  private readonly sourceByKey: Map<string, SourceRow>;

  constructor(
    readonly settings: SettingsMap,
    sources: readonly SourceRow[],
  ) {
    this.sourceByKey = new Map(sources.map((s) => [settingsKey(s.vpath), s]));
  }

  /** Overrides at a mapping root: its `--min-copies` (when not the default) and `--follow-symlinks`. */
  private overridesAt(key: string): { minCopies?: number; follow?: boolean } {
    const src = this.sourceByKey.get(key);
    if (src === undefined) return {};
    return {
      ...(src.minCopies !== 1 ? { minCopies: src.minCopies } : {}),
      ...(src.followSymlinks ? { follow: true } : {}),
    };
  }

  /** The state inside folder `vpath` (bytes or string, normalised, `/` for the top). */
  folder(vpath: Buffer | string): FolderState {
    const bytes = typeof vpath === 'string' ? Buffer.from(vpath, 'utf8') : vpath;
    const key = bytes.toString('latin1');
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    let state: FolderState;
    if (bytes.length <= 1) {
      state = enterFolder(rootState(), '/', this.settings.get(settingsKey('/')), 1, this.overridesAt(settingsKey('/')));
    } else {
      const cut = bytes.lastIndexOf(0x2f);
      const parentBytes = cut <= 0 ? Buffer.from('/') : bytes.subarray(0, cut);
      const parent = this.folder(parentBytes);
      const name = bytes.subarray(cut + 1);
      state = enterChild(parent, name, bytes.toString('utf8'), this.settings.get(key), this.overridesAt(key));
    }
    if (this.cache.size > 50_000) this.cache.clear();
    this.cache.set(key, state);
    return state;
  }

  /** What a file at `vpath` gets from settings and rules (its sidecar aside). */
  file(vpath: Buffer | string): {
    priority: number;
    minCopies: number;
    maxCopies: number | null;
    exclusion: Exclusion | null;
  } {
    const bytes = typeof vpath === 'string' ? Buffer.from(vpath, 'utf8') : vpath;
    const cut = bytes.lastIndexOf(0x2f);
    const parent = this.folder(cut <= 0 ? Buffer.from('/') : bytes.subarray(0, cut));
    return fileSettings(parent, bytes.subarray(cut + 1));
  }
}

/** The effective settings of one folder, as `source set VPATH` prints them. */
export interface EffectiveDoc {
  vpath: string;
  /** What is stored at exactly this path. */
  settings: PathSettings;
  effective: {
    priority: number;
    minCopies: number;
    maxCopies: number | null;
    followSymlinks: boolean;
    locked: boolean;
    lockedAt: string | null;
    excluded: Exclusion | null;
    rules: Array<{ rule: string; from: string }>;
  };
}

function effectiveDoc(resolver: SettingsResolver, vpath: string): EffectiveDoc {
  const st = resolver.folder(vpath);
  const rules: Array<{ rule: string; from: string }> = [];
  st.chain.forEach((level, i) => {
    for (const r of level) rules.push({ rule: r.text, from: st.chainFrom[i] ?? vpath });
  });
  return {
    vpath,
    settings: resolver.settings.get(settingsKey(vpath)) ?? {},
    effective: {
      priority: st.priority,
      minCopies: st.minCopies,
      maxCopies: st.maxCopies,
      followSymlinks: st.follow,
      locked: st.lockedAt !== null,
      lockedAt: st.lockedAt,
      excluded: st.excluded,
      rules,
    },
  };
}

/** Effective settings of each folder in `vpathTexts` (nothing is written). */
export function showSettings(cat: Catalog, vpathTexts: readonly string[]): EffectiveDoc[] {
  const resolver = new SettingsResolver(loadSettingsMap(cat.db), listSources(cat.db));
  return vpathTexts.map((t) => effectiveDoc(resolver, normalizeVpath(t)));
}

/** One folder's change, as `source set --json` prints it. */
export interface SetResultDoc extends EffectiveDoc {
  before: PathSettings;
  /** Catalogued files whose priority, copy target or cap changed. */
  filesUpdated: number;
}

/**
 * Apply `change` to each folder in `vpathTexts`, in one transaction: store the new settings and
 * recompute the catalogued files below each folder. With `dryRun`, computes and returns the same
 * documents and rolls back.
 */
export function setPathSettings(
  cat: Catalog,
  vpathTexts: readonly string[],
  change: SettingsChange,
  options: { dryRun?: boolean } = {},
): SetResultDoc[] {
  const vpaths = vpathTexts.map((t) => normalizeVpath(t));
  if (vpaths.length === 0) throw new UsageError('name at least one virtual path');
  return transact(cat, options.dryRun ?? false, () => {
    const out: SetResultDoc[] = [];
    for (const vpath of vpaths) {
      const sources = listSources(cat.db);
      const before = loadSettingsMap(cat.db);
      const prev = before.get(settingsKey(vpath)) ?? {};
      const parentFollow = vpath === '/' ? false : new SettingsResolver(before, sources).folder(parentOf(vpath)).follow;
      const next = applyChange(prev, change, parentFollow);
      if (isEmptySettings(next)) deletePathSettings(cat.db, vpath);
      else putPathSettingsJson(cat.db, vpath, settingsToJson(next));
      const after = loadSettingsMap(cat.db);
      const filesUpdated = refreshFiles(cat.db, vpath, before, after, sources);
      out.push({ ...effectiveDoc(new SettingsResolver(after, sources), vpath), before: prev, filesUpdated });
    }
    return out;
  });
}

/**
 * Remove the settings stored at each folder (and, with `recursive`, at every folder below it),
 * then recompute the files below. Returns the documents of the folders named.
 */
export function resetPathSettings(
  cat: Catalog,
  vpathTexts: readonly string[],
  options: { recursive?: boolean; dryRun?: boolean } = {},
): SetResultDoc[] {
  const vpaths = vpathTexts.map((t) => normalizeVpath(t));
  if (vpaths.length === 0) throw new UsageError('name at least one virtual path');
  return transact(cat, options.dryRun ?? false, () => {
    const out: SetResultDoc[] = [];
    for (const vpath of vpaths) {
      const sources = listSources(cat.db);
      const before = loadSettingsMap(cat.db);
      const prevJson = getPathSettingsJson(cat.db, vpath);
      const prev = prevJson === undefined ? {} : parsePathSettings(JSON.parse(prevJson) as unknown, vpath);
      if (options.recursive) deletePathSettingsUnder(cat.db, vpath);
      else deletePathSettings(cat.db, vpath);
      const after = loadSettingsMap(cat.db);
      const filesUpdated = refreshFiles(cat.db, vpath, before, after, sources);
      out.push({ ...effectiveDoc(new SettingsResolver(after, sources), vpath), before: prev, filesUpdated });
    }
    return out;
  });
}

/** The folders whose own settings lock them, by path. */
export function listLocked(cat: Catalog): Array<{ vpath: string; settings: PathSettings }> {
  const out: Array<{ vpath: string; settings: PathSettings }> = [];
  for (const row of listPathSettings(cat.db)) {
    const s = parsePathSettings(JSON.parse(row.json) as unknown, row.vpath);
    if (s.lock) out.push({ vpath: row.vpath, settings: s });
  }
  return out;
}

/**
 * Bring the files at or below `vpath` from what `before` gave them to what `after` gives them.
 * A field whose current value is not what `before` gave came from the file's `.meta-inf`
 * sidecar and is kept (the next update reads the sidecar again), unless the file is now left out
 * of the backup (priority 0). `beforeSources` are the mappings `before` went with (when they
 * changed too).
 */
export function refreshFiles(
  db: Db,
  vpath: string,
  before: SettingsMap,
  after: SettingsMap,
  sources: readonly SourceRow[],
  beforeSources: readonly SourceRow[] = sources,
): number {
  const oldR = new SettingsResolver(before, beforeSources);
  const newR = new SettingsResolver(after, sources);
  return recomputeFileSettings(db, vpath, (path, cur): FileSettingsValue => {
    const o = oldR.file(path);
    const n = newR.file(path);
    if (n.exclusion !== null) return { priority: 0, minCopies: n.minCopies, maxCopies: n.maxCopies };
    return {
      priority: cur.priority === o.priority ? n.priority : cur.priority,
      minCopies: cur.minCopies === o.minCopies ? n.minCopies : cur.minCopies,
      maxCopies: cur.maxCopies === o.maxCopies ? n.maxCopies : cur.maxCopies,
    };
  });
}

function parentOf(vpath: string): string {
  const i = vpath.lastIndexOf('/');
  return i <= 0 ? '/' : vpath.slice(0, i);
}

/** Run `fn` in one immediate transaction; with `dryRun`, roll it back and return its result. */
function transact<T>(cat: Catalog, dryRun: boolean, fn: () => T): T {
  if (!dryRun) return cat.db.transaction(fn).immediate();
  let result: T | undefined;
  const rollback = new Error('dry run');
  try {
    cat.db
      .transaction(() => {
        result = fn();
        throw rollback;
      })
      .immediate();
  } catch (err) {
    if (err !== rollback) throw err;
  }
  return result as T;
}

/** Human lines for one folder's effective settings (what `source set VPATH` prints). */
export function describeEffective(doc: EffectiveDoc): string[] {
  const e = doc.effective;
  const lines = [`${doc.vpath}`];
  const own = Object.keys(doc.settings).length === 0 ? '(none)' : settingsToJson(doc.settings);
  lines.push(`  stored here:  ${own}`);
  lines.push(`  priority:     ${e.priority}${e.priority === 0 ? ' (not backed up)' : ''}`);
  lines.push(`  min copies:   ${e.minCopies}`);
  lines.push(`  max copies:   ${e.maxCopies === null ? 'no cap' : e.maxCopies}`);
  lines.push(`  follow links: ${e.followSymlinks ? 'yes' : 'no'}`);
  if (e.lockedAt !== null) lines.push(`  locked:       yes${e.lockedAt === doc.vpath ? '' : ` (by ${e.lockedAt})`}`);
  if (e.excluded !== null) {
    const why = e.excluded.rule === undefined ? e.excluded.reason : `${e.excluded.reason} '${e.excluded.rule}'`;
    lines.push(`  excluded:     yes (${why} at ${e.excluded.at})`);
  }
  if (e.rules.length > 0) {
    lines.push('  ignore rules (first match wins):');
    for (const r of e.rules) lines.push(`    ${r.rule}${r.from === doc.vpath ? '' : `    (from ${r.from})`}`);
  }
  return lines;
}
