/**
 * Statements on `files` and `objects` for `update`: one folder's catalogued children (through
 * the `files_parent` index, so the scan compares a folder at a time and never loads the tree),
 * upserts, removals that remember what they removed (so a file renamed into a folder scanned
 * later still reuses its hash), hash reuse by device + inode + size + mtime, and the batched
 * writer: one open transaction committed every `commitRows` rows or `commitMs`, so a SIGKILL
 * loses at most one batch and the next run redoes only that.
 *
 * better-sqlite3 is synchronous and a Catalog is one connection: not thread-safe, main thread only.
 */
import type Database from 'better-sqlite3';
import { killPoint } from '../core/kill-points.js';
import type { Db } from './db.js';
import { FileKind, type FileKindValue } from './schema.js';

/** A catalogued child of a folder, as `update` compares it with the scan. */
export interface CatalogChild {
  readonly id: number;
  readonly vpath: Buffer;
  readonly kind: FileKindValue;
  readonly sizeBytes: number;
  readonly mtimeNs: bigint;
  /** 0 = racily clean when hashed: hash it again at the next update. */
  readonly ctimeNs: bigint;
  readonly ino: bigint;
  readonly dev: bigint;
  readonly objectId: number | null;
  readonly linkTarget: Buffer | null;
  readonly priority: number;
  readonly minCopies: number;
  readonly maxCopies: number;
}

/** A row as `update` writes it. dev and ino are stored as signed 64-bit (see `int64`). */
export interface FileRow {
  readonly vpath: Buffer;
  readonly parent: Buffer;
  readonly sourceId: number;
  readonly kind: FileKindValue;
  readonly sizeBytes: number;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly dev: bigint;
  readonly ino: bigint;
  readonly linkTarget: Buffer | null;
  readonly objectId: number | null;
  readonly priority: number;
  readonly minCopies: number;
  readonly maxCopies: number;
}

/** A 64-bit unsigned stat value (dev, ino) as the signed INTEGER SQLite stores; reversible. */
export function int64(v: bigint): bigint {
  return BigInt.asIntN(64, v);
}

/** A catalogued child as `childRows` reads it (the columns of `CatalogChild`, in its order). */
export type ChildRow = readonly [
  bigint,
  Buffer,
  bigint,
  bigint,
  bigint,
  bigint,
  bigint,
  bigint,
  bigint | null,
  Buffer | null,
  bigint,
  bigint,
  bigint,
];

/** The name of child row `r` (its virtual path after the folder's, which is `nameStart` bytes with the slash). */
export function childName(r: ChildRow, nameStart: number): Buffer {
  return r[1].subarray(nameStart);
}

/** Byte order of `name` against the name of child row `r` (negative: `name` comes first). */
export function compareChildName(name: Buffer, r: ChildRow, nameStart: number): number {
  return name.compare(r[1], nameStart);
}

/**
 * True when row `r` records an entry of `kind` with this lstat as it is: size (0 for folders
 * and symlinks), mtime and ctime in ns, inode, a hash for a file, the same target for a symlink.
 * A racily clean row (ctime 0) never matches, so it is hashed again.
 */
export function sameEntry(
  r: ChildRow,
  kind: FileKindValue,
  st: { readonly size: bigint; readonly mtimeNs: bigint; readonly ctimeNs: bigint; readonly ino: bigint },
  linkTarget: Buffer | null,
): boolean {
  return (
    Number(r[2]) === kind &&
    r[3] === (kind === FileKind.file ? st.size : 0n) &&
    r[4] === st.mtimeNs &&
    r[5] === st.ctimeNs &&
    r[6] === int64(st.ino) &&
    (kind !== FileKind.file || r[8] !== null) &&
    (kind !== FileKind.symlink || (r[9] !== null && linkTarget?.equals(r[9]) === true))
  );
}

/** True when row `r` holds these copy settings. */
export function sameSettings(r: ChildRow, priority: number, minCopies: number, maxCopies: number): boolean {
  return Number(r[10]) === priority && Number(r[11]) === minCopies && Number(r[12]) === maxCopies;
}

/** The row id of child row `r`. */
export function childId(r: ChildRow): number {
  return Number(r[0]);
}

