/**
 * Opening the home catalogue: `distbackup.sqlite` in the data folder, WAL mode with
 * `synchronous=FULL` (so an uncount is durable before the object it uncounts is unlinked,
 * RELIABILITY.md test 3), foreign keys on, migrations applied. One writer per process;
 * a Catalog is not shared across threads.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { writeFully } from '../core/durable.js';
import { DistbackupError, fileError, RefusedError } from '../core/errors.js';
import { MIGRATIONS, READ_COMPAT } from './schema.js';

export type Db = Database.Database;

/** The home data folder: `-d DIR`, else `$DISTBACKUP_PATH`, else `~/.config/distbackup/`. */
export function resolveDataDir(flag?: string): string {
  if (flag !== undefined && flag !== '') return path.resolve(flag);
  const env = process.env.DISTBACKUP_PATH;
  if (env !== undefined && env !== '') return path.resolve(env);
  return path.join(os.homedir(), '.config', 'distbackup');
}

export const CATALOGUE_FILE = 'distbackup.sqlite';

/**
 * How the home catalogue is opened:
 * - `read-write`: the normal mode; created if missing, migrated, WAL with `synchronous=FULL`.
 * - `read-only`: a read-only connection (`SQLITE_OPEN_READONLY`; TEMP tables still work), for read
 *   commands and for dry runs that compute without writing: any write throws SQLITE_READONLY.
 *   A missing catalogue, or one whose schema needs an upgrade, is an error. SQLite may create
 *   its empty `-wal`/`-shm` side files next to a WAL catalogue; the catalogue's bytes never change.
 * - `dry-run`: a private writable copy in memory of the catalogue (read through a read-only
 *   connection, WAL content included), discarded at close; for `-n/--dry-run` runs whose
 *   use-case applies its changes and rolls them back. A missing catalogue gives an empty one,
 *   an old schema is migrated in the copy. Holds the whole catalogue in memory: meant for the
 *   settings, disk and config commands, not for scanning millions of files.
 */
export type CatalogMode = 'read-write' | 'read-only' | 'dry-run';

/** An open home catalogue. */
export interface Catalog {
  readonly db: Db;
  readonly dataDir: string;
  readonly file: string;
  /** Stable id of this catalogue, written into every disk it registers. */
  readonly id: string;
  /** True unless opened `read-write`: nothing done through `db` reaches the catalogue file. */
  readonly readonly: boolean;
  readonly mode: CatalogMode;
  /** The schema the file has when this connection is an in-memory copy migrated from it. */
  readonly upgradedFrom?: number;
  close(): void;
}

/**
 * Options of openCatalog: `mode` (default `read-write`); `readonly: true` = `mode: 'read-only'`.
 * `upgradeInMemory` (read-only only): a catalogue whose schema needs an upgrade is opened as a
 * `dry-run` copy migrated in memory instead of refused (a dry run of a reading command on an
 * older catalogue); `upgradedFrom` then says from which schema.
 */
export interface OpenCatalogOptions {
  readonly?: boolean;
  mode?: CatalogMode;
  upgradeInMemory?: boolean;
  /**
   * `read-write` only: whether a missing catalogue (and data folder) is created; default true.
   * The CLI sets it only for the commands that put something in a new catalogue (source map,
   * disk add, the imports): the others refuse a missing catalogue instead of leaving an empty
   * one behind.
   */
  create?: boolean;
}

/** The mode that opening with `options` selects. */
export function catalogMode(options: OpenCatalogOptions = {}): CatalogMode {
  return options.mode ?? (options.readonly === true ? 'read-only' : 'read-write');
}

/**
 * Open the catalogue in `dataDir` in the given mode (see CatalogMode). Only `read-write` (unless
 * `create: false`) creates the data folder or the catalogue; a `read-only` or `create: false`
 * open of a missing catalogue throws a DistbackupError saying so (`dry-run` gives an empty one
 * in memory).
 */
export function openCatalog(dataDir: string, options: OpenCatalogOptions = {}): Catalog {
  const mode = catalogMode(options);
  if (mode === 'dry-run') return openDryRunCatalog(dataDir);
  const file = path.join(dataDir, CATALOGUE_FILE);
  const readonly = mode === 'read-only';
  if ((readonly || options.create === false) && !fs.existsSync(file)) {
    throw new DistbackupError(`${file}: no catalogue yet (map a source with 'distbackup source map' first)`, {
      code: 'no-catalogue',
      path: file,
    });
  }
  if (!readonly) fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  let db: Db;
  try {
    db = new Database(file, { readonly, fileMustExist: readonly, timeout: 5000 });
  } catch (err) {
    throw sqliteFileError(file, err, 'cannot open the catalogue');
  }
  if (readonly && options.upgradeInMemory === true) {
    const version = schemaVersion(db, file);
    if (version < MIGRATIONS.length) {
      db.close();
      return { ...openDryRunCatalog(dataDir), upgradedFrom: version };
    }
  }
  setUp(db, file, { readonly, wal: !readonly });
  return handle(db, dataDir, file, mode);
}

