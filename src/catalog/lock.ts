/**
 * Process locks for the home catalogue and for a disk. A small SQLite file held with
 * `locking_mode=EXCLUSIVE` + `BEGIN EXCLUSIVE`: the kernel's fcntl lock is released when the
 * process dies, even by SIGKILL, so a stale lock is taken over without guessing from PIDs
 * (measured on ext4 and exFAT-FUSE, RELIABILITY.md test 15). A second taker is refused at once.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { DistbackupError, describeError, errnoCode, RefusedError } from '../core/errors.js';
import type { Catalog } from './db.js';

/** A held lock; `release()` is idempotent. */
export interface Lock {
  readonly file: string;
  release(): void;
}

/**
 * Take the lock in `file` (created if missing), or throw RefusedError (exit 2) naming `what`
 * when another process holds it. Never waits.
 */
export function acquireLock(file: string, what: string): Lock {
  checkLockFiles(file, what);
  let db: Database.Database;
  try {
    // 100 ms: a `lockHeld` probe reads the file for a moment; a holder refuses as before.
    db = new Database(file, { timeout: 100 });
  } catch (err) {
    throw new DistbackupError(`${file}: cannot create the lock for ${what}: ${(err as Error).message}`, {
      path: file,
      cause: err,
    });
  }
  try {
    db.pragma('journal_mode = DELETE');
    db.pragma('locking_mode = EXCLUSIVE');
    // The file is made a database once, the first time (a table written and committed); from
    // then on taking the lock writes nothing, no journal either, so a disk filled to its last
    // block or inode can still be locked, and the sync that frees room can run. The first
    // BEGIN EXCLUSIVE takes the lock before anything is read (two takers at once: one wins,
    // the other is refused), and exclusive locking mode keeps it past the COMMIT.
    db.exec('BEGIN EXCLUSIVE');
    // (The table holds nothing: it only makes the file a database. Its columns are those of the
    // lock files older builds made.)
    if (db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'holder'").pluck().get() === 0) {
      db.exec('CREATE TABLE holder (pid INTEGER, since_ms INTEGER)');
    }
    db.exec('COMMIT');
    db.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    db.close();
    const code = (err as { code?: string }).code ?? '';
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
      throw new RefusedError(`${what} is in use by another distbackup process (lock ${file} is held)`, {
        code: 'lock-held',
        path: file,
      });
    }
    if (code.startsWith('SQLITE_FULL')) {
      // Only the first lock of a lock file writes (an older build left it empty).
      throw new DistbackupError(
        `${file}: cannot take the lock for ${what}: the filesystem is full, and the lock file needs a few KiB once; free some room there (on a backup disk, what distbackup-objects/.tmp/ holds may go) and run again`,
        { code: 'ENOSPC', path: file, cause: err },
      );
    }
    throw new DistbackupError(`${file}: cannot take the lock for ${what}: ${(err as Error).message}`, {
      path: file,
      cause: err,
    });
  }
  let held = true;
  return {
    file,
    release: () => {
      if (!held) return;
      held = false;
      try {
        db.exec('ROLLBACK');
      } finally {
        db.close();
      }
    },
  };
}

/**
 * The lock file and the journal SQLite writes beside it must be plain files before SQLite opens
 * them: it follows links, so on a hostile disk a `.distbackup-lock` linked elsewhere would be
 * made a SQLite file (its journal beside the link's target), and a `-journal` linked elsewhere
 * would be overwritten with the journal. Refused (a link or anything else in place of the lock
 * file, exit 2) or removed (in place of a journal: the link itself, never what it points to).
 */
function checkLockFiles(file: string, what: string): void {
  for (const suffix of ['', '-journal', '-wal', '-shm']) {
    const p = `${file}${suffix}`;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') continue;
      throw new DistbackupError(`${p}: cannot check the lock for ${what}: ${describeError(err)}`, {
        path: p,
        cause: err,
      });
    }
    if (st.isFile()) continue;
    if (suffix === '' || st.isDirectory()) {
      throw new RefusedError(`${p}: not a regular file where the lock for ${what} is kept; refusing it`, {
        code: 'hostile-disk',
        path: p,
      });
    }
    try {
      fs.unlinkSync(p);
    } catch (err) {
      throw new DistbackupError(`${p}: cannot remove it (in the way of the lock for ${what}): ${describeError(err)}`, {
        path: p,
        cause: err,
      });
    }
  }
}

/**
 * Whether another process holds the lock in `file` (a sync or another writer running), found
 * without taking it or writing anything: its exclusive lock makes a read of the file busy.
 */
export function lockHeld(file: string): boolean {
  let db: Database.Database;
  try {
    // Only a regular file is opened (SQLite follows links; a FIFO would block the open).
    if (!fs.lstatSync(file).isFile()) return false;
    db = new Database(file, { readonly: true, fileMustExist: true, timeout: 0 });
  } catch {
    return false;
  }
  try {
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    return false;
  } catch (err) {
    return ((err as { code?: string }).code ?? '').startsWith('SQLITE_BUSY');
  } finally {
    db.close();
  }
}

/**
 * Take the home catalogue's lock (refused with exit 2 while another run holds it). A dry-run
 * catalogue is a private copy: it takes no lock and writes no lock file.
 */
export function lockCatalogue(cat: Catalog): Lock {
  if (cat.mode === 'dry-run') return { file: '', release: () => {} };
  return acquireLock(catalogueLockFile(cat), `the catalogue ${cat.dataDir}`);
}

/** The file of the home catalogue's lock. */
export function catalogueLockFile(cat: Catalog): string {
  return path.join(cat.dataDir, 'lock');
}
