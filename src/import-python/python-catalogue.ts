/**
 * Reading a catalogue written by the Python distbackup (schema version 31), as untrusted input:
 * the file (and its `-wal`, which may hold the last commits) is copied to a private temp folder
 * and opened there with `trusted_schema=OFF`, `query_only` and `cell_size_check`, then
 * `quick_check`ed; the original is never opened, so neither it nor its WAL can be changed.
 * Every row is validated by the importer; this module only checks that the tables and columns
 * it reads exist and streams them.
 *
 * This is the one place outside src/catalog/ that opens SQLite: a foreign, read-only schema that
 * the home catalogue's statements must never see. Not thread-safe.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { copyUntrusted } from '../catalog/db.js';
import { DistbackupError, describeError, RefusedError } from '../core/errors.js';

/** The schema version this importer reads (`PRAGMA user_version` of the Python catalogue). */
export const PYTHON_SCHEMA_VERSION = 31;

/** Columns read from each table; a catalogue missing one is refused. */
export const PYTHON_COLUMNS: Record<string, readonly string[]> = {
  path_map: ['virtual_path', 'real_path'],
  path_config: ['virtual_path', 'config'],
  file_tree: ['virtual_path', 'last_modified', 'hash', 'ino', 'size', 'priority', 'maxcopies'],
  symbolic_link: ['virtual_path', 'target'],
  object: ['hash', 'size', 'nexus'],
  disk: ['uuid', 'name', 'nexus_index', 'relative_path', 'fstype', 'fsuuid', 'size'],
};

export interface PyPathMap {
  virtual_path: unknown;
  real_path: unknown;
}
export interface PyPathConfig {
  virtual_path: unknown;
  config: unknown;
}
export interface PyFile {
  virtual_path: unknown;
  last_modified: unknown;
  hash: unknown;
  ino: unknown;
  size: unknown;
  priority: unknown;
  maxcopies: unknown;
}
export interface PyLink {
  virtual_path: unknown;
  target: unknown;
}
export interface PyObject {
  hash: unknown;
  size: unknown;
  nexus: unknown;
}
export interface PyDisk {
  uuid: unknown;
  name: unknown;
  nexus_index: unknown;
  relative_path: unknown;
  fstype: unknown;
  fsuuid: unknown;
  size: unknown;
}

/** An open Python catalogue (a private copy). Values are `unknown`: validate before use. */
export interface PythonCatalogue {
  readonly file: string;
  readonly schemaVersion: number;
  count(table: keyof typeof PYTHON_COLUMNS): number;
  pathMaps(): PyPathMap[];
  pathConfigs(): PyPathConfig[];
  files(): IterableIterator<PyFile>;
  links(): IterableIterator<PyLink>;
  objects(): IterableIterator<PyObject>;
  disks(): PyDisk[];
  close(): void;
}

/**
 * Open the Python catalogue `file` (or the `distbackup.sqlite` inside a folder). Refuses (exit 2)
 * a schema version other than 31 and a file missing a table or column that is read.
 */
export function openPythonCatalogue(fileOrDir: string): PythonCatalogue {
  let file = path.resolve(fileOrDir);
  try {
    if (fs.statSync(file).isDirectory()) file = path.join(file, 'distbackup.sqlite');
  } catch (err) {
    throw new DistbackupError(`${file}: cannot read the Python catalogue: ${describeError(err)}`, { path: file });
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'distbackup-pycat-'));
  const cleanup = (): void => fs.rmSync(dir, { recursive: true, force: true });
  const copy = path.join(dir, 'python.sqlite');
  let db: Database.Database;
  try {
    // Resolved first (a link the user names is followed), then read as a regular file only: a
    // FIFO there (a borrowed disk) would block the run.
    copyUntrusted(fs.realpathSync(file), copy);
    if (fs.existsSync(`${file}-wal`)) copyUntrusted(fs.realpathSync(`${file}-wal`), `${copy}-wal`);
    // Our private copy, opened read-write only so that SQLite may fold the copied WAL into it.
    db = new Database(copy, { fileMustExist: true });
  } catch (err) {
    cleanup();
    throw new DistbackupError(`${file}: cannot read the Python catalogue: ${describeError(err)}`, {
      path: file,
      cause: err,
    });
  }
  try {
    db.pragma('trusted_schema = OFF');
    db.pragma('cell_size_check = ON');
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new Error(`quick_check: ${String(check)}`);
    db.pragma('query_only = ON');
  } catch (err) {
    db.close();
    cleanup();
    throw new DistbackupError(`${file}: not a readable SQLite catalogue: ${(err as Error).message}`, {
      code: 'python-catalogue-corrupt',
      path: file,
      cause: err,
    });
  }
  const version = db.pragma('user_version', { simple: true }) as number;
  const fail = (msg: string): never => {
    db.close();
    cleanup();
    throw new RefusedError(`${file}: ${msg}`, { code: 'python-schema', path: file });
  };
  // 0 = no version recorded by the file itself: accepted when every table and column read exists.
  if (version !== PYTHON_SCHEMA_VERSION && version !== 0) {
    fail(
      `Python catalogue schema version ${version}; this import reads version ${PYTHON_SCHEMA_VERSION} (run the Python distbackup once to upgrade it)`,
    );
  }
  for (const [table, cols] of Object.entries(PYTHON_COLUMNS)) {
    const have = new Set(
      (db.prepare(`SELECT name FROM pragma_table_info(?)`).pluck().all(table) as string[]).map((c) => c.toLowerCase()),
    );
    if (have.size === 0) fail(`not a Python distbackup catalogue: no table '${table}'`);
    for (const c of cols)
      if (!have.has(c)) fail(`not a Python distbackup catalogue: table '${table}' has no column '${c}'`);
  }
  const select = (table: string): string => `SELECT ${(PYTHON_COLUMNS[table] ?? []).join(', ')} FROM ${table}`;
  return {
    file,
    schemaVersion: version,
    count: (table) => db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number,
    pathMaps: () => db.prepare(`${select('path_map')} ORDER BY virtual_path`).all() as PyPathMap[],
    pathConfigs: () => db.prepare(`${select('path_config')} ORDER BY virtual_path`).all() as PyPathConfig[],
    files: () => db.prepare(`${select('file_tree')} ORDER BY virtual_path`).iterate() as IterableIterator<PyFile>,
    links: () => db.prepare(`${select('symbolic_link')} ORDER BY virtual_path`).iterate() as IterableIterator<PyLink>,
    objects: () => db.prepare(select('object')).iterate() as IterableIterator<PyObject>,
    disks: () => db.prepare(`${select('disk')} ORDER BY nexus_index`).all() as PyDisk[],
    close: () => {
      if (db.open) db.close();
      cleanup();
    },
  };
}