/** The schema version (`user_version`) of an open catalogue; closes `db` when it cannot be read. */
function schemaVersion(db: Db, file: string): number {
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } catch (err) {
    db.close();
    throw sqliteFileError(file, err, 'cannot read the catalogue');
  }
}

/** Whether `err` was thrown by SQLite (better-sqlite3's SqliteError, code `SQLITE_…`). */
export function isSqliteError(err: unknown): err is Error & { code: string } {
  return err instanceof Database.SqliteError;
}

/**
 * Any error met on the SQLite file `file` as the one-line DistbackupError of SPEC §3, naming the
 * file, what was being done and the cause: `FILE: WHAT: disk I/O error (SQLITE_IOERR_FSYNC)`.
 * A DistbackupError is returned as it is; a system error keeps its errno text and code.
 */
export function sqliteFileError(file: string, err: unknown, what?: string): DistbackupError {
  if (err instanceof DistbackupError) return err;
  if (!isSqliteError(err)) return fileError(file, err, what);
  const prefix = what === undefined ? file : `${file}: ${what}`;
  const cause = err.message.includes(err.code) ? err.message : `${err.message} (${err.code})`;
  return new DistbackupError(`${prefix}: ${cause}`, {
    code: err.code.startsWith('SQLITE_BUSY') ? 'catalogue-busy' : err.code,
    path: file,
    cause: err,
  });
}

/** `mode: 'dry-run'`: a writable in-memory copy of the catalogue; the file is only read. */
function openDryRunCatalog(dataDir: string): Catalog {
  const file = path.join(dataDir, CATALOGUE_FILE);
  let db: Db;
  try {
    if (fs.existsSync(file)) {
      const source = new Database(file, { readonly: true, fileMustExist: true, timeout: 5000 });
      let image: Buffer;
      try {
        // serialize() reads through the pager, so committed WAL frames are included.
        image = source.serialize();
      } finally {
        source.close();
      }
      // Bytes 18-19 of the header say WAL (2); an in-memory database needs the legacy
      // journal (1), or SQLite refuses to open the image.
      if (image.length >= 20) {
        image[18] = 1;
        image[19] = 1;
      }
      db = new Database(image);
    } else {
      db = new Database(':memory:');
    }
  } catch (err) {
    throw sqliteFileError(file, err, 'cannot open the catalogue for a dry run');
  }
  // An in-memory copy: no WAL, and migrating it changes nothing on disk.
  setUp(db, file, { readonly: false, wal: false });
  return handle(db, dataDir, file, 'dry-run');
}

/**
 * The settings every home connection gets, then the migrations; closes `db` when either fails.
 * WAL with `synchronous=FULL` for the read-write file (see the module comment). No query_only
 * pragma in read-only mode: SQLITE_OPEN_READONLY already refuses every write to the file, and
 * query_only would also refuse the TEMP tables that status and the views use.
 */
function setUp(db: Db, file: string, opts: { readonly: boolean; wal: boolean }): void {
  try {
    if (opts.wal) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
    }
    db.pragma('foreign_keys = ON');
    // A row removed by INSERT OR REPLACE then fires the delete triggers of `files` (schema 5).
    db.pragma('recursive_triggers = ON');
    db.pragma('trusted_schema = OFF');
    db.pragma('cache_size = -65536');
    migrate(db, file, opts.readonly);
  } catch (err) {
    db.close();
    throw sqliteFileError(file, err, 'cannot set up the catalogue');
  }
}

/** The Catalog of an open, set-up connection. */
function handle(db: Db, dataDir: string, file: string, mode: CatalogMode): Catalog {
  const id = mode === 'read-only' ? readCatalogueId(db) : ensureCatalogueId(db);
  return {
    db,
    dataDir,
    file,
    id,
    readonly: mode !== 'read-write',
    mode,
    close: () => {
      if (db.open) db.close();
    },
  };
}

function readCatalogueId(db: Db): string {
  return (db.prepare(`SELECT value FROM meta WHERE key = 'catalogue_id'`).pluck().get() as string | undefined) ?? '';
}

function migrate(db: Db, file: string, readonly: boolean): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > MIGRATIONS.length) {
    const problem = newerSchemaProblem(db, version);
    // A newer catalogue is read when its writer says readers of this schema still read it
    // right; it is never written (this build would not keep what the newer schema needs).
    if (!readonly || problem !== undefined) {
      throw new RefusedError(`${file}: ${problem ?? newerText(version)}; upgrade distbackup`, {
        code: 'schema-newer',
        path: file,
      });
    }
    return;
  }
  // At the current schema nothing is written on open (listings open read-write and must never
  // fail or wait on it): read_compat is recorded by the migration that makes a catalogue newer,
  // which is the only time a reader can need it.
  if (version === MIGRATIONS.length) return;
  if (readonly) {
    throw new DistbackupError(
      `${file}: catalogue schema ${version} needs an upgrade; run a command that writes first`,
      {
        path: file,
      },
    );
  }
  const apply = db.transaction(() => {
    for (let v = version; v < MIGRATIONS.length; v++) {
      db.exec(MIGRATIONS[v] ?? '');
      db.pragma(`user_version = ${v + 1}`);
    }
    recordReadCompat(db);
  });
  apply.immediate();
}

