/**
 * The restore state kept in the restore target (`DEST/.distbackup-restore/state.sqlite`): which
 * virtual paths a restore already rebuilt there, with the hash it wrote, so that the next disk
 * adds only what is still missing and may replace only what distbackup itself wrote. Plus a
 * scratch table of the work of one run, read back in object order (one sequential stream on a
 * hard disk). Rollback-journal mode with synchronous=FULL; one process at a time (the caller
 * holds the restore lock). Not shared across threads.
 */
import Database from 'better-sqlite3';
import { DistbackupError } from '../core/errors.js';

/** One entry to restore in this run (a row of the catalogue in use). */
export interface RestoreTodo {
  vpath: Buffer;
  kind: number;
  sizeBytes: number;
  mtimeNs: bigint;
  mode: number;
  uid: number;
  gid: number;
  linkTarget: Buffer | null;
  /** Object hash for a regular file; '' for dirs and links. */
  hash: string;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
  -- What this restore target already holds from distbackup: path, the hash written ('' for a
  -- dir or link), and when (ms since the epoch).
  CREATE TABLE IF NOT EXISTS restored (
    vpath  BLOB PRIMARY KEY,
    hash   TEXT NOT NULL,
    kind   INTEGER NOT NULL,
    at_ms  INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;
  -- Scratch: the work of the current run. Emptied at the start of every run.
  CREATE TABLE IF NOT EXISTS todo (
    seq         INTEGER PRIMARY KEY,
    vpath       BLOB NOT NULL,
    kind        INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    mode        INTEGER NOT NULL,
    uid         INTEGER NOT NULL,
    gid         INTEGER NOT NULL,
    link_target BLOB,
    hash        TEXT NOT NULL
  ) STRICT;
  CREATE INDEX IF NOT EXISTS todo_hash ON todo(kind, hash, seq);
`;

/** The state database of one restore target. */
export class RestoreState {
  private readonly db: Database.Database;
  private readonly getStmt: Database.Statement;
  private readonly putStmt: Database.Statement;
  private readonly todoStmt: Database.Statement;
  /** Records not yet committed, keyed by the path's bytes as latin1 (a lossless 1:1 mapping). */
  private pending = new Map<string, { vpath: Buffer; hash: string; kind: number }>();

  private constructor(db: Database.Database) {
    this.db = db;
    this.getStmt = db.prepare('SELECT hash FROM restored WHERE vpath = ?').pluck();
    this.putStmt = db.prepare('INSERT OR REPLACE INTO restored (vpath, hash, kind, at_ms) VALUES (?, ?, ?, ?)');
    this.todoStmt = db.prepare(
      `INSERT INTO todo (vpath, kind, size, mtime_ns, mode, uid, gid, link_target, hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
  }

  /** Open (creating) the state file `file`. */
  static open(file: string): RestoreState {
    let db: Database.Database;
    try {
      db = new Database(file, { timeout: 0 });
      db.pragma('journal_mode = DELETE');
      db.pragma('synchronous = FULL');
      // One process at a time (the restore lock): holding SQLite's lock for the whole run
      // saves the lock and hot-journal checks that otherwise cost several syscalls per lookup.
      db.pragma('locking_mode = EXCLUSIVE');
      db.pragma('trusted_schema = OFF');
      db.exec(SCHEMA);
    } catch (err) {
      throw new DistbackupError(`${file}: cannot open the restore state: ${(err as Error).message}`, {
        path: file,
        cause: err,
      });
    }
    return new RestoreState(db);
  }

  /** The hash recorded for `vpath` ('' for a dir or link), or undefined when never restored here. */
  restoredHash(vpath: Buffer): string | undefined {
    const pending = this.pending.get(vpath.toString('latin1'));
    if (pending !== undefined) return pending.hash;
    return this.getStmt.get(vpath) as string | undefined;
  }

  /**
   * Record `vpath` as restored. Buffered: `commit()` writes the batch in one transaction. The
   * caller commits only after the files of the batch are durable.
   */
  markRestored(vpath: Buffer, hash: string, kind: number): void {
    this.pending.set(vpath.toString('latin1'), { vpath, hash, kind });
  }

  /** Number of records buffered since the last commit. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Write the buffered records in one transaction. */
  commit(): void {
    if (this.pending.size === 0) return;
    const now = Date.now();
    const batch = this.pending;
    this.db.transaction(() => {
      for (const p of batch.values()) this.putStmt.run(p.vpath, p.hash, p.kind, now);
    })();
    this.pending = new Map();
  }

  /** Empty the scratch table of the previous run. */
  clearTodo(): void {
    this.db.prepare('DELETE FROM todo').run();
  }

  /** Add rows to the scratch table, in one transaction. */
  addTodo(rows: readonly RestoreTodo[]): void {
    if (rows.length === 0) return;
    this.db.transaction(() => {
      for (const r of rows) {
        this.todoStmt.run(r.vpath, r.kind, r.sizeBytes, r.mtimeNs, r.mode, r.uid, r.gid, r.linkTarget, r.hash);
      }
    })();
  }

  /**
   * The scratch rows of `kind`, by (hash, seq) for files (object order on the disk) and by path
   * for dirs and links, read in pages so the state can be written while they are consumed.
   */
  *iterateTodo(kind: number, orderByHash: boolean, pageSize = 2000): Generator<RestoreTodo> {
    const order = orderByHash ? 'hash, seq' : 'vpath';
    const first = this.db.prepare(`SELECT * FROM todo WHERE kind = ? ORDER BY ${order} LIMIT ?`).safeIntegers(true);
    const next = orderByHash
      ? this.db
          .prepare(`SELECT * FROM todo WHERE kind = ? AND (hash, seq) > (?, ?) ORDER BY ${order} LIMIT ?`)
          .safeIntegers(true)
      : this.db.prepare(`SELECT * FROM todo WHERE kind = ? AND vpath > ? ORDER BY ${order} LIMIT ?`).safeIntegers(true);
    let page = first.all(kind, pageSize) as RawTodo[];
    while (page.length > 0) {
      for (const r of page) yield toTodo(r);
      const last = page[page.length - 1] as RawTodo;
      page = (
        orderByHash ? next.all(kind, last.hash, last.seq, pageSize) : next.all(kind, last.vpath, pageSize)
      ) as RawTodo[];
    }
  }

  /** Rows of `kind` in the scratch table and their bytes. */
  todoTotals(kind: number): { count: number; bytes: number } {
    const r = this.db
      .prepare('SELECT count(*) AS count, coalesce(sum(size), 0) AS bytes FROM todo WHERE kind = ?')
      .get(kind) as { count: number; bytes: number };
    return r;
  }

  close(): void {
    if (this.db.open) {
      try {
        this.commit();
      } finally {
        this.db.close();
      }
    }
  }
}

interface RawTodo {
  seq: bigint;
  vpath: Buffer;
  kind: bigint;
  size: bigint;
  mtime_ns: bigint;
  mode: bigint;
  uid: bigint;
  gid: bigint;
  link_target: Buffer | null;
  hash: string;
}

function toTodo(r: RawTodo): RestoreTodo {
  return {
    vpath: r.vpath,
    kind: Number(r.kind),
    sizeBytes: Number(r.size),
    mtimeNs: r.mtime_ns,
    mode: Number(r.mode),
    uid: Number(r.uid),
    gid: Number(r.gid),
    linkTarget: r.link_target,
    hash: r.hash,
  };
}
