/**
 * `debug info VPATH` and `debug hash FILE`: what the catalogue knows of one virtual path (its row,
 * its object and the disks holding it, the settings and rules that apply and why it is or is not
 * backed up), and the SHA-256 of a real file with where that content is already stored.
 * Read-only.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import type { Catalog } from '../catalog/db.js';
import { FileKind, NO_CAP } from '../catalog/schema.js';
import { listSources } from '../catalog/sources.js';
import { fileError } from '../core/errors.js';
import { displayPath, normalizeVpath, subtreeRange, vpathContains } from '../core/vpath.js';
import type { Exclusion } from './path-settings.js';
import { type EffectiveDoc, loadSettingsMap, SettingsResolver, showSettings } from './settings.js';

/** `debug info --json`. */
export interface DebugInfo {
  vpath: string;
  /** The mapping that owns the path and the real path it stands for, if any. */
  source: { vpath: string; realPath: string } | null;
  catalogued: null | {
    kind: 'file' | 'folder' | 'symlink';
    size: number;
    mtime: string | null;
    mode: string;
    hash: string | null;
    linkTarget: string | null;
    stored: { priority: number; minCopies: number; maxCopies: number | null };
    disks: Array<{ name: string; verified: string | null }>;
    /** Other catalogued paths with the same content. */
    sameContent: number;
  };
  /** For a folder: catalogued files and bytes below it. */
  below: { files: number; bytes: number } | null;
  /** What settings and rules give this path (before any sidecar). */
  settings: { priority: number; minCopies: number; maxCopies: number | null; excluded: Exclusion | null };
  /** The folder's own settings and the inherited ones, when the path is (or may be) a folder. */
  folder: EffectiveDoc | null;
}

const KIND_NAME: Record<number, 'file' | 'folder' | 'symlink'> = {
  [FileKind.file]: 'file',
  [FileKind.dir]: 'folder',
  [FileKind.symlink]: 'symlink',
};

/** Everything known of `vpathText`. */
export function debugInfo(cat: Catalog, vpathText: string): DebugInfo {
  const vpath = normalizeVpath(vpathText);
  const db = cat.db;
  const sources = listSources(db);
  const owner = sources.filter((s) => vpathContains(s.vpath, vpath)).sort((a, b) => b.vpath.length - a.vpath.length)[0];
  const source =
    owner === undefined
      ? null
      : {
          vpath: owner.vpath,
          realPath: displayPath(
            Buffer.concat([owner.realpath, Buffer.from(owner.vpath === '/' ? vpath : vpath.slice(owner.vpath.length))]),
          ),
        };
  const row = db
    .prepare(
      `SELECT f.kind, f.size, f.mtime_ns, f.mode, f.link_target, f.object_id, f.priority, f.min_copies, f.max_copies, o.hash
       FROM files f LEFT JOIN objects o ON o.id = f.object_id WHERE f.vpath = ?`,
    )
    .safeIntegers(true)
    .get(Buffer.from(vpath)) as
    | {
        kind: bigint;
        size: bigint;
        mtime_ns: bigint;
        mode: bigint;
        link_target: Buffer | null;
        object_id: bigint | null;
        priority: bigint;
        min_copies: bigint;
        max_copies: bigint;
        hash: string | null;
      }
    | undefined;
  let catalogued: DebugInfo['catalogued'] = null;
  if (row !== undefined) {
    const objectId = row.object_id === null ? null : Number(row.object_id);
    const disks =
      objectId === null
        ? []
        : (db
            .prepare(
              `SELECT d.name, c.verified_ms AS v FROM copies c JOIN disks d ON d.id = c.disk_id
               WHERE c.object_id = ? AND d.dropped_ms IS NULL ORDER BY d.name`,
            )
            .all(objectId) as Array<{ name: string; v: number | null }>);
    const same =
      objectId === null
        ? 0
        : (db.prepare('SELECT count(*) FROM files WHERE object_id = ? AND kind = 0').pluck().get(objectId) as number) -
          1;
    catalogued = {
      kind: KIND_NAME[Number(row.kind)] ?? 'file',
      size: Number(row.size),
      mtime: row.mtime_ns === 0n ? null : new Date(Number(row.mtime_ns / 1_000_000n)).toISOString(),
      mode: `0${Number(row.mode).toString(8)}`,
      hash: row.hash,
      linkTarget: row.link_target === null ? null : displayPath(row.link_target),
      stored: {
        priority: Number(row.priority),
        minCopies: Number(row.min_copies),
        maxCopies: Number(row.max_copies) >= NO_CAP ? null : Number(row.max_copies),
      },
      disks: disks.map((d) => ({ name: d.name, verified: d.v === null ? null : new Date(d.v).toISOString() })),
      sameContent: Math.max(0, same),
    };
  }
  const isFolder = catalogued === null || catalogued.kind === 'folder';
  let below: DebugInfo['below'] = null;
  if (isFolder) {
    const { lo, hi } = subtreeRange(vpath);
    below = db
      .prepare(
        `SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM files
         WHERE kind = 0 AND vpath >= ? AND vpath < ?`,
      )
      .get(lo, hi) as { files: number; bytes: number };
  }
  const resolver = new SettingsResolver(loadSettingsMap(db), sources);
  const f = resolver.file(vpath);
  return {
    vpath,
    source,
    catalogued,
    below,
    settings: { priority: f.priority, minCopies: f.minCopies, maxCopies: f.maxCopies, excluded: f.exclusion },
    folder: isFolder ? (showSettings(cat, [vpath])[0] ?? null) : null,
  };
}

/** `debug hash --json`. */
export interface DebugHash {
  path: string;
  size: number;
  hash: string;
  /** Whether the catalogue knows this content, and which disks hold it. */
  known: boolean;
  disks: string[];
  paths: string[];
}

/** SHA-256 of the real file `file` (read in 1 MiB chunks), and where the catalogue has it. */
export function debugHash(cat: Catalog | undefined, file: string): DebugHash {
  const h = createHash('sha256');
  let size = 0;
  try {
    const fd = fs.openSync(file, fs.constants.O_RDONLY);
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, null);
        if (n === 0) break;
        h.update(buf.subarray(0, n));
        size += n;
      }
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    throw fileError(file, err, 'cannot hash it');
  }
  const hash = h.digest('hex');
  const out: DebugHash = { path: file, size, hash, known: false, disks: [], paths: [] };
  if (cat === undefined) return out;
  const id = cat.db.prepare('SELECT id FROM objects WHERE hash = ?').pluck().get(hash) as number | undefined;
  if (id === undefined) return out;
  out.known = true;
  out.disks = cat.db
    .prepare(
      `SELECT d.name FROM copies c JOIN disks d ON d.id = c.disk_id WHERE c.object_id = ? AND d.dropped_ms IS NULL ORDER BY d.name`,
    )
    .pluck()
    .all(id) as string[];
  out.paths = (
    cat.db
      .prepare('SELECT vpath FROM files WHERE object_id = ? AND kind = 0 ORDER BY vpath LIMIT 20')
      .pluck()
      .all(id) as Buffer[]
  ).map((b) => displayPath(b));
  return out;
}
