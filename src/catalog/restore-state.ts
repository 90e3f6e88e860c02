/**
 * The restore state of one restore target: which virtual paths a restore already rebuilt there,
 * with the hash it wrote, so that the next disk adds only what is still missing and may replace
 * only what distbackup itself wrote.
 *
 * Two parts. What must survive lives in DEST, in `DEST/.distbackup-restore/restored-NNNNNN.log`:
 * append-only text files, one per run, one checksummed line per record, appended and fsynced
 * once per batch. One file per run because fusefat refuses (EPERM) to extend a file that was
 * closed and opened again; a file is only ever written in the run that created it.
 * Everything else (the lookups, and the scratch table of one run's work, read back in object
 * order) lives in a private SQLite database in the temporary folder, rebuilt from the log at
 * every start and removed at the end. Why not SQLite in DEST (as before): on fusefat, SQLite's
 * rewrite of a page of its own file fails with EPERM ("disk I/O error" for the whole restore,
 * measured with journal_mode DELETE and EXCLUSIVE locking), and a USB disk pays a journal
 * round trip per batch; a log that is only ever appended to works on every filesystem tried
 * (ext4, tmpfs, exFAT and FAT over FUSE). One process at a time (the caller holds the restore
 * lock); not shared across threads.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { fsyncDir } from '../core/durable.js';
import { DistbackupError, describeError, errnoCode } from '../core/errors.js';
import { sha256Hex } from '../core/sha256.js';

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

/** Kind recorded for a file that was not written because an `--existing` folder holds it. */
export const KIND_FOUND_ELSEWHERE = 3;

/** One record of the state: what is at `vpath` and how it got there. */
export interface RestoredEntry {
  hash: string;
  kind: number;
}

/** File names of the log segments inside the state folder: `restored-000001.log`, one per run. */
export const STATE_LOG_RE = /^restored-(\d{6,})\.log$/;
/** Past this many segments, a run starts by writing one compacted segment and removing the others. */
const COMPACT_SEGMENTS = 32;
/** The state file of earlier versions (SQLite in DEST), imported once and removed. */
const OLD_STATE = 'state.sqlite';

const SCHEMA = `
  -- What this restore target already holds from distbackup: path, the hash written ('' for a
  -- dir or link), and the kind (KIND_FOUND_ELSEWHERE: found in an --existing folder).
  CREATE TABLE restored (vpath BLOB PRIMARY KEY, hash TEXT NOT NULL, kind INTEGER NOT NULL) STRICT, WITHOUT ROWID;
  -- Scratch: the work of the current run.
  CREATE TABLE todo (
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
  CREATE INDEX todo_hash ON todo(kind, hash, seq);
`;

/** Rows per transaction while loading the log (NODE20.md: at least 10 k rows per transaction). */
const LOAD_BATCH = 10_000;
const LINE_RE = /^([0-3]) ([0-9a-f]{64}|-) ([0-9a-f]+) ([0-9a-f]{8})$/;

/** The check field of a log line: 8 hex of the SHA-256 of what precedes it. */
function lineCheck(body: string): string {
  return sha256Hex(body).slice(0, 8);
}

/** One log line (with its newline) for a record. */
export function logLine(vpath: Buffer, hash: string, kind: number): string {
  const body = `${kind} ${hash === '' ? '-' : hash} ${vpath.toString('hex')}`;
  return `${body} ${lineCheck(body)}\n`;
}

/**
 * Parse one log line (without its newline); undefined for a torn or damaged line (its check
 * does not match), which is then ignored: at worst that file is restored again.
 */
export function parseLogLine(line: string): { vpath: Buffer; hash: string; kind: number } | undefined {
  const m = LINE_RE.exec(line);
  if (m === null) return undefined;
  const [, kind, hash, hex, check] = m as unknown as [string, string, string, string, string];
  if (hex.length % 2 !== 0) return undefined;
  if (lineCheck(line.slice(0, line.length - 9)) !== check) return undefined;
  return { vpath: Buffer.from(hex, 'hex'), hash: hash === '-' ? '' : hash, kind: Number(kind) };
}

/** The state of one restore target (see the module comment). */
export class RestoreState {
  private readonly getStmt: Database.Statement;
  private readonly putStmt: Database.Statement;
  private readonly todoStmt: Database.Statement;
  /** Records not yet committed, keyed by the path's bytes as latin1 (a lossless 1:1 mapping). */
  private pending = new Map<string, { vpath: Buffer; hash: string; kind: number }>();
  private logFd: number | undefined;
  /** Number of the segment this run writes (created at its first commit). */
  private nextSeq = 1;
  /**
   * Whether the `restored` table may hold a row: false on a first restore until its first
   * commit, and then `entry` asks SQLite nothing (one query per catalogue file saved).
   */
  private stored = false;

