/**
 * Checking one object file against its name: read it, hash it with node:crypto, compare hash
 * and length. A failed check is read once more before it is called bad (restic's rule,
 * RELIABILITY.md failure mode 9): a transient glitch that reads right the second time is "ok on
 * second read" and the copy is kept. ENOENT is "missing". An error that says nothing of the
 * bytes (`LOCAL_ERRORS`: no descriptor left, no memory, no permission, the device gone) is
 * "unreadable": the check could not be made, and the copy is neither kept nor judged. Every
 * other error (EIO above all) is "bad", never "missing". Anything but a regular file (a FIFO, a
 * folder, a device planted on a hostile disk) is bad without being read, so it can never hang
 * the check; so is a file whose length is not the catalogued one, and a read never goes past
 * that length (a file that grows as it is read, through FUSE, ends at once).
 *
 * `check` is synchronous (reconcile). `checkAsync` overlaps reading and hashing: the next chunk
 * is read on libuv's thread pool into a second buffer while this thread hashes the current one,
 * so one stream keeps the disk and the CPU busy at the same time (bench/recovery.ts measured it
 * against the synchronous loop: see docs/README-recovery.md). One checker per thread; a checker
 * runs one check at a time.
 */
import { createHash, type Hash } from 'node:crypto';
import * as fs from 'node:fs';
import { DistbackupError, describeError, errnoCode } from '../core/errors.js';
import { sha256Hex } from '../core/sha256.js';

/** Read chunk: 1 MiB (NODE20.md; bench/recovery.ts measured 4 MiB no faster). */
export const CHECK_CHUNK_BYTES = 1024 * 1024;

/** The file operations a check uses; the default is node:fs. Tests wrap it to inject faults. */
export interface ObjectReader {
  /** The open file, and its length then (fstat). */
  open(path: string): OpenObject;
  read(fd: number, buf: Buffer, position: number): number;
  /** The same read on libuv's thread pool; when absent, `checkAsync` uses `read`. */
  readAsync?(fd: number, buf: Buffer, position: number): Promise<number>;
  close(fd: number): void;
}

/** An open object file. */
export interface OpenObject {
  readonly fd: number;
  /** Its length when opened: a small object of the catalogued length is read without a read that finds the end. */
  readonly size: number;
}

/**
 * node:fs, opening without following a symlink (a disk is untrusted) and without blocking (a
 * FIFO in place of an object would otherwise block the open forever); only regular files pass.
 */
export const fsReader: ObjectReader = {
  open: (p) => {
    const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    let size = -1;
    try {
      const st = fs.fstatSync(fd);
      if (st.isFile()) size = st.size;
    } finally {
      if (size < 0) fs.closeSync(fd);
    }
    if (size < 0) throw new DistbackupError('not a regular file', { code: 'not-regular-file', path: p });
    return { fd, size };
  },
  read: (fd, buf, position) => fs.readSync(fd, buf, 0, buf.length, position),
  readAsync: (fd, buf, position) =>
    new Promise((resolve, reject) => {
      fs.read(fd, buf, 0, buf.length, position, (err, n) => (err === null ? resolve(n) : reject(err)));
    }),
  close: (fd) => fs.closeSync(fd),
};

/** Outcome of one check. */
export type CheckResult =
  | { status: 'ok'; bytesRead: number }
  | { status: 'ok-second-read'; bytesRead: number; firstProblem: string }
  | { status: 'bad'; bytesRead: number; problem: string; untouchable?: boolean }
  | { status: 'missing'; bytesRead: number }
  /** The check could not be made (an error of this machine, not of the bytes): nothing is known. */
  | { status: 'unreadable'; bytesRead: number; problem: string };

/**
 * Errors of an open, read or lstat that say nothing of the bytes on the disk: this process out
 * of descriptors or memory, no permission to read, or the device gone (the caller's mount check
 * tells which). A copy met with one is not judged.
 */
