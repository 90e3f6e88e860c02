/**
 * Hashing one source file for `update`: SHA-256 on node:crypto (OpenSSL with SHA-NI, 1.9 GB/s
 * per thread here against hash-wasm's 0.47, NODE20.md), read with `fs.readSync` into one reused
 * buffer (a `createReadStream` per small file measured 12× slower). Synchronous on purpose: it
 * runs inside a piscina worker (hash.worker.ts is the thin adapter) and in-process in tests.
 *
 * Safety (RELIABILITY.md 7, 13, 17): the file is opened with O_NOFOLLOW (a symlink swapped in
 * after the scan is not followed) and O_NONBLOCK (a FIFO swapped in does not block us forever),
 * then fstat'ed: it must be a regular file with the device and inode the scan saw. After the last
 * read it is fstat'ed again; if size, mtime or ctime moved, or the bytes read differ from the
 * size, the file changed while being read and the result is an error (retried next run), never a
 * hash paired with metadata it does not match. A path deeper than PATH_MAX is opened through its
 * folder's descriptor (`/proc/self/fd/N/name`, deep-path.ts), which works in a worker thread too.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { describeError, errnoCode } from '../core/errors.js';
import { openDeep } from './deep-path.js';

/** SHA-256 of zero bytes (the empty file is an object like any other). */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/**
 * Read chunk size: 256 KiB, one reused buffer per thread. Small enough that the bytes read are
 * still in the core's cache when they are hashed: reading and hashing 64 MiB from tmpfs took
 * 65–69 ms of CPU with 64–256 KiB chunks against 70–77 with 1 MiB and 104–128 with 4 MiB.
 */
export const HASH_CHUNK_BYTES = 256 << 10;

/** One file to hash, as the scan saw it. */
export interface HashTask {
  /** Real path, bytes (names need not be UTF-8). */
  readonly path: Uint8Array;
  readonly dev: bigint;
  readonly ino: bigint;
  /** true when the scan followed a symlink to reach it (then the path is opened through it). */
  readonly follow: boolean;
  /** Its size when scanned, in bytes, if known: lets a pool weigh the work (never trusted as the size read). */
  readonly sizeBytes?: number;
}

/** The hash and the metadata it belongs to (from the fstat taken before reading). */
export interface HashOk {
  readonly ok: true;
  readonly hash: string;
  readonly sizeBytes: number;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

/** Why a file could not be hashed; `code` is the errno or `changed` / `replaced` / `not-file`. */
export interface HashFailed {
  readonly ok: false;
  readonly code: string;
  readonly error: string;
}

export type HashResult = HashOk | HashFailed;

const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK;
const NOFOLLOW = fs.constants.O_NOFOLLOW;

function toBuffer(p: Uint8Array): Buffer {
  // Paths cross the worker boundary as Uint8Array (structured clone); fs wants a Buffer.
  return Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
}

function failed(code: string, error: string): HashFailed {
  return { ok: false, code, error };
}

/**
 * The steps of hashing the file of `task` with `buf` as the read buffer: yields after each chunk
 * read, returns the result. Driven to its end by `hashFile` (at once) or `hashFileSliced` (with
 * turns of the event loop between slices); the file is closed when it returns.
 */
function* hashSteps(task: HashTask, buf: Buffer): Generator<undefined, HashResult, undefined> {
  const p = toBuffer(task.path);
  let fd: number;
  try {
    // A path longer than PATH_MAX is opened through its folder's descriptor (deep-path.ts).
    fd = openDeep(p, OPEN_FLAGS | (task.follow ? 0 : NOFOLLOW));
  } catch (err) {
    const code = errnoCode(err) ?? 'EIO';
    // ELOOP from O_NOFOLLOW: the path became a symlink after the scan.
    if (code === 'ELOOP' && !task.follow) return failed('replaced', 'replaced by a symbolic link since it was scanned');
    return failed(code, describeError(err));
  }
  try {
    const before = fs.fstatSync(fd, { bigint: true });
    if (!before.isFile()) return failed('not-file', 'no longer a regular file');
    if (before.ino !== task.ino || before.dev !== task.dev) {
      return failed('replaced', 'replaced by another file since it was scanned');
    }
    const h = createHash('sha256');
    const size = Number(before.size);
    let total = 0;
    // Read up to the size fstat gave, not to a read that returns 0: that last read was one
    // syscall of the seven a small file costs. A file that grew since is caught below (its
    // size moved, or more bytes came than it had). A file of size 0 is read once: /proc files
    // say 0 and then return bytes.
    while (total < size || total === 0) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(n === buf.length ? buf : buf.subarray(0, n));
      total += n;
      yield;
    }
    const after = fs.fstatSync(fd, { bigint: true });
    if (
      after.size !== before.size ||
      after.mtimeNs !== before.mtimeNs ||
      after.ctimeNs !== before.ctimeNs ||
      BigInt(total) !== before.size
    ) {
      return failed('changed', 'changed while being read; it will be hashed again at the next update');
    }
    return {
      ok: true,
      hash: h.digest('hex'),
      sizeBytes: total,
      mtimeNs: before.mtimeNs,
      ctimeNs: before.ctimeNs,
      mode: Number(before.mode & 0o7777n),
      uid: Number(before.uid),
      gid: Number(before.gid),
    };
  } catch (err) {
    return failed(errnoCode(err) ?? 'EIO', describeError(err));
  } finally {
    try {
      fs.closeSync(fd);
    } catch {}
  }
}

/**
 * Hash the file of `task` with `buf` as the read buffer (reused across calls; one per thread).
 * Never throws for per-file problems: they come back as `{ ok: false }`.
 */
export function hashFile(task: HashTask, buf: Buffer): HashResult {
  const steps = hashSteps(task, buf);
  for (;;) {
    const s = steps.next();
    if (s.done === true) return s.value;
  }
}

/** Chunks read between two turns of the event loop in `hashFileSliced` (8 MiB, ~4 ms of hashing). */
const SLICE_CHUNKS = (8 << 20) / HASH_CHUNK_BYTES;

/**
 * `hashFile` on a thread that has other work (the main thread of `update`): the event loop gets
 * a turn after every `SLICE_CHUNKS` chunks, so timers, worker replies and Ctrl-C are served
 * within milliseconds while a large file is hashed; `stop` is asked at each turn (true: it
 * gives up). `buf` must not be shared with another slice in flight.
 */
export async function hashFileSliced(task: HashTask, buf: Buffer, stop?: () => boolean): Promise<HashResult> {
  const steps = hashSteps(task, buf);
  try {
    for (let n = 1; ; n++) {
      const s = steps.next();
      if (s.done === true) return s.value;
      if (n % SLICE_CHUNKS === 0) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        // Given up (Ctrl-C): no result; the generator's finally closes the file.
        if (stop?.() === true) return { ok: false, code: 'interrupted', error: 'stopped before the end' };
      }
    }
  } finally {
    steps.return(undefined as never);
  }
}

/** Hash several files in one call (small files: one worker round trip for many). */
export function hashBatch(tasks: readonly HashTask[], buf: Buffer): HashResult[] {
  return tasks.map((t) => hashFile(t, buf));
}
