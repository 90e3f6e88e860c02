/**
 * Creating a restored file's temp name and giving it its final name, replacing what is there
 * only when asked (atomically): shared by the main thread's writer (file-writer.ts) and the small-file lane
 * (small-files.ts), so both apply the no-overwrite rule the same way. Paths are ones the kernel
 * accepts (short, or through a folder descriptor). Any thread.
 */
import * as fs from 'node:fs';
import type { RestoredEntry } from '../catalog/restore-state.js';
import { FileKind } from '../catalog/schema.js';
import { errnoCode } from '../core/errors.js';
import { lstatOrUndefined } from './dest-tree.js';
import { ExistsError } from './errors.js';

/** A file's temp name is created new (never an existing file, never through a symlink), 0600 while written. */
export const TMP_FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
/** TMP_FLAGS, readable too (a file copied by `cp` is read back for its check). */
export const TMP_FLAGS_RW = (TMP_FLAGS & ~fs.constants.O_WRONLY) | fs.constants.O_RDWR;
export const TMP_MODE = 0o600;
/** The words of an ExistsError for a file in the way. */
export const NOT_OVERWRITTEN = 'exists; not overwritten (use --overwrite)';

/**
 * Give the finished temp file `tmp` its final name `target` without ever replacing a file: link()
 * fails with EEXIST when the name exists (also a case-insensitive twin). Filesystems without hard
 * links (exFAT, FAT) get an lstat check and a rename. Throws ExistsError, or the errno error.
 */
export function placeNoReplace(tmp: Buffer, target: Buffer): void {
  try {
    fs.linkSync(tmp, target);
    fs.unlinkSync(tmp);
    return;
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EEXIST') throw new ExistsError(NOT_OVERWRITTEN);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EMLINK' && code !== 'ENOSYS')
      throw err;
  }
  if (lstatOrUndefined(target) !== undefined) throw new ExistsError(NOT_OVERWRITTEN);
  fs.renameSync(tmp, target);
}

/**
 * Give `tmp` its final name `target`: with `replace` (a file of ours being redone, or
 * --overwrite) by one rename, which swaps the new file in atomically, so an error or a kill
 * never leaves neither the old file nor the new one (an unlink and a link did); else never
 * replacing anything (`placeNoReplace`).
 */
export function placeFile(tmp: Buffer, target: Buffer, replace: boolean): void {
  if (replace) fs.renameSync(tmp, target);
  else placeNoReplace(tmp, target);
}

/**
 * Whether the entry `existing` in DEST is still what an earlier run restored at its path, so a
 * run may replace it without --overwrite (with the catalogue's newer content, or with what the
 * path has become). `earlier` is what the restore state recorded there (undefined: nothing): a
 * link, while a link is there; a file, while a file is there whose SHA-256 (`hashOf`) is the
 * recorded one. Anything else (a file edited since, a file put where a link was, anything where
 * a folder was) is the user's.
 */
export function stillOurs(existing: fs.Stats, earlier: RestoredEntry | undefined, hashOf: () => string): boolean {
  if (earlier === undefined) return false;
  if (earlier.kind === FileKind.symlink) return existing.isSymbolicLink();
  if (earlier.kind === FileKind.file) return existing.isFile() && hashOf() === earlier.hash;
  return false;
}
