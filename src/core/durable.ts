/**
 * Durable file primitives: every write that must survive a power cut goes through here.
 * The order is always: write to a temp name, fsync the file, rename, fsync the folder
 * (restic `doc/design.rst`; RELIABILITY.md failure modes 1, 2, 11). Synchronous on purpose:
 * callers batch, and a synchronous fsync cannot be reordered by the event loop.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errnoCode, fileError } from './errors.js';
import { killPoint } from './kill-points.js';

/**
 * fsync a directory so that renames and unlinks in it are durable. EINVAL / ENOTSUP /
 * EISDIR are ignored (filesystems that cannot fsync a directory; borg and restic do the same);
 * every other error is thrown.
 */
export function fsyncDir(dir: string | Buffer): void {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    fs.fsyncSync(fd);
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR')
      throw fileError(String(dir), err, 'fsync of folder');
  } finally {
    fs.closeSync(fd);
  }
}

/** Write all of `buf` at `position`, looping on short writes (a write may return fewer bytes). */
export function writeFully(fd: number, buf: Uint8Array, position: number): void {
  let off = 0;
  while (off < buf.length) {
    const n = fs.writeSync(fd, buf, off, buf.length - off, position + off);
    if (n <= 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' });
    off += n;
  }
}

/** A temp name beside `target`: `.name.<random>.tmp`, unique per call. */
export function tempNameFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * Replace `target` atomically and durably with `data`: temp file, fsync, rename, fsync the
 * folder. Readers see the old file or the new one, never a torn one. `mode` defaults to 0o644.
 * `beforeRename` runs once the data is durable, just before the rename; when it throws, the temp
 * file goes and nothing is replaced.
 */
export function writeFileAtomic(
  target: string,
  data: string | Uint8Array,
  mode = 0o644,
  beforeRename?: () => void,
): void {
  const tmp = tempNameFor(target);
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode);
  try {
    writeFully(fd, buf, 0);
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw fileError(target, err, 'write');
  }
  fs.closeSync(fd);
  try {
    beforeRename?.();
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  renameDurable(tmp, target);
}

/** Rename `from` to `to` and fsync the destination folder (and the source folder if different). */
export function renameDurable(from: string, to: string): void {
  try {
    fs.renameSync(from, to);
  } catch (err) {
    fs.rmSync(from, { force: true });
    throw err;
  }
  killPoint('after-rename-atomic');
  fsyncDir(path.dirname(to));
  if (path.dirname(from) !== path.dirname(to)) fsyncDir(path.dirname(from));
}
