/**
 * `config export` / `config import`: the source map, the path settings and the disks as one JSON
 * document, in the Python distbackup's shape so that its exports import here unchanged:
 *
 *   {
 *     "path_map":    { "/photos": "/media/photos" | { "path", "include", "exclude", "follow_symlinks", "min_copies" } },
 *     "path_config": { "/photos/raw": { "priority": 2, "rules": ["*.tmp"], … } },
 *     "path_prefix": "/photos",        (export --path-prefix: path_config covers only this subtree)
 *     "disks":       { "<uuid>": { "name", "size_bytes", "relative_path", "fstype", "fsuuid" } }
 *   }
 *
 * Import applies only the sections present, validates everything first and writes in one
 * transaction (all or nothing): mappings are matched by virtual path (a mapping no longer listed
 * is removed, with its catalogued files), path settings are replaced (below `path_prefix` when
 * given), disks are matched by uuid (a disk cannot be added by import). Afterwards the stored
 * priority / copy target / cap of every catalogued file follows the new settings.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Catalog } from '../catalog/db.js';
import { getDiskByUuid, listDisks, updateDisk } from '../catalog/disks.js';
import {
  deletePathSettings,
  deletePathSettingsUnder,
  listPathSettings,
  putPathSettingsJson,
} from '../catalog/settings.js';
import { deleteSource, insertSource, listSources, type SourceRow } from '../catalog/sources.js';
import { UsageError } from '../core/errors.js';
import { counted, formatCount, parseSize } from '../core/units.js';
import { normalizeVpath, printable, vpathContains } from '../core/vpath.js';
import { DISK_NAME_RE } from '../disk/disk-json.js';
import { isEmptySettings, type PathSettings, parsePathSettings, settingsToJson } from '../sources/path-settings.js';
import { loadSettingsMap, refreshFiles } from '../sources/settings.js';

/** A mapping in the document: the real path, or the real path with options. */
export type PathMapEntry =
  | string
  | { path: string; include?: string[]; exclude?: string[]; follow_symlinks?: boolean; min_copies?: number };

/** A disk in the document. `size_bytes` may be a number, "1,000,000" (Python) or "500G". */
export interface DiskEntry {
  name?: string;
  size_bytes?: number | string;
  relative_path?: string | null;
  fstype?: string | null;
  fsuuid?: string | null;
}

/** The configuration document. */
export interface ConfigDoc {
  path_map?: Record<string, PathMapEntry>;
  path_config?: Record<string, PathSettings>;
  path_prefix?: string;
  disks?: Record<string, DiskEntry>;
}

/** Which sections to export (all by default). */
export interface ExportOptions {
  sections?: ReadonlyArray<'path_map' | 'path_config' | 'disks'>;
  pathPrefix?: string;
}

/** The configuration of `cat` as a document (keys sorted, stable). */
export function exportConfig(cat: Catalog, opts: ExportOptions = {}): ConfigDoc {
  const sections = new Set(opts.sections ?? ['path_map', 'path_config', 'disks']);
  const doc: ConfigDoc = {};
  if (sections.has('path_map')) {
    doc.path_map = {};
    for (const s of listSources(cat.db)) {
      const real = s.realpath.toString('utf8');
      const plain = s.include.length === 0 && s.exclude.length === 0 && !s.followSymlinks && s.minCopies === 1;
      doc.path_map[s.vpath] = plain
        ? real
        : {
            path: real,
            include: s.include,
            exclude: s.exclude,
            follow_symlinks: s.followSymlinks,
            min_copies: s.minCopies,
          };
    }
  }
  if (sections.has('path_config')) {
    const prefix = opts.pathPrefix === undefined ? undefined : normalizeVpath(opts.pathPrefix);
    doc.path_config = {};
    if (prefix !== undefined && prefix !== '/') {
      doc.path_prefix = prefix;
      doc.path_config[prefix] = {};
    }
    for (const row of listPathSettings(cat.db, prefix)) {
      doc.path_config[row.vpath] = parsePathSettings(JSON.parse(row.json) as unknown, row.vpath);
    }
  }
  if (sections.has('disks')) {
    doc.disks = {};
    for (const d of listDisks(cat.db)) {
      if (d.droppedMs !== null) continue;
      doc.disks[d.uuid] = {
        name: d.name,
        size_bytes: d.size,
        relative_path: d.relPath,
        fstype: d.fsType,
        fsuuid: d.fsUuid,
      };
    }
  }
  return doc;
}