const LOCAL_ERRORS = new Set([
  'EMFILE',
  'ENFILE',
  'ENOMEM',
  'ENOBUFS',
  'EAGAIN',
  'EINTR',
  'EACCES',
  'EPERM',
  'ENXIO',
  'ENODEV',
  'ESHUTDOWN',
  'ENOTCONN',
  'ESTALE',
]);

/** Whether `err` is one that says nothing of the bytes (LOCAL_ERRORS). */
export function isLocalError(err: unknown): boolean {
  const code = errnoCode(err);
  return code !== undefined && LOCAL_ERRORS.has(code);
}

type ReadOutcome =
  | { ok: true; bytes: number }
  | { ok: false; bytes: number; problem: string; missing: boolean; local?: boolean };

/** Reads and hashes objects with reused buffers (one for `check`, two for `checkAsync`). */
export class ObjectChecker {
  private readonly buf: Buffer;
  private spare: Buffer | undefined;

  /**
   * `syncBelowBytes`: `checkAsync` reads objects smaller than this synchronously (default: one
   * buffer; 0 when other checks run beside this one on the same thread and must not wait).
   */
  constructor(
    private readonly reader: ObjectReader = fsReader,
    bufferBytes = CHECK_CHUNK_BYTES,
    private readonly syncBelowBytes = bufferBytes,
  ) {
    this.buf = Buffer.allocUnsafeSlow(bufferBytes);
  }

  /** Check the file `p` that must hash to `hash` and hold `sizeBytes` bytes. */
  check(p: string, hash: string, sizeBytes: number): CheckResult {
    return decide(this.readOnce(p, hash, sizeBytes), () => this.readOnce(p, hash, sizeBytes));
  }

  /**
   * `check` with reading and hashing overlapped (see the module comment). Throws the signal's
   * reason when `signal` aborts (checked between chunks, so within one chunk's read).
   */
  async checkAsync(p: string, hash: string, sizeBytes: number, signal?: AbortSignal): Promise<CheckResult> {
    const first = await this.readOnceAsync(p, hash, sizeBytes, signal);
    if (first.ok || first.missing) return decide(first, () => first);
    return decide(first, await this.readOnceAsync(p, hash, sizeBytes, signal));
  }

  private readOnce(p: string, hash: string, sizeBytes: number): ReadOutcome {
    const o = this.open(p);
    if ('ok' in o) return o;
    const fd = o.fd;
    if (o.size !== sizeBytes) {
      this.close(fd);
      return wrongLength(o.size, sizeBytes);
    }
    // A file of the catalogued length that fits the buffer is read without a last read that
    // returns 0: one read call instead of two (a seventh of a small check's time). A length
    // that differs is read to its end, so truncated and grown copies are told apart as ever.
    const stopAt = o.size === sizeBytes && sizeBytes < this.buf.length ? sizeBytes : -1;
    let pos = 0;
    try {
      // Bytes wait in the buffer until it is full: an object that fits is hashed in one call,
      // without a Hash object (a few µs of each small check); a larger one streams through `h`.
      let h: Hash | undefined;
      let fill = 0;
      for (;;) {
        if (fill === this.buf.length) {
          h ??= createHash('sha256');
          h.update(this.buf);
          fill = 0;
        }
        const n = this.reader.read(fd, fill === 0 ? this.buf : this.buf.subarray(fill), pos);
        if (n === 0) break;
        fill += n;
        pos += n;
        if (pos === stopAt || pos > sizeBytes) break;
      }
      const rest = this.buf.subarray(0, fill);
      return judge(h === undefined ? sha256Hex(rest) : h.update(rest).digest('hex'), pos, hash, sizeBytes);
    } catch (err) {
      return unreadable(err, pos);
    } finally {
      this.close(fd);
    }
  }