/** Child row `r` as a CatalogChild. */
export function catalogChild(r: ChildRow): CatalogChild {
  return {
    id: Number(r[0]),
    vpath: r[1],
    kind: Number(r[2]) as FileKindValue,
    sizeBytes: Number(r[3]),
    mtimeNs: r[4],
    ctimeNs: r[5],
    ino: r[6],
    dev: r[7],
    objectId: r[8] === null ? null : Number(r[8]),
    linkTarget: r[9],
    priority: Number(r[10]),
    minCopies: Number(r[11]),
    maxCopies: Number(r[12]),
  };
}

/** Rows per multi-row upsert statement (64 × 17 values, far below SQLite's 32,766 bound values). */
const UPSERT_ROWS = 64;
const UPSERT_COLUMNS = 17;
/** Positions in one held row of `upsert` (the order of its columns). */
const HELD_KIND = 3;
const HELD_SIZE = 4;
const HELD_MTIME = 5;
const HELD_CTIME = 6;
const HELD_DEV = 10;
const HELD_INO = 11;
const HELD_OBJECT = 13;

export interface FilesWriterOptions {
  /** Rows per transaction (default 10,000: DEVELOPING.md, ≥ 10 k rows per transaction). */
  readonly commitRows?: number;
  /** Longest time a written row waits for its commit (default 2,000 ms). */
  readonly commitMs?: number;
  /** Clock (ms), injectable for tests. */
  readonly now?: () => number;
  /**
   * Write nothing (a dry run over a read-only connection): the write methods change nothing,
   * `removeSubtree` counts what it would remove, `object` gives -1 for a hash not catalogued.
   */
  readonly dryRun?: boolean;
}

/**
 * The catalogue side of `update`. Opens a transaction at the first write and commits it by
 * size or age (`maybeCommit`), and at `close()`. Reads see the rows written in the open
 * transaction (one connection). Temp tables `update_gone` (removed files, for hash reuse) and
 * `update_gc` (objects that may have lost their last reference) live for the connection.
 */
export class FilesWriter {
  /** The connection written to (read-only use by callers: settings, sources). */
  readonly db: Db;
  private readonly commitRows: number;
  private readonly commitMs: number;
  private readonly now: () => number;
  private readonly dryRun: boolean;
  private inTx = false;
  private rows = 0;
  private txStarted = 0;
  /** Transactions committed so far. */
  commits = 0;

  private readonly sChildren: Database.Statement;
  private readonly sUpsert: Database.Statement;
  private readonly sUpsertMany: Database.Statement;
  /** Bound values of upserted rows not yet run (`UPSERT_ROWS` at most): see `upsert`. */
  private pending: unknown[] = [];
  private readonly sSettings: Database.Statement;
  private readonly sDelete: Database.Statement;
  private readonly sGone: Database.Statement;
  private readonly sGc: Database.Statement;
  private readonly sGoneSubtree: Database.Statement;
  private readonly sGcSubtree: Database.Statement;
  private readonly sDeleteSubtree: Database.Statement;
  private readonly sCountSubtree: Database.Statement;
  private readonly sByInode: Database.Statement;
  private readonly sGoneByInode: Database.Statement;
  private readonly sObject: Database.Statement;
  private readonly sInsertObject: Database.Statement;
  private readonly sDirSig: Database.Statement;
  private readonly sPutDirSig: Database.Statement;