/** What an import changed (or, in a dry run, would change). */
export interface ImportSummary {
  sourcesAdded: string[];
  sourcesChanged: string[];
  sourcesRemoved: Array<{ vpath: string; files: number }>;
  settings: number;
  settingsRemoved: number;
  disksChanged: string[];
  filesUpdated: number;
  warnings: string[];
  dryRun: boolean;
}

interface ValidSource {
  vpath: string;
  realpath: Buffer;
  include: string[];
  exclude: string[];
  followSymlinks: boolean;
  minCopies: number;
}

interface ValidDisk {
  uuid: string;
  changes: { name?: string; size?: number; relPath?: string | null; fsType?: string | null; fsUuid?: string | null };
}

/** Parse and validate a document's text; throws a UsageError naming the key at fault. */
export function parseConfigText(text: string, where: string): ConfigDoc {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${where}: not JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`${where}: the configuration must be a JSON object`);
  }
  for (const k of Object.keys(value)) {
    if (!['path_map', 'path_config', 'path_prefix', 'disks'].includes(k)) {
      throw new UsageError(
        `${where}: unknown key '${printable(k)}' (known: path_map, path_config, path_prefix, disks)`,
      );
    }
  }
  return value as ConfigDoc;
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UsageError(`${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

function strings(v: unknown, what: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
    throw new UsageError(`${what} must be a list of strings`);
  return v as string[];
}

function validateSources(cat: Catalog, map: unknown): ValidSource[] {
  const out: ValidSource[] = [];
  const seen = new Set<string>();
  const dataReal = fs.existsSync(cat.dataDir) ? fs.realpathSync(cat.dataDir) : path.resolve(cat.dataDir);
  for (const [vText, entry] of Object.entries(obj(map, 'path_map'))) {
    const vpath = normalizeVpath(vText);
    if (seen.has(vpath)) throw new UsageError(`path_map: ${vpath} is given twice`);
    seen.add(vpath);
    const e: Record<string, unknown> = typeof entry === 'string' ? { path: entry } : obj(entry, `path_map ${vpath}`);
    for (const k of Object.keys(e)) {
      if (!['path', 'include', 'exclude', 'follow_symlinks', 'min_copies'].includes(k)) {
        throw new UsageError(`path_map ${vpath}: unknown key '${printable(k)}'`);
      }
    }
    if (typeof e.path !== 'string' || !path.isAbsolute(e.path) || e.path.includes('\0')) {
      throw new UsageError(`path_map ${vpath}: the real path must be an absolute path`);
    }
    const real = path.resolve(e.path);
    if (vpathContains(real, dataReal)) {
      throw new UsageError(`path_map ${vpath}: ${real} contains the distbackup data folder ${cat.dataDir}`);
    }
    if (e.follow_symlinks !== undefined && typeof e.follow_symlinks !== 'boolean') {
      throw new UsageError(`path_map ${vpath}: follow_symlinks must be true or false`);
    }
    const min = e.min_copies ?? 1;
    if (typeof min !== 'number' || !Number.isInteger(min) || min < 0) {
      throw new UsageError(`path_map ${vpath}: min_copies must be a whole number ≥ 0`);
    }
    out.push({
      vpath,
      realpath: Buffer.from(e.path),
      include: strings(e.include, `path_map ${vpath}: include`),
      exclude: strings(e.exclude, `path_map ${vpath}: exclude`),
      followSymlinks: e.follow_symlinks === true,
      minCopies: min,
    });
  }
  return out;
}

function validateDisks(cat: Catalog, disks: unknown): ValidDisk[] {
  const out: ValidDisk[] = [];
  const finalNames = new Map(listDisks(cat.db).map((d) => [d.uuid, d.name]));
  for (const [uuidText, entry] of Object.entries(obj(disks, 'disks'))) {
    const row = getDiskByUuid(cat.db, uuidText);
    if (row === undefined) {
      throw new UsageError(
        `disks: no registered disk has uuid ${printable(uuidText)} (disks are added with 'disk add', not by import)`,
      );
    }
    const e = obj(entry, `disks ${row.name}`);
    const changes: ValidDisk['changes'] = {};
    for (const k of Object.keys(e)) {
      if (!['name', 'size_bytes', 'relative_path', 'fstype', 'fsuuid'].includes(k)) {
        throw new UsageError(`disks ${row.name}: unknown key '${printable(k)}'`);
      }
    }
    if (e.name !== undefined) {
      if (typeof e.name !== 'string' || !DISK_NAME_RE.test(e.name)) {
        throw new UsageError(`disks ${row.name}: invalid name (1-64 of A-Z a-z 0-9 . _ -)`);
      }
      changes.name = e.name;
      finalNames.set(row.uuid, e.name);
    }
    if (e.size_bytes !== undefined) {
      const s = e.size_bytes;
      const size =
        typeof s === 'number'
          ? s
          : typeof s === 'string'
            ? /^[\d,]+$/.test(s)
              ? Number(s.replace(/,/g, ''))
              : parseSize(s, `disks ${row.name}: size_bytes`)
            : Number.NaN;
      if (!Number.isSafeInteger(size) || size <= 0)
        throw new UsageError(`disks ${row.name}: size_bytes must be a size above 0`);
      changes.size = size;
    }
    for (const [k, col] of [
      ['relative_path', 'relPath'],
      ['fstype', 'fsType'],
      ['fsuuid', 'fsUuid'],
    ] as const) {
      const v = e[k];
      if (v === undefined) continue;
      if (v !== null && (typeof v !== 'string' || v.includes('\0')))
        throw new UsageError(`disks ${row.name}: ${k} must be a string or null`);
      changes[col] = v === '' ? null : (v as string | null);
    }
    out.push({ uuid: row.uuid, changes });
  }
  const names = [...finalNames.values()];
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw new UsageError(`disks: two disks would be named '${dup}'`);
  return out;
}

/**
 * Apply `doc` to `cat` (see the module comment). Throws a UsageError, with nothing changed, on
 * the first invalid value. With `dryRun`, validates and reports, then rolls back.
 */
export function importConfig(cat: Catalog, doc: ConfigDoc, options: { dryRun?: boolean } = {}): ImportSummary {
  const summary: ImportSummary = {
    sourcesAdded: [],
    sourcesChanged: [],
    sourcesRemoved: [],
    settings: 0,
    settingsRemoved: 0,
    disksChanged: [],
    filesUpdated: 0,
    warnings: [],
    dryRun: options.dryRun ?? false,
  };
  // Validate everything before writing anything.
  const sources = doc.path_map === undefined ? undefined : validateSources(cat, doc.path_map);
  const prefix = doc.path_prefix === undefined ? undefined : normalizeVpath(String(doc.path_prefix));
  let settings: Array<[string, PathSettings]> | undefined;
  if (doc.path_config !== undefined) {
    settings = [];
    for (const [vText, s] of Object.entries(obj(doc.path_config, 'path_config'))) {
      const vpath = normalizeVpath(vText);
      if (prefix !== undefined && !(vpath === prefix || prefix === '/' || vpath.startsWith(`${prefix}/`))) {
        throw new UsageError(`path_config ${vpath}: outside path_prefix ${prefix}`);
      }
      settings.push([vpath, parsePathSettings(s, `path_config ${vpath}`)]);
    }
  }
  const disks = doc.disks === undefined ? undefined : validateDisks(cat, doc.disks);
  for (const s of sources ?? []) {
    if (!fs.existsSync(s.realpath))
      summary.warnings.push(`path_map ${s.vpath}: ${s.realpath.toString()} does not exist (yet)`);
  }
  const apply = (): void => {
    const beforeSources = listSources(cat.db);
    const before = loadSettingsMap(cat.db);
    if (sources !== undefined) applySources(cat, beforeSources, sources, summary);
    if (settings !== undefined) {
      summary.settingsRemoved =
        prefix === undefined ? deletePathSettingsUnder(cat.db, '/') : deletePathSettingsUnder(cat.db, prefix);
      for (const [vpath, s] of settings) {
        if (isEmptySettings(s)) {
          deletePathSettings(cat.db, vpath);
          continue;
        }
        putPathSettingsJson(cat.db, vpath, settingsToJson(s));
        summary.settings += 1;
      }
    }
    for (const d of disks ?? []) {
      const row = getDiskByUuid(cat.db, d.uuid);
      if (row === undefined) continue;
      const changed = Object.entries(d.changes).some(([k, v]) => (row as unknown as Record<string, unknown>)[k] !== v);
      if (!changed) continue;
      // Names first to a placeholder, so that two disks may swap names.
      if (d.changes.name !== undefined && d.changes.name !== row.name) {
        updateDisk(cat.db, row.id, { name: `\0renaming-${row.id}` });
        summary.warnings.push(
          `disk ${row.name} renamed ${d.changes.name}: the disk's own label follows at its next 'disk set' or sync`,
        );
      }
      summary.disksChanged.push(d.changes.name ?? row.name);
    }
    for (const d of disks ?? []) {
      const row = getDiskByUuid(cat.db, d.uuid);
      if (row !== undefined) updateDisk(cat.db, row.id, d.changes);
    }
    const afterSources = listSources(cat.db);
    summary.filesUpdated = refreshFiles(cat.db, '/', before, loadSettingsMap(cat.db), afterSources, beforeSources);
  };
  if (!summary.dryRun) {
    cat.db.transaction(apply).immediate();
    return summary;
  }
  const rollback = new Error('dry run');
  try {
    cat.db
      .transaction(() => {
        apply();
        throw rollback;
      })
      .immediate();
  } catch (err) {
    if (err !== rollback) throw err;
  }
  return summary;
}