  private constructor(
    private readonly db: Database.Database,
    private readonly workDir: string,
    private readonly stateDir: string | undefined,
  ) {
    this.getStmt = db.prepare('SELECT hash, kind FROM restored WHERE vpath = ?');
    this.putStmt = db.prepare('INSERT OR REPLACE INTO restored (vpath, hash, kind) VALUES (?, ?, ?)');
    this.todoStmt = db.prepare(
      `INSERT INTO todo (vpath, kind, size, mtime_ns, mode, uid, gid, link_target, hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
  }

  /**
   * Open the state kept in the folder `stateDir` (the log need not exist yet). `readonly`: never
   * write to `stateDir` (plans and dry runs); `stateDir` may then be missing altogether.
   */
  static open(stateDir: string, options: { readonly?: boolean } = {}): RestoreState {
    const readonly = options.readonly === true;
    const tmp = path.resolve(os.tmpdir());
    sweepStaleWorkDirs(tmp);
    const workDir = fs.mkdtempSync(path.join(tmp, `${WORK_PREFIX}${process.pid}-`));
    let db: Database.Database | undefined;
    try {
      db = new Database(path.join(workDir, 'work.sqlite'));
      // Scratch, rebuilt from the log at every start: no durability needed.
      db.pragma('journal_mode = OFF');
      db.pragma('synchronous = OFF');
      db.pragma('locking_mode = EXCLUSIVE');
      db.pragma('trusted_schema = OFF');
      db.exec(SCHEMA);
      const state = new RestoreState(db, workDir, readonly ? undefined : stateDir);
      const segments = listSegments(stateDir);
      for (const seg of segments) state.load(path.join(stateDir, seg.name));
      state.nextSeq = (segments[segments.length - 1]?.seq ?? 0) + 1;
      state.importOld(path.join(stateDir, OLD_STATE), readonly);
      if (!readonly && segments.length > COMPACT_SEGMENTS) state.compact(segments.map((x) => x.name));
      return state;
    } catch (err) {
      db?.close();
      fs.rmSync(workDir, { recursive: true, force: true });
      if (err instanceof DistbackupError) throw err;
      throw new DistbackupError(`${stateDir}: cannot read the restore state: ${describeError(err)}`, {
        path: stateDir,
        cause: err,
      });
    }
  }

  /** Read every complete, intact line of the log into the working database. */
  private load(file: string): void {
    let fd: number;
    try {
      fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw err;
    }
    try {
      const buf = Buffer.allocUnsafe(1024 * 1024);
      let rest = '';
      let batch: { vpath: Buffer; hash: string; kind: number }[] = [];
      const flush = (): void => {
        const rows = batch;
        batch = [];
        this.put(rows);
      };
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, null);
        if (n === 0) break;
        const lines = (rest + buf.toString('latin1', 0, n)).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) {
          const r = parseLogLine(line);
          if (r !== undefined) batch.push(r);
          if (batch.length >= LOAD_BATCH) flush();
        }
      }
      // A torn last line (no newline) is left out: at worst its file is restored again.
      flush();
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Bring in the SQLite state of earlier versions, then (unless read-only) fold it into the log. */
  private importOld(file: string, readonly: boolean): void {
    if (!fs.existsSync(file)) return;
    const old = new Database(file, { readonly: true, fileMustExist: true });
    try {
      old.pragma('trusted_schema = OFF');
      const rows = old.prepare('SELECT vpath, hash, kind FROM restored').raw(true);
      for (const r of rows.iterate() as IterableIterator<unknown[]>) {
        const [vpath, hash, kind] = r;
        if (!Buffer.isBuffer(vpath) || typeof hash !== 'string' || typeof kind !== 'number') continue;
        this.markRestored(vpath, hash, kind);
        if (this.pending.size >= LOAD_BATCH) this.commit();
      }
    } finally {
      old.close();
    }
    if (readonly) {
      // Kept only in the working database: a plan writes nothing into DEST.
      const rows = this.pending;
      this.pending = new Map();
      this.put(rows.values());
      return;
    }
    this.commit();
    fs.rmSync(file, { force: true });
    fs.rmSync(`${file}-journal`, { force: true });
  }

  /** Records into the working database, in one transaction. */
  private put(rows: Iterable<{ vpath: Buffer; hash: string; kind: number }>): void {
    this.db.transaction(() => {
      for (const r of rows) {
        this.putStmt.run(r.vpath, r.hash, r.kind);
        this.stored = true;
      }
    })();
  }

  /** What is recorded for `vpath`, or undefined when nothing was restored there. */
  entry(vpath: Buffer): RestoredEntry | undefined {
    if (this.pending.size > 0) {
      const pending = this.pending.get(vpath.toString('latin1'));
      if (pending !== undefined) return { hash: pending.hash, kind: pending.kind };
    }
    if (!this.stored) return undefined;
    return this.getStmt.get(vpath) as RestoredEntry | undefined;
  }

  /**
   * What distbackup wrote at `vpath` (its kind and hash: a file's content, a link's target, '' for
   * a dir or a link of an older run), or undefined when it wrote nothing there.
   */
  restoredEntry(vpath: Buffer): RestoredEntry | undefined {
    const e = this.entry(vpath);
    return e === undefined || e.kind === KIND_FOUND_ELSEWHERE ? undefined : e;
  }

  /**
   * Record `vpath` as restored. Buffered: `commit()` writes the batch. The caller commits only
   * after the files of the batch are durable.
   */
  markRestored(vpath: Buffer, hash: string, kind: number): void {
    this.pending.set(vpath.toString('latin1'), { vpath, hash, kind });
  }

  /**
   * Drop the records buffered since the last commit: their files could not be made durable,
   * so nothing of them may be recorded (the next run redoes them).
   */
  discardPending(): void {
    this.pending = new Map();
  }

  /** Number of records buffered since the last commit. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Append the buffered records to this run's log segment and fsync it, then to the working database. */
  commit(): void {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    if (this.stateDir !== undefined) {
      this.openSegment();
      this.appendRecords(batch.values());
      // The log is the only record that survives: it must be on the disk before the batch counts.
      fs.fsyncSync(this.logFd as number);
    }
    this.put(batch.values());
    this.pending = new Map();
  }

  /** Create this run's segment (O_EXCL: never written into an older one) and make its name durable. */
  private openSegment(): void {
    if (this.logFd !== undefined || this.stateDir === undefined) return;
    const name = `restored-${String(this.nextSeq).padStart(6, '0')}.log`;
    this.logFd = fs.openSync(
      path.join(this.stateDir, name),
      fs.constants.O_WRONLY |
        fs.constants.O_CREAT |
        fs.constants.O_EXCL |
        fs.constants.O_APPEND |
        fs.constants.O_NOFOLLOW,
      0o600,
    );
    fsyncDir(this.stateDir);
  }

  private appendRecords(records: Iterable<{ vpath: Buffer; hash: string; kind: number }>): void {
    let text = '';
    for (const p of records) {
      text += logLine(p.vpath, p.hash, p.kind);
      if (text.length >= 1024 * 1024) {
        appendFully(this.logFd as number, Buffer.from(text, 'latin1'));
        text = '';
      }
    }
    if (text !== '') appendFully(this.logFd as number, Buffer.from(text, 'latin1'));
  }

  /**
   * Many segments (many runs): write every record into this run's segment, make it durable,
   * then remove the older ones. A crash in between leaves duplicates, which load harmlessly.
   */
  private compact(older: readonly string[]): void {
    if (this.stateDir === undefined) return;
    this.openSegment();
    const rows = this.db.prepare('SELECT vpath, hash, kind FROM restored').raw(true);
    const all = function* (): Generator<{ vpath: Buffer; hash: string; kind: number }> {
      for (const r of rows.iterate() as IterableIterator<[Buffer, string, number]>) {
        yield { vpath: r[0], hash: r[1], kind: r[2] };
      }
    };
    this.appendRecords(all());
    fs.fsyncSync(this.logFd as number);
    for (const name of older) fs.rmSync(path.join(this.stateDir, name), { force: true });
    fsyncDir(this.stateDir);
  }

  /** Empty the scratch table. */
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
    return this.db
      .prepare('SELECT count(*) AS count, coalesce(sum(size), 0) AS bytes FROM todo WHERE kind = ?')
      .get(kind) as { count: number; bytes: number };
  }

  /** Commit what is buffered, close the log and drop the working database. */
  close(): void {
    try {
      if (this.db.open) this.commit();
    } finally {
      if (this.logFd !== undefined) fs.closeSync(this.logFd);
      this.logFd = undefined;
      if (this.db.open) this.db.close();
      fs.rmSync(this.workDir, { recursive: true, force: true });
    }
  }
}

/** Working folders are named `distbackup-restore-<pid>-XXXXXX` in the temporary folder. */
const WORK_PREFIX = 'distbackup-restore-';
const WORK_RE = /^distbackup-restore-(\d+)-[A-Za-z0-9]{6}$/;

/**
 * Remove the working folders of restores that were killed (SIGKILL, power): their process is
 * gone. Only names of our own pattern, only when that pid no longer exists.
 */
function sweepStaleWorkDirs(tmp: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(tmp);
  } catch {
    return;
  }
  for (const name of names) {
    const m = WORK_RE.exec(name);
    if (m === null) continue;
    const pid = Number(m[1]);
    try {
      process.kill(pid, 0);
      continue; // alive (or not ours to signal): leave it
    } catch (err) {
      if (errnoCode(err) !== 'ESRCH') continue;
    }
    fs.rmSync(path.join(tmp, name), { recursive: true, force: true });
  }
}

/** The log segments in `dir`, oldest first. */
function listSegments(dir: string): { name: string; seq: number }[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
  const out: { name: string; seq: number }[] = [];
  for (const name of names) {
    const m = STATE_LOG_RE.exec(name);
    if (m !== null) out.push({ name, seq: Number(m[1]) });
  }
  return out.sort((a, b) => a.seq - b.seq);
}

/** Write all of `buf` at the end of the O_APPEND file `fd`, looping on short writes. */
function appendFully(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) {
    const n = fs.writeSync(fd, buf, off, buf.length - off, null);
    if (n <= 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' });
    off += n;
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