function newerText(version: number): string {
  return `catalogue schema ${version} is newer than this distbackup understands (${MIGRATIONS.length})`;
}

/**
 * Why this build may not even read a catalogue of the newer schema `version`; undefined when
 * its `read_compat` (schema.ts READ_COMPAT) is one this build meets.
 */
function newerSchemaProblem(db: Db, version: number): string | undefined {
  let raw: unknown;
  try {
    raw = db.prepare(`SELECT value FROM meta WHERE key = 'read_compat'`).pluck().get();
  } catch {
    raw = undefined;
  }
  const needs = typeof raw === 'string' && /^[1-9][0-9]{0,5}$/.test(raw) ? Number(raw) : undefined;
  if (needs === undefined) return `${newerText(version)}, and it does not say which older ones may read it`;
  if (needs > MIGRATIONS.length) return `${newerText(version)}; reading it needs schema ${needs} or later`;
  return undefined;
}

/** Set `read_compat` in `meta` to READ_COMPAT (in the migration's transaction). */
function recordReadCompat(db: Db): void {
  const want = String(READ_COMPAT);
  const have = db.prepare(`SELECT value FROM meta WHERE key = 'read_compat'`).pluck().get();
  if (have !== want) db.prepare(`INSERT OR REPLACE INTO meta(key, value) VALUES ('read_compat', ?)`).run(want);
}

function ensureCatalogueId(db: Db): string {
  const existing = db.prepare(`SELECT value FROM meta WHERE key = 'catalogue_id'`).pluck().get() as string | undefined;
  if (existing !== undefined) return existing;
  const id = randomUUID();
  db.prepare(`INSERT INTO meta(key, value) VALUES ('catalogue_id', ?)`).run(id);
  return id;
}

/**
 * Copy the disk's file `file` to the new private file `copy` (0600): opened without following a
 * link or waiting on a FIFO, checked to be a regular file, read to its end in 1 MiB chunks. Not
 * copyFileSync: it follows a link (to /dev/zero, say, read without end), blocks on a FIFO, and
 * spins forever on a file that shrinks during the copy (libuv copies the size it saw first).
 */
export function copyUntrusted(file: string, copy: string): void {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    if (!fs.fstatSync(fd).isFile()) throw new Error('not a regular file');
    const out = fs.openSync(copy, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (let pos = 0; ; ) {
        const n = fs.readSync(fd, buf, 0, buf.length, pos);
        if (n === 0) break;
        writeFully(out, buf.subarray(0, n), pos);
        pos += n;
      }
    } finally {
      fs.closeSync(out);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Open a SQLite file that came from a disk (untrusted input, RELIABILITY.md §4): copied to a
 * private temp file first, opened read-only (SQLITE_OPEN_READONLY) with trusted_schema OFF and
 * cell_size_check, then quick_check'ed. The caller closes it; the temp copy is removed on close.
 * No query_only: it refuses the TEMP tables that status and restore queries build (an attached
 * scratch database does not help: it is refused too, and a read-only open makes it read-only),
 * while the read-only open already refuses every write to the copy, and the disk's own file is
 * never opened by SQLite at all.
 */
export function openUntrustedCatalogue(file: string): Catalog {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'distbackup-diskcat-'));
  const copy = path.join(dir, CATALOGUE_FILE);
  const cleanup = (): void => fs.rmSync(dir, { recursive: true, force: true });
  let db: Db;
  try {
    copyUntrusted(file, copy);
    db = new Database(copy, { readonly: true, fileMustExist: true });
  } catch (err) {
    cleanup();
    throw new DistbackupError(`${file}: cannot read the disk's catalogue copy: ${(err as Error).message}`, {
      path: file,
      cause: err,
    });
  }
  try {
    db.pragma('trusted_schema = OFF');
    db.pragma('cell_size_check = ON');
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new Error(`quick_check: ${String(check)}`);
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version < 1) throw new Error(`unsupported catalogue schema ${version}`);
    if (version > MIGRATIONS.length) {
      const problem = newerSchemaProblem(db, version);
      if (problem !== undefined) throw new Error(`${problem}; upgrade distbackup`);
    }
  } catch (err) {
    db.close();
    cleanup();
    throw new DistbackupError(`${file}: the disk's catalogue copy is unusable: ${(err as Error).message}`, {
      code: 'disk-catalogue-corrupt',
      path: file,
      cause: err,
    });
  }
  const id = readCatalogueId(db);
  return {
    db,
    dataDir: path.dirname(file),
    file,
    id,
    readonly: true,
    mode: 'read-only',
    close: () => {
      if (db.open) db.close();
      cleanup();
    },
  };
}