  private async readOnceAsync(p: string, hash: string, sizeBytes: number, signal?: AbortSignal): Promise<ReadOutcome> {
    signal?.throwIfAborted();
    const readAsync = this.reader.readAsync;
    // An object that fits in one chunk gains nothing from overlapping: read it synchronously
    // (one or two read calls instead of two trips through the thread pool), unless other checks on
    // this thread must go on meanwhile.
    if (readAsync === undefined || sizeBytes < this.syncBelowBytes) return this.readOnce(p, hash, sizeBytes);
    const o = this.open(p);
    if ('ok' in o) return o;
    const fd = o.fd;
    if (o.size !== sizeBytes) {
      this.close(fd);
      return wrongLength(o.size, sizeBytes);
    }
    this.spare ??= Buffer.allocUnsafeSlow(this.buf.length);
    let cur = this.buf;
    let next = this.spare;
    let pos = 0;
    let pending: Promise<number> | undefined;
    try {
      const h = createHash('sha256');
      pending = readAsync.call(this.reader, fd, cur, 0);
      for (;;) {
        const n = await pending;
        pending = undefined;
        if (n === 0) break;
        signal?.throwIfAborted();
        const filled = cur;
        cur = next;
        next = filled;
        pos += n;
        if (pos > sizeBytes) break;
        // Read the next chunk into the other buffer while this thread hashes this one.
        pending = readAsync.call(this.reader, fd, cur, pos);
        h.update(filled.subarray(0, n));
      }
      return judge(h.digest('hex'), pos, hash, sizeBytes);
    } catch (err) {
      if (signal?.aborted === true) throw signal.reason;
      return unreadable(err, pos);
    } finally {
      // Never close a descriptor that a read in flight still uses (it could be reused meanwhile).
      if (pending !== undefined) await pending.catch(() => 0);
      this.close(fd);
    }
  }

  private open(p: string): OpenObject | ReadOutcome {
    try {
      return this.reader.open(p);
    } catch (err) {
      const code = errnoCode(err);
      // A socket (ENXIO) or a device node (EACCES on a nodev mount) fails to open with an error
      // of the local kind: it is no object whatever the error, so it is bad, never unreadable.
      const local = isLocalError(err) && !isOtherThanFile(p);
      return { ok: false, bytes: 0, problem: `cannot open: ${describeError(err)}`, missing: code === 'ENOENT', local };
    }
  }

  private close(fd: number): void {
    try {
      this.reader.close(fd);
    } catch {
      // a close error after a read error says nothing new
    }
  }
}

/** The verdict of a check from its first read and, when that failed, a second one. */
function decide(first: ReadOutcome, second: ReadOutcome | (() => ReadOutcome)): CheckResult {
  if (first.ok) return { status: 'ok', bytesRead: first.bytes };
  if (first.missing) return { status: 'missing', bytesRead: 0 };
  const again = typeof second === 'function' ? second() : second;
  const bytesRead = first.bytes + again.bytes;
  if (again.ok) return { status: 'ok-second-read', bytesRead, firstProblem: first.problem };
  if (again.missing) return { status: 'missing', bytesRead };
  if (again.local === true) return { status: 'unreadable', bytesRead, problem: again.problem };
  return { status: 'bad', bytesRead, problem: again.problem };
}

/** Whether an lstat shows `p` is something else than a regular file (false when the lstat fails too). */
function isOtherThanFile(p: string): boolean {
  try {
    return !fs.lstatSync(p).isFile();
  } catch {
    return false;
  }
}

/** The outcome of a read that failed with `err` after `bytes` bytes. */
function unreadable(err: unknown, bytes: number): ReadOutcome {
  return { ok: false, bytes, problem: `unreadable: ${describeError(err)}`, missing: false, local: isLocalError(err) };
}

/** A file of `bytes` bytes where `sizeBytes` are catalogued (from its length, or as far as it was read). */
function wrongLength(bytes: number, sizeBytes: number): ReadOutcome {
  return {
    ok: false,
    bytes: 0,
    problem: `${bytes} bytes instead of ${sizeBytes} (truncated or grown)`,
    missing: false,
  };
}

function judge(got: string, bytes: number, hash: string, sizeBytes: number): ReadOutcome {
  if (bytes !== sizeBytes) return { ...wrongLength(bytes, sizeBytes), bytes };
  if (got !== hash) return { ok: false, bytes, problem: `content hashes to ${got}`, missing: false };
  return { ok: true, bytes };
}
