/**
 * Path settings: what `source set` stores per virtual folder (the `path_settings` table, JSON
 * with the Python distbackup's keys so that its exports import unchanged), and how they are
 * inherited down the virtual tree. Pure functions; no I/O.
 *
 * Keys: `priority` (integer ≥ 0; 0 = not backed up), `mincopies` (copy target), `maxcopies`
 * (cap, or "inf" for none below a capped folder), `rules` (ignore rules, see ignore-rules.ts),
 * `noinherit` (cut inherited rules), `lock`, `hide`, `follow_symlinks`.
 */
import { UsageError } from '../core/errors.js';
import { type IgnoreRule, matchChain, parseRules } from './ignore-rules.js';

/** One folder's stored settings. Absent keys are inherited. */
export interface PathSettings {
  priority?: number;
  mincopies?: number;
  maxcopies?: number | 'inf';
  rules?: string[];
  noinherit?: boolean;
  lock?: boolean;
  hide?: boolean;
  follow_symlinks?: boolean;
}

const KEYS = new Set(['priority', 'mincopies', 'maxcopies', 'rules', 'noinherit', 'lock', 'hide', 'follow_symlinks']);
/** Keys of old Python catalogues that no longer mean anything (they were never applied). */
const LEGACY_KEYS = new Set(['include', 'exclude']);

/**
 * Validate untrusted settings (from `--json`, a config file, a Python catalogue). Throws a
 * UsageError naming `where` and the bad key. Legacy keys are dropped; defaults are dropped
 * (`lock: false` is the same as no key) except `follow_symlinks: false`, which overrides an
 * inherited `true`.
 */
export function parsePathSettings(value: unknown, where: string): PathSettings {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`${where}: settings must be a JSON object`);
  }
  const out: PathSettings = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    if (LEGACY_KEYS.has(key)) continue;
    if (!KEYS.has(key)) {
      throw new UsageError(`${where}: unknown setting '${key}' (known: ${[...KEYS].join(', ')})`);
    }
    if (v === null) continue;
    switch (key) {
      case 'priority':
      case 'mincopies':
        out[key] = wholeNumber(v, `${where}: ${key}`);
        break;
      case 'maxcopies':
        out.maxcopies = v === 'inf' ? 'inf' : wholeNumber(v, `${where}: maxcopies`);
        break;
      case 'rules': {
        if (!Array.isArray(v) || v.some((r) => typeof r !== 'string')) {
          throw new UsageError(`${where}: rules must be a list of strings`);
        }
        const rules = v as string[];
        try {
          parseRules(rules);
        } catch (err) {
          throw new UsageError(`${where}: ${(err as Error).message}`);
        }
        if (rules.length > 0) out.rules = [...rules];
        break;
      }
      case 'noinherit':
      case 'lock':
      case 'hide':
      case 'follow_symlinks':
        if (typeof v !== 'boolean') throw new UsageError(`${where}: ${key} must be true or false`);
        if (v || key === 'follow_symlinks') out[key] = v;
        break;
    }
  }
  return out;
}

function wholeNumber(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 1_000_000) {
    throw new UsageError(`${what} must be a whole number from 0 to 1000000`);
  }
  return v;
}

/** The changes one `source set` asks for. `undefined` = leave as is; `null` = remove (inherit). */
export interface SettingsChange {
  priority?: number | null;
  mincopies?: number | null;
  maxcopies?: number | 'inf' | null;
  /** Rules to set (or, with `appendRules`, to add to the existing ones). */
  rules?: string[];
  appendRules?: boolean;
  noinherit?: boolean;
  lock?: boolean;
  hide?: boolean;
  follow_symlinks?: boolean | null;
  /** A whole replacement (`--json`), applied before the other changes. */
  replace?: PathSettings;
}

/** True when the change asks for nothing (then `source set` only prints). */
export function isEmptyChange(c: SettingsChange): boolean {
  return Object.entries(c).every(([k, v]) => k === 'appendRules' || v === undefined);
}

