/**
 * Read-only queries behind `status`, `whereis` and restore guidance. Everything is aggregated
 * in SQL or streamed row by row, so that millions of objects never become millions of JS
 * objects. Works on the home catalogue and on a disk's catalogue copy (untrusted: every value
 * read from a row is type-checked by the caller before use).
 */
import type { Db } from './db.js';
import { FileKind } from './schema.js';

/** A catalogue row as restore and whereis need it. Values are checked by the caller. */
export interface FileReportRow {
  vpath: unknown;
  kind: unknown;
  size: unknown;
  mtimeNs: unknown;
  mode: unknown;
  uid: unknown;
  gid: unknown;
  linkTarget: unknown;
  priority: unknown;
  hash: unknown;
  /** Ids of the disks counting a copy of the file's object, comma-separated, or null. */
  diskIds: unknown;
}

/**
 * Every catalogued entry at or below the virtual paths `prefixes` (all of them when the list is
 * empty, or holds `/`), by path. Overlapping prefixes are merged first. Streamed; integers as
 * BigInt.
 */
export function* iterateFilesUnder(db: Db, prefixes: readonly Buffer[]): Generator<FileReportRow> {
  const cols = `f.vpath, f.kind, f.size, f.mtime_ns, f.mode, f.uid, f.gid, f.link_target, f.priority, o.hash,
    (SELECT group_concat(c.disk_id) FROM copies c WHERE c.object_id = f.object_id) AS disks
    FROM files f LEFT JOIN objects o ON o.id = f.object_id`;
  const roots = mergePrefixes(prefixes);
  const all = roots.length === 0 || roots.some((p) => p.length === 1 && p[0] === 0x2f);
  const toRow = (r: unknown[]): FileReportRow => ({
    vpath: r[0],
    kind: r[1],
    size: r[2],
    mtimeNs: r[3],
    mode: r[4],
    uid: r[5],
    gid: r[6],
    linkTarget: r[7],
    priority: r[8],
    hash: r[9],
    diskIds: r[10],
  });
  if (all) {
    const stmt = db.prepare(`SELECT ${cols} ORDER BY f.vpath`).raw(true).safeIntegers(true);
    for (const r of stmt.iterate() as IterableIterator<unknown[]>) yield toRow(r);
    return;
  }
  const stmt = db
    .prepare(`SELECT ${cols} WHERE f.vpath = ? OR (f.vpath >= ? AND f.vpath < ?) ORDER BY f.vpath`)
    .raw(true)
    .safeIntegers(true);
  for (const p of roots) {
    const lo = Buffer.concat([p, Buffer.from('/')]);
    const hi = Buffer.concat([p, Buffer.from('0')]);
    for (const r of stmt.iterate(p, lo, hi) as IterableIterator<unknown[]>) yield toRow(r);
  }
}

/** Sorted prefixes with those inside another one removed. */
function mergePrefixes(prefixes: readonly Buffer[]): Buffer[] {
  const sorted = [...prefixes].sort(Buffer.compare);
  const out: Buffer[] = [];
  for (const p of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined) {
      if (last.equals(p)) continue;
      if (last.length === 1 && last[0] === 0x2f) continue;
      if (p.length > last.length && p[last.length] === 0x2f && p.subarray(0, last.length).equals(last)) continue;
    }
    out.push(p);
  }
  return out;
}

/** Id → name of every disk in the catalogue (dropped ones included). */
export function diskNames(db: Db): Map<number, string> {
  const m = new Map<number, string>();
  for (const r of db.prepare('SELECT id, name FROM disks').raw(true).iterate() as IterableIterator<unknown[]>) {
    const id = Number(r[0]);
    if (Number.isSafeInteger(id)) m.set(id, String(r[1]));
  }
  return m;
}

/** Id and size of the disks by uuid (for finding a disk inside a disk's catalogue copy). */
export function diskIdByUuid(db: Db, uuid: string): number | undefined {
  const r = db.prepare('SELECT id FROM disks WHERE lower(uuid) = ?').pluck().get(uuid.toLowerCase());
  return r === undefined ? undefined : Number(r);
}

// ---------------------------------------------------------------------------------------------
// status

/** Objects and bytes at one copy count. */
export interface HistogramRow {
  copies: number;
  objects: number;
  bytes: number;
  files: number;
}

/**
 * One pass over the referenced objects into a connection-private temp table: per object its
 * files, size, copy count and the lowest and highest disk id holding it. Every status figure
 * below reads this table instead of joining files, objects and copies again (1 M objects: one
 * pass instead of six). Works on a read-only connection (temp tables live in the temp store).
 */