function applySources(cat: Catalog, current: SourceRow[], wanted: ValidSource[], summary: ImportSummary): void {
  const byVpath = new Map(current.map((s) => [s.vpath, s]));
  const wantedSet = new Set(wanted.map((w) => w.vpath));
  for (const s of current) {
    if (wantedSet.has(s.vpath)) continue;
    summary.sourcesRemoved.push({ vpath: s.vpath, files: deleteSource(cat.db, s.id) });
  }
  for (const w of wanted) {
    const s = byVpath.get(w.vpath);
    if (s === undefined) {
      insertSource(cat.db, w);
      summary.sourcesAdded.push(w.vpath);
      continue;
    }
    const same =
      s.realpath.equals(w.realpath) &&
      JSON.stringify(s.include) === JSON.stringify(w.include) &&
      JSON.stringify(s.exclude) === JSON.stringify(w.exclude) &&
      s.followSymlinks === w.followSymlinks &&
      s.minCopies === w.minCopies;
    if (same) continue;
    cat.db
      .prepare(
        'UPDATE sources SET realpath = ?, include_json = ?, exclude_json = ?, follow_symlinks = ?, min_copies = ? WHERE id = ?',
      )
      .run(
        w.realpath,
        JSON.stringify(w.include),
        JSON.stringify(w.exclude),
        w.followSymlinks ? 1 : 0,
        w.minCopies,
        s.id,
      );
    summary.sourcesChanged.push(w.vpath);
  }
}

/** The document as text: 2-space JSON and a final newline. */
export function configText(doc: ConfigDoc): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** Human lines for an import summary. */
export function describeImport(s: ImportSummary): string[] {
  const would = s.dryRun ? 'would be ' : '';
  const lines: string[] = [];
  for (const v of s.sourcesAdded) lines.push(`mapping ${v} ${would}added`);
  for (const v of s.sourcesChanged) lines.push(`mapping ${v} ${would}changed`);
  for (const r of s.sourcesRemoved)
    lines.push(`mapping ${r.vpath} ${would}removed (${counted(r.files, 'catalogued file')} dropped)`);
  for (const d of s.disksChanged) lines.push(`disk ${d} ${would}updated`);
  if (s.sourcesAdded.length + s.sourcesChanged.length + s.sourcesRemoved.length + s.disksChanged.length === 0) {
    lines.push('mappings and disks: already as in the file');
  }
  lines.push(`${counted(s.settings, 'path setting')} ${would}stored (${formatCount(s.settingsRemoved)} replaced)`);
  lines.push(`${counted(s.filesUpdated, 'catalogued file')} ${would}updated`);
  return lines;
}