/**
 * Apply `change` to `prev` and return the new settings (a fresh object; `prev` is untouched).
 * `lock`/`hide`/`noinherit` false remove the key; `follow_symlinks` false is kept only when
 * `inheritedFollow` is true (it then overrides the parent).
 */
export function applyChange(prev: PathSettings, change: SettingsChange, inheritedFollow: boolean): PathSettings {
  const next: PathSettings = change.replace !== undefined ? { ...change.replace } : { ...prev };
  for (const key of ['priority', 'mincopies', 'maxcopies'] as const) {
    const v = change[key];
    if (v === null) delete next[key];
    else if (v !== undefined) (next as Record<string, unknown>)[key] = v;
  }
  if (change.rules !== undefined) {
    parseRules(change.rules);
    if (change.appendRules) {
      const merged = [...(next.rules ?? [])];
      for (const r of change.rules) if (!merged.includes(r)) merged.push(r);
      next.rules = merged;
    } else {
      next.rules = [...change.rules];
    }
    if (next.rules.length === 0) delete next.rules;
  }
  for (const key of ['noinherit', 'lock', 'hide'] as const) {
    const v = change[key];
    if (v === true) next[key] = true;
    else if (v === false) delete next[key];
  }
  if (change.follow_symlinks === null) delete next.follow_symlinks;
  else if (change.follow_symlinks !== undefined) {
    if (change.follow_symlinks === inheritedFollow) delete next.follow_symlinks;
    else next.follow_symlinks = change.follow_symlinks;
  }
  return parsePathSettings(next, 'settings');
}

/** Settings as stored: compact JSON with keys in a stable order. */
export function settingsToJson(s: PathSettings): string {
  const ordered: Record<string, unknown> = {};
  for (const k of KEYS) {
    const v = (s as Record<string, unknown>)[k];
    if (v !== undefined) ordered[k] = v;
  }
  return JSON.stringify(ordered);
}

/** True when there is nothing stored (the row can be deleted). */
export function isEmptySettings(s: PathSettings): boolean {
  return Object.keys(s).length === 0;
}

/** Why an entry is left out of the backup, and by which folder's setting or rule. */
export interface Exclusion {
  reason: 'hide' | 'priority-0' | 'ignore-rule' | 'skip-file';
  /** Virtual path of the folder whose setting (or rule list) decided it. */
  at: string;
  rule?: string;
}

/**
 * The inherited state inside one virtual folder: what its entries get unless a rule, a nearer
 * setting or a sidecar says otherwise. Immutable; children derive new states.
 */
export interface FolderState {
  readonly vpath: string;
  /** Priority of entries here (1 unless set; 0 = not backed up). */
  readonly priority: number;
  readonly minCopies: number;
  /** Cap, or null for none. */
  readonly maxCopies: number | null;
  readonly follow: boolean;
  /** Rule lists, nearest folder first, with the folder each came from. */
  readonly chain: readonly (readonly IgnoreRule[])[];
  readonly chainFrom: readonly string[];
  /** The nearest locked folder at or above this one (its files are kept as catalogued), or null. */
  readonly lockedAt: string | null;
  /** Set when this folder (and all below it) is out of the backup. */
  readonly excluded: Exclusion | null;
}

/** Defaults at a source's root, from its mapping (`source map --min-copies`, `--follow-symlinks`). */
export interface RootDefaults {
  minCopies: number;
  follow: boolean;
}

/** The state at `/`, before any setting. */
export function rootState(defaults: RootDefaults = { minCopies: 1, follow: false }): FolderState {
  return {
    vpath: '/',
    priority: 1,
    minCopies: defaults.minCopies,
    maxCopies: null,
    follow: defaults.follow,
    chain: [],
    chainFrom: [],
    lockedAt: null,
    excluded: null,
  };
}

/**
 * What a name inside a folder gets from the rules: `{ ignored: true }` when the first matching
 * rule has no `!`, else the priority to use (a rule's, or the folder's).
 */