export function buildObjectCopies(db: Db): void {
  db.exec(`CREATE TEMP TABLE IF NOT EXISTS status_obj (
             oid INTEGER PRIMARY KEY, nfiles INTEGER, size INTEGER, k INTEGER, d1 INTEGER, d2 INTEGER)`);
  db.exec('DELETE FROM temp.status_obj');
  db.exec(`INSERT INTO temp.status_obj
           SELECT r.oid, r.nfiles, o.size, count(c.disk_id), min(c.disk_id), max(c.disk_id)
           FROM (SELECT object_id AS oid, count(*) AS nfiles FROM files
                 WHERE kind = ${FileKind.file} AND object_id IS NOT NULL GROUP BY object_id) r
           JOIN objects o ON o.id = r.oid
           LEFT JOIN copies c ON c.object_id = r.oid
           GROUP BY r.oid`);
}

/**
 * Totals over current files: regular files, referenced objects, their bytes, unhashed files.
 * Needs buildObjectCopies first.
 */
export function totals(db: Db): { files: number; objects: number; bytes: number; unhashed: number } {
  const f = db
    .prepare(
      `SELECT count(*) AS files, coalesce(sum(object_id IS NULL), 0) AS unhashed FROM files WHERE kind = ${FileKind.file}`,
    )
    .get() as { files: number; unhashed: number };
  const o = db.prepare('SELECT count(*) AS objects, coalesce(sum(size), 0) AS bytes FROM temp.status_obj').get() as {
    objects: number;
    bytes: number;
  };
  return { files: f.files, objects: o.objects, bytes: o.bytes, unhashed: f.unhashed };
}

/**
 * The redundancy histogram over referenced objects: copies 0, 1, 2, … up to `cap` (the last
 * bucket holds `cap` and more). `files` counts the regular files referencing them. Needs
 * buildObjectCopies first.
 */
export function histogram(db: Db, cap = 3): HistogramRow[] {
  const rows = db
    .prepare(
      `SELECT min(k, ?) AS copies, count(*) AS objects, coalesce(sum(size), 0) AS bytes, sum(nfiles) AS files
       FROM temp.status_obj GROUP BY 1 ORDER BY 1`,
    )
    .all(cap) as HistogramRow[];
  const out: HistogramRow[] = [];
  for (let k = 0; k <= cap; k++) {
    const r = rows.find((x) => x.copies === k);
    out.push({ copies: k, objects: r?.objects ?? 0, bytes: r?.bytes ?? 0, files: r?.files ?? 0 });
  }
  return out;
}

/** Smallest copy count over referenced objects, null when none. Needs buildObjectCopies first. */
export function minCopiesOfReferenced(db: Db): number | null {
  return db.prepare('SELECT min(k) FROM temp.status_obj').pluck().get() as number | null;
}

/** Per-disk figures that come from the copies table. */
export interface DiskCopyFigures {
  diskId: number;
  objects: number;
  bytes: number;
  /**
   * Copies whose last verify is older than the stale cutoff, or stamped in the future (by a clock
   * set ahead: their age is unknown), or never verified and written before the cutoff or at an
   * unknown time.
   */
  staleCopies: number;
  neverVerified: number;
}

/**
 * Objects, bytes and stale copies per disk. `cutoffMs`: copies verified before it are stale;
 * `futureMs`: and those stamped after it.
 */
export function diskCopyFigures(db: Db, cutoffMs: number, futureMs: number): Map<number, DiskCopyFigures> {
  const rows = db
    .prepare(
      `SELECT c.disk_id AS diskId, count(*) AS objects, coalesce(sum(o.size), 0) AS bytes,
              coalesce(sum(CASE WHEN c.verified_ms IS NOT NULL AND (c.verified_ms < @cut OR c.verified_ms > @future) THEN 1
                                WHEN c.verified_ms IS NULL AND (coalesce(c.written_ms, 0) < @cut OR c.written_ms > @future) THEN 1
                                ELSE 0 END), 0) AS staleCopies,
              coalesce(sum(c.verified_ms IS NULL), 0) AS neverVerified
       FROM copies c JOIN objects o ON o.id = c.object_id
       GROUP BY c.disk_id`,
    )
    .all({ cut: cutoffMs, future: futureMs }) as DiskCopyFigures[];
  return new Map(rows.map((r) => [r.diskId, r]));
}