  constructor(db: Db, opts: FilesWriterOptions = {}) {
    this.db = db;
    this.commitRows = opts.commitRows ?? 10_000;
    this.commitMs = opts.commitMs ?? 2_000;
    this.now = opts.now ?? Date.now;
    this.dryRun = opts.dryRun ?? false;
    // Statement journals in memory: an UPSERT inside a long transaction needs one per
    // statement, and with the default temp_store each spilled to a temp file (10 pwrites a
    // row, 30× slower measured on 20,000 rows). The temp tables below live in memory too.
    db.pragma('temp_store = MEMORY');
    db.exec(`
      CREATE TEMP TABLE IF NOT EXISTS update_gone (dev INTEGER, ino INTEGER, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, object_id INTEGER);
      CREATE INDEX IF NOT EXISTS temp.update_gone_ino ON update_gone(ino);
      CREATE TEMP TABLE IF NOT EXISTS update_gc (object_id INTEGER PRIMARY KEY);
      DELETE FROM temp.update_gone;
      DELETE FROM temp.update_gc;
    `);
    // `+source_id`: see `subtree` below; the folder's rows come from the files_parent index.
    this.sChildren = db
      .prepare(
        `SELECT id, vpath, kind, size, mtime_ns, ctime_ns, ino, dev, object_id, link_target, priority, min_copies, max_copies
         FROM files WHERE parent = ? AND +source_id = ? ORDER BY vpath`,
      )
      .raw(true)
      .safeIntegers(true);
    const upsert = (rows: number): string =>
      `INSERT INTO files (vpath, parent, source_id, kind, size, mtime_ns, ctime_ns, mode, uid, gid, dev, ino,
                          link_target, object_id, priority, min_copies, max_copies)
       VALUES ${Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}
       ON CONFLICT(vpath) DO UPDATE SET parent = excluded.parent, source_id = excluded.source_id,
         kind = excluded.kind, size = excluded.size, mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns,
         mode = excluded.mode, uid = excluded.uid, gid = excluded.gid, dev = excluded.dev, ino = excluded.ino,
         link_target = excluded.link_target, object_id = excluded.object_id, priority = excluded.priority,
         min_copies = excluded.min_copies, max_copies = excluded.max_copies`;
    this.sUpsert = db.prepare(upsert(1));
    this.sUpsertMany = db.prepare(upsert(UPSERT_ROWS));
    this.sSettings = db.prepare('UPDATE files SET priority = ?, min_copies = ?, max_copies = ? WHERE id = ?');
    this.sDelete = db.prepare('DELETE FROM files WHERE id = ?');
    this.sGone = db.prepare(
      'INSERT INTO temp.update_gone (dev, ino, size, mtime_ns, ctime_ns, object_id) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.sGc = db.prepare('INSERT OR IGNORE INTO temp.update_gc (object_id) VALUES (?)');
    // The unary + keeps SQLite off the files_source index (every row of a source matches it):
    // without statistics it would pick it and read the whole source per folder.
    const subtree = 'vpath >= ? AND vpath < ? AND +source_id = ?';
    this.sGoneSubtree = db.prepare(
      `INSERT INTO temp.update_gone (dev, ino, size, mtime_ns, ctime_ns, object_id)
       SELECT dev, ino, size, mtime_ns, ctime_ns, object_id FROM files
       WHERE ${subtree} AND kind = ${FileKind.file} AND object_id IS NOT NULL AND ctime_ns != 0`,
    );
    this.sGcSubtree = db.prepare(
      `INSERT OR IGNORE INTO temp.update_gc (object_id) SELECT object_id FROM files WHERE ${subtree} AND object_id IS NOT NULL`,
    );
    this.sDeleteSubtree = db.prepare(`DELETE FROM files WHERE ${subtree}`);
    this.sCountSubtree = db.prepare(`SELECT count(*) FROM files WHERE ${subtree}`).pluck();
    this.sByInode = db
      .prepare(
        `SELECT object_id FROM files WHERE ino = ? AND dev = ? AND size = ? AND mtime_ns = ? AND ctime_ns = ?
         AND kind = ${FileKind.file} AND object_id IS NOT NULL AND ctime_ns != 0 LIMIT 1`,
      )
      .pluck();
    this.sGoneByInode = db
      .prepare(
        'SELECT object_id FROM temp.update_gone WHERE ino = ? AND dev = ? AND size = ? AND mtime_ns = ? AND ctime_ns = ? LIMIT 1',
      )
      .pluck();
    this.sObject = db.prepare('SELECT id FROM objects WHERE hash = ?').pluck();
    this.sInsertObject = db.prepare('INSERT INTO objects (hash, size) VALUES (?, ?)');
    this.sDirSig = db.prepare('SELECT sig FROM dir_sigs WHERE parent = ? AND source_id = ?').pluck();
    this.sPutDirSig = db.prepare('INSERT OR REPLACE INTO dir_sigs (parent, source_id, sig) VALUES (?, ?, ?)');
  }

  /**
   * The stored signature of folder `parent` of source `sourceId` (update/dir-sig.ts), if its
   * rows have not been written since it was stored.
   */
  dirSig(parent: Buffer, sourceId: number): Buffer | undefined {
    this.flush();
    return this.sDirSig.get(parent, sourceId) as Buffer | undefined;
  }

  /**
   * Store `sig` for folder `parent`: only when its rows, read by `childRows(…, { forSignature:
   * true })` in the transaction still open, equal the scan `sig` was computed from. Held upserts
   * run first, so a later write to the folder's rows (which deletes the signature through the
   * triggers of `files`) can never come before it.
   */
  putDirSig(parent: Buffer, sourceId: number, sig: Buffer): void {
    if (this.dryRun) return;
    this.begin();
    this.flush();
    this.sPutDirSig.run(parent, sourceId, sig);
    this.rows += 1;
  }

  /**
   * The catalogued children of folder `parent` that belong to source `sourceId`, as raw rows in
   * byte order of their names (their virtual paths share the folder's prefix), so that `update`
   * merges them with the sorted listing of the folder: an unchanged entry is compared in place
   * (`sameEntry`) and costs no object and no write; `catalogChild` expands the others.
   */
  childRows(parent: Buffer, sourceId: number, opts: { forSignature?: boolean } = {}): ChildRow[] {
    // Rows that may be signed (`putDirSig`) are read inside the write transaction, so that no
    // other connection can commit between this read and the signature: a signature stored from
    // rows another process changed meanwhile would hide that change from every later update.
    if (opts.forSignature === true && !this.dryRun) this.begin();
    this.flush();
    return this.sChildren.all(parent, sourceId) as ChildRow[];
  }

  /**
   * Insert or replace the row at `row.vpath`. Rows are held back and run `UPSERT_ROWS` in one
   * statement (one statement per row measured 1.7× slower); every other statement of this
   * writer runs the held rows first, so reads and writes stay in order.
   */
  upsert(row: FileRow): void {
    if (this.dryRun) return;
    this.begin();
    this.pending.push(
      row.vpath,
      row.parent,
      row.sourceId,
      row.kind,
      row.sizeBytes,
      row.mtimeNs,
      row.ctimeNs,
      row.mode,
      row.uid,
      row.gid,
      int64(row.dev),
      int64(row.ino),
      row.linkTarget,
      row.objectId,
      row.priority,
      row.minCopies,
      row.maxCopies,
    );
    if (this.pending.length === UPSERT_ROWS * UPSERT_COLUMNS) this.flush();
    this.wrote(1);
  }

  /** Run the held upserts (all in one statement when there are `UPSERT_ROWS`). */
  private flush(): void {
    const p = this.pending;
    if (p.length === 0) return;
    this.pending = [];
    if (p.length === UPSERT_ROWS * UPSERT_COLUMNS) {
      this.sUpsertMany.run(p);
      return;
    }
    for (let i = 0; i < p.length; i += UPSERT_COLUMNS) this.sUpsert.run(p.slice(i, i + UPSERT_COLUMNS));
  }

  /** Change only the copy settings of a row whose file did not change. */
  setSettings(id: number, priority: number, minCopies: number, maxCopies: number): void {
    if (this.dryRun) return;
    this.begin();
    this.flush();
    this.sSettings.run(priority, minCopies, maxCopies, id);
    this.wrote(1);
  }

  /** Remove one row (its content remembered for hash reuse, its object a GC candidate). */
  remove(child: CatalogChild): void {
    if (this.dryRun) return;
    this.begin();
    this.flush();
    if (child.objectId !== null) {
      if (child.kind === FileKind.file && child.ctimeNs !== 0n) {
        this.sGone.run(child.dev, child.ino, child.sizeBytes, child.mtimeNs, child.ctimeNs, child.objectId);
      }
      this.sGc.run(child.objectId);
    }
    this.sDelete.run(child.id);
    this.wrote(1);
  }

  /** Remove every row strictly below `vpath` of source `sourceId`; returns how many. */
  removeSubtree(range: { lo: Buffer; hi: Buffer }, sourceId: number): number {
    if (this.dryRun) return Number(this.sCountSubtree.get(range.lo, range.hi, sourceId));
    this.begin();
    this.flush();
    this.sGoneSubtree.run(range.lo, range.hi, sourceId);
    this.sGcSubtree.run(range.lo, range.hi, sourceId);
    const n = this.sDeleteSubtree.run(range.lo, range.hi, sourceId).changes;
    this.wrote(n);
    return n;
  }

  /** Remember an object that may have lost its last reference (checked by `collectGarbage`). */
  gcCandidate(objectId: number): void {
    if (this.dryRun) return;
    this.begin();
    this.sGc.run(objectId);
  }

  /**
   * The object of a catalogued (or removed in this run) regular file with this device, inode,
   * size, mtime and ctime: another link of the same unchanged inode, whose hash can be reused.
   * The ctime too: an inode number, size and mtime alone also match a file rewritten in place
   * with its mtime put back and then moved (a tagger's "keep timestamps"), and, where inode
   * numbers are handed out anew at each mount (vfat, exfat, FUSE without use_ino), another file
   * of the same size and time. A rename moves the ctime on Linux filesystems, so a renamed file
   * is read again. Racily clean rows never match.
   */
  objectByInode(dev: bigint, ino: bigint, sizeBytes: number, mtimeNs: bigint, ctimeNs: bigint): number | undefined {
    const d = int64(dev);
    const i = int64(ino);
    // Rows held back by `upsert` are looked at here rather than run first: a first update asks
    // this of every new file, and running the held rows each time wrote them one statement per
    // row instead of UPSERT_ROWS per statement.
    const held = this.heldByInode(d, i, sizeBytes, mtimeNs, ctimeNs);
    if (held !== undefined) return held;
    const hit = this.sByInode.get(i, d, sizeBytes, mtimeNs, ctimeNs) as number | bigint | undefined;
    if (hit !== undefined) return Number(hit);
    const gone = this.sGoneByInode.get(i, d, sizeBytes, mtimeNs, ctimeNs) as number | bigint | undefined;
    return gone === undefined ? undefined : Number(gone);
  }

  /**
   * `objectByInode` over the rows held back by `upsert` (the last match wins, as it would in the
   * table). `dev` and `ino` as stored (`int64`).
   */
  private heldByInode(
    dev: bigint,
    ino: bigint,
    sizeBytes: number,
    mtimeNs: bigint,
    ctimeNs: bigint,
  ): number | undefined {
    const p = this.pending;
    for (let at = p.length - UPSERT_COLUMNS; at >= 0; at -= UPSERT_COLUMNS) {
      if (p[at + HELD_INO] !== ino || p[at + HELD_DEV] !== dev) continue;
      // The same path may be held with other content: the newest row of this inode decides.
      const objectId = p[at + HELD_OBJECT] as number | null;
      const ok =
        p[at + HELD_KIND] === FileKind.file &&
        p[at + HELD_SIZE] === sizeBytes &&
        p[at + HELD_MTIME] === mtimeNs &&
        p[at + HELD_CTIME] !== 0n &&
        p[at + HELD_CTIME] === ctimeNs &&
        objectId !== null;
      if (ok) return objectId;
    }
    return undefined;
  }

  /** The id of the object `hash` (64 lowercase hex), created with `sizeBytes` when new. */
  object(hash: string, sizeBytes: number): number {
    const id = this.sObject.get(hash) as number | undefined;
    if (id !== undefined) return id;
    if (this.dryRun) return -1;
    this.begin();
    const info = this.sInsertObject.run(hash, sizeBytes);
    this.wrote(1);
    return Number(info.lastInsertRowid);
  }

  /**
   * Delete the GC candidates that no file references and no disk holds. Objects with copies
   * stay: they are orphans that the next sync deletes from its disks. Returns how many went.
   */
  collectGarbage(): number {
    if (this.dryRun) return 0;
    this.begin();
    this.flush();
    const n = this.db
      .prepare(
        `DELETE FROM objects WHERE id IN (SELECT object_id FROM temp.update_gc)
         AND NOT EXISTS (SELECT 1 FROM files WHERE files.object_id = objects.id)
         AND NOT EXISTS (SELECT 1 FROM copies WHERE copies.object_id = objects.id)`,
      )
      .run().changes;
    this.db.exec('DELETE FROM temp.update_gc');
    this.wrote(n);
    return n;
  }

  /** Commit when the open transaction holds `commitRows` rows or is `commitMs` old. */
  maybeCommit(): void {
    if (this.inTx && (this.rows >= this.commitRows || this.now() - this.txStarted >= this.commitMs)) this.commit();
  }

  /** Commit the open transaction, if any. */
  commit(): void {
    if (!this.inTx) return;
    this.flush();
    this.db.exec('COMMIT');
    this.inTx = false;
    this.rows = 0;
    this.commits += 1;
    killPoint('update-commit');
  }

  /** Commit what is pending. */
  close(): void {
    this.commit();
  }

  /** Roll back what is pending (after a fatal error). */
  rollback(): void {
    this.pending = [];
    if (!this.inTx) return;
    this.inTx = false;
    this.rows = 0;
    if (this.db.inTransaction) this.db.exec('ROLLBACK');
  }

  private begin(): void {
    if (this.inTx) return;
    this.db.exec('BEGIN IMMEDIATE');
    this.inTx = true;
    this.txStarted = this.now();
  }

  private wrote(n: number): void {
    this.rows += n;
    killPoint('update-row');
    if (this.rows >= this.commitRows) this.commit();
  }
}