export function classifyName(
  state: FolderState,
  name: Buffer | string,
): { ignored: true; rule: string; at: string } | { ignored: false; priority: number } {
  if (state.chain.length === 0) return { ignored: false, priority: state.priority };
  for (let level = 0; level < state.chain.length; level++) {
    for (const r of state.chain[level] ?? []) {
      if (!r.test(name)) continue;
      if (r.priority === 0) return { ignored: true, rule: r.text, at: state.chainFrom[level] ?? state.vpath };
      return { ignored: false, priority: r.priority };
    }
  }
  return { ignored: false, priority: state.priority };
}

/**
 * Enter folder `vpath` (a child named `name` of `parent`, or a root when `parent` is the state of
 * the folder above a mapping) with its own stored `settings`. Follows the Python update's order:
 * lock, hide, priority, maxcopies, priority 0, then rules (`noinherit` first cuts the inherited
 * ones). `namePriority` is what the parent's rules gave this folder's name (classifyName).
 * `overrides` replace inherited defaults at a mapping root (its `--min-copies`, `--follow-symlinks`).
 */
export function enterFolder(
  parent: FolderState,
  vpath: string,
  settings: PathSettings | undefined,
  namePriority: number = parent.priority,
  overrides: Partial<RootDefaults> = {},
): FolderState {
  const s = settings ?? {};
  let excluded = parent.excluded;
  const lockedAt = parent.lockedAt ?? (s.lock ? vpath : null);
  // A locked folder is not entered at all (Python checks lock first), so its own hide or
  // priority 0 cannot drop what it keeps.
  if (excluded === null && s.hide && !s.lock) excluded = { reason: 'hide', at: vpath };
  const priority = s.priority ?? namePriority;
  if (excluded === null && priority === 0 && !s.lock) excluded = { reason: 'priority-0', at: vpath };
  const maxCopies = s.maxcopies === undefined ? parent.maxCopies : s.maxcopies === 'inf' ? null : s.maxcopies;
  const minCopies = s.mincopies ?? overrides.minCopies ?? parent.minCopies;
  const follow = s.follow_symlinks ?? overrides.follow ?? parent.follow;
  let chain = s.noinherit ? [] : parent.chain;
  let chainFrom = s.noinherit ? [] : parent.chainFrom;
  if (s.rules !== undefined && s.rules.length > 0) {
    chain = [parseRules(s.rules), ...chain];
    chainFrom = [vpath, ...chainFrom];
  }
  return { vpath, priority, minCopies, maxCopies, follow, chain, chainFrom, lockedAt, excluded };
}

/**
 * Enter the child folder `name` of `parent`: its name is first classified by the parent's rules
 * (an ignored name excludes the whole folder), then its own `settings` apply.
 */
export function enterChild(
  parent: FolderState,
  name: Buffer | string,
  vpath: string,
  settings: PathSettings | undefined,
  overrides: Partial<RootDefaults> = {},
): FolderState {
  const c = parent.excluded === null ? classifyName(parent, name) : { ignored: false as const, priority: 0 };
  const state = enterFolder(parent, vpath, settings, c.ignored ? parent.priority : c.priority, overrides);
  if (c.ignored && state.excluded === null) {
    return { ...state, excluded: { reason: 'ignore-rule', at: c.at, rule: c.rule } };
  }
  return state;
}

/** The settings a file inside `state` gets, before its sidecar: priority 0 when excluded. */
export function fileSettings(
  state: FolderState,
  name: Buffer | string,
): { priority: number; minCopies: number; maxCopies: number | null; exclusion: Exclusion | null } {
  if (state.excluded !== null)
    return { priority: 0, minCopies: state.minCopies, maxCopies: state.maxCopies, exclusion: state.excluded };
  const c = classifyName(state, name);
  if (c.ignored) {
    return {
      priority: 0,
      minCopies: state.minCopies,
      maxCopies: state.maxCopies,
      exclusion: { reason: 'ignore-rule', at: c.at, rule: c.rule },
    };
  }
  return {
    priority: c.priority,
    minCopies: state.minCopies,
    maxCopies: state.maxCopies,
    exclusion: c.priority === 0 ? { reason: 'priority-0', at: state.vpath } : null,
  };
}

/** Re-export for callers that only need matching. */
export { matchChain };