/** What a set of disks dying would cost: objects, bytes and files that drop to 0 copies. */
export interface Loss {
  objects: number;
  bytes: number;
  files: number;
}

/**
 * Referenced objects with one or two copies, grouped by the disks holding them: the input of
 * lossIfDead (one disk) and the worst pair (two disks). One row per distinct disk set. Needs
 * buildObjectCopies first.
 */
export function lowCopyGroups(db: Db): { disks: number[]; objects: number; bytes: number; files: number }[] {
  const rows = db
    .prepare(
      `SELECT d1, d2, k, count(*) AS objects, coalesce(sum(size), 0) AS bytes, sum(nfiles) AS files
       FROM temp.status_obj WHERE k BETWEEN 1 AND 2 GROUP BY d1, d2, k`,
    )
    .all() as { d1: number; d2: number; k: number; objects: number; bytes: number; files: number }[];
  return rows.map((r) => ({
    disks: r.k === 1 ? [r.d1] : [r.d1, r.d2],
    objects: r.objects,
    bytes: r.bytes,
    files: r.files,
  }));
}

/**
 * Files whose object has exactly `k` copies, one of them on each disk: what drops to `k - 1`
 * copies if that disk dies. Per disk id. Needs buildObjectCopies first.
 */
export function degradedIfDead(db: Db, k: number): Map<number, Loss> {
  const rows = db
    .prepare(
      `SELECT c.disk_id AS diskId, count(*) AS objects, coalesce(sum(s.size), 0) AS bytes, sum(s.nfiles) AS files
       FROM temp.status_obj s JOIN copies c ON c.object_id = s.oid
       WHERE s.k = ? GROUP BY c.disk_id`,
    )
    .all(k) as (Loss & { diskId: number })[];
  return new Map(rows.map((r) => [r.diskId, { objects: r.objects, bytes: r.bytes, files: r.files }]));
}

/** Regular files (and their bytes) at or below a path, for whereis totals. */
export interface CopyRow {
  diskId: number;
  verifiedMs: number | null;
}

/** The copies of object `hash`: disk id and when each was last verified. */
export function copiesOfHash(db: Db, hash: string): CopyRow[] {
  return db
    .prepare(
      `SELECT c.disk_id AS diskId, c.verified_ms AS verifiedMs FROM copies c JOIN objects o ON o.id = c.object_id
       WHERE o.hash = ? ORDER BY c.disk_id`,
    )
    .all(hash) as CopyRow[];
}

/** A regular file with its object and every copy: `disk id:verified ms` pairs. */
export interface WhereisRow {
  vpath: Buffer;
  size: number;
  hash: string | null;
  /** `id:ms` (ms empty when never verified), comma-separated; null when no copy. */
  copies: string | null;
}

/** Regular files at or below `prefix` (a normalised virtual path), by path. Streamed. */
export function* iterateWhereis(db: Db, prefix: Buffer): Generator<WhereisRow> {
  const cols = `SELECT f.vpath AS vpath, f.size AS size, o.hash AS hash,
      (SELECT group_concat(c.disk_id || ':' || coalesce(c.verified_ms, ''))
       FROM copies c WHERE c.object_id = f.object_id) AS copies
    FROM files f LEFT JOIN objects o ON o.id = f.object_id WHERE f.kind = ${FileKind.file}`;
  if (prefix.length === 1 && prefix[0] === 0x2f) {
    yield* db.prepare(`${cols} ORDER BY f.vpath`).iterate() as IterableIterator<WhereisRow>;
    return;
  }
  const lo = Buffer.concat([prefix, Buffer.from('/')]);
  const hi = Buffer.concat([prefix, Buffer.from('0')]);
  yield* db
    .prepare(`${cols} AND (f.vpath = ? OR (f.vpath >= ? AND f.vpath < ?)) ORDER BY f.vpath`)
    .iterate(prefix, lo, hi) as IterableIterator<WhereisRow>;
}

/** True when the catalogue has an entry at or below the virtual path `prefix`. */
export function hasEntriesUnder(db: Db, prefix: Buffer): boolean {
  if (prefix.length === 1 && prefix[0] === 0x2f) return true;
  const lo = Buffer.concat([prefix, Buffer.from('/')]);
  const hi = Buffer.concat([prefix, Buffer.from('0')]);
  return (
    db.prepare('SELECT 1 FROM files WHERE vpath = ? OR (vpath >= ? AND vpath < ?) LIMIT 1').get(prefix, lo, hi) !==
    undefined
  );
}
