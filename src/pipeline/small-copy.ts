/**
 * The small-file lane of `sync` (copy.ts): files that a syncfs batch makes durable, copied on a
 * worker thread, synchronously and many per message. Per file it opens a source, checks it is
 * a regular file of at least the catalogued size, reads it whole, checks its SHA-256 against the
 * catalogued hash, makes the prefix folder when asked, creates the `.tmp/` file, writes and
 * closes it; it answers each message with one result per file. Everything that makes the copy
 * durable or counts it (syncfs, renames, folder fsyncs, the commit, kill points) stays on the
 * main thread. On the main thread the same copy cost a libuv round trip or a hash-thread round
 * trip per step (3,000 small files: 33.7 k futex calls, 1.19 s of copy phase).
 *
 * A source that cannot be used is reported with the words of the main-thread copy (the next
 * source is tried first, as there); a problem of the disk (mkdir, create, write, close) ends
 * the message there, named by step, errno code and message, so that the main thread rebuilds
 * the same error. `copySmallBatch` holds the logic and runs in-process in tests;
 * small-copy.worker.ts is its thread (started through batch-thread.ts).
 *
 * A second thread gets the same messages first and only reads each first source into the page
 * cache (`readAhead`), so the copy thread seldom waits on a cold source: 3,000 cold small files,
 * copy phase 564–643 ms against 680–746 without it and 633–888 with libuv reads ahead inside the
 * copy thread (CacheWarmer: 55 k futex calls under strace against 3 k).
 */
import * as fs from 'node:fs';
import { describeError, errnoCode } from '../core/errors.js';
import { sha256Hex } from '../core/sha256.js';
import { BatchThread, openSource, toBuffer, warmFile } from './batch-thread.js';
import { openDeep } from './deep-path.js';

/** One file to copy. */
export interface SmallCopyTask {
  readonly hash: string;
  readonly sizeBytes: number;
  /** Real paths of files with this content, tried in order (as CopyItem.sources). */
  readonly sources: readonly Uint8Array[];
  /** The `.tmp/` file to create (O_EXCL, 0444). */
  readonly tmp: string;
  /** The prefix folder to make first, or null when the main thread has checked it already. */
  readonly dir: string | null;
}

/** A step of the disk that failed: the main thread throws it as `onFile(file, what, err)`. */
export interface SmallCopyDiskError {
  readonly what: 'mkdir' | 'create' | 'write' | 'close';
  readonly file: string;
  readonly code: string | undefined;
  readonly message: string;
}

/** What became of one task. */
export interface SmallCopyResult {
  /**
   * The prefix folder: `made` by this task (its parent needs an fsync), `exists` and not made
   * by this thread (the main thread checks it is a real folder), else undefined.
   */
  readonly dir?: 'made' | 'exists' | undefined;
  /** The `.tmp/` file is written and closed: index of the source it came from. */
  readonly ok?: number;
  /** No source could be used (or EFBIG): the last one tried (-1: none) and why. */
  /** `changed`: as CopySkip's (a source of the catalogued size hashed to something else). */
  readonly skip?: { readonly src: number; readonly error: string; readonly changed?: boolean };
  /** The disk failed: the thread stopped at this task (the tmp file is removed). */
  readonly disk?: SmallCopyDiskError;
}

/** Per-thread state: the read buffer, and the prefix folders this thread made or found (each reported once). */
export interface SmallCopyState {
  buf: Buffer;
  readonly dirs: Set<string>;
}

export function smallCopyState(): SmallCopyState {
  return { buf: Buffer.allocUnsafe(64 * 1024), dirs: new Set() };
}

const TMP_FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL;

function diskError(what: SmallCopyDiskError['what'], file: string, err: unknown): SmallCopyDiskError {
  return { what, file, code: errnoCode(err), message: err instanceof Error ? err.message : String(err) };
}

/**
 * Read a source of `t` whole into `state.buf` and check it; the bytes read, or why not (the
 * wording of copy.ts's readItem).
 */
function readSource(t: SmallCopyTask, src: Buffer, state: SmallCopyState): number | string | { changed: string } {
  let fd: number;
  try {
    // As readItem: no FIFO waited on, a link followed only when the source is one (openSource),
    // a path over PATH_MAX reached in parts.
    fd = openSource(src, openDeep);
  } catch (err) {
    return describeError(err);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return 'not a regular file any more';
    if (st.size < t.sizeBytes) {
      return `changed since the last update (${st.size} bytes, catalogued ${t.sizeBytes}); run 'distbackup update'`;
    }
    if (state.buf.length < t.sizeBytes) state.buf = Buffer.allocUnsafe(t.sizeBytes);
    const buf = state.buf;
    let pos = 0;
    while (pos < t.sizeBytes) {
      const n = fs.readSync(fd, buf, pos, t.sizeBytes - pos, pos);
      if (n <= 0) return `shorter than catalogued (${pos} of ${t.sizeBytes} bytes); run 'distbackup update'`;
      pos += n;
    }
    const got = sha256Hex(buf.subarray(0, pos));
    if (got !== t.hash) {
      return {
        changed: `content changed since the last update (hash ${got.slice(0, 12)}…, catalogued ${t.hash.slice(0, 12)}…); run 'distbackup update'`,
      };
    }
    return pos;
  } catch (err) {
    return describeError(err);
  } finally {
    fs.closeSync(fd);
  }
}

/** Write `data` to the new file `tmp`; a disk error, or a skip (EFBIG), or undefined when done. */
function writeTmp(tmp: string, data: Buffer): SmallCopyDiskError | { efbig: string } | undefined {
  let fd: number;
  try {
    // 0444 from the start: objects are never modified, only replaced or deleted.
    fd = fs.openSync(tmp, TMP_FLAGS, 0o444);
  } catch (err) {
    return diskError('create', tmp, err);
  }
  let failed: SmallCopyDiskError | { efbig: string } | undefined;
  try {
    let off = 0;
    while (off < data.length) {
      const n = fs.writeSync(fd, data, off, data.length - off, off);
      if (n <= 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' });
      off += n;
    }
  } catch (err) {
    failed =
      errnoCode(err) === 'EFBIG'
        ? { efbig: `too large for this disk's filesystem: ${describeError(err)}` }
        : diskError('write', tmp, err);
  }
  try {
    fs.closeSync(fd);
  } catch (err) {
    failed ??= diskError('close', tmp, err);
  }
  if (failed !== undefined) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // .tmp/ is emptied at the next sync
    }
  }
  return failed;
}

/**
 * Copy `tasks` in order; one result per task up to the first disk error, which is the last
 * result (the tasks after it were not started).
 */
export function copySmallBatch(tasks: readonly SmallCopyTask[], state: SmallCopyState): SmallCopyResult[] {
  const out: SmallCopyResult[] = [];
  for (const t of tasks) {
    const r = copySmallFile(t, state);
    out.push(r);
    if (r.disk !== undefined) break;
  }
  return out;
}

/** Copy one task (see copySmallBatch); a result with `disk` ends its message. */
function copySmallFile(t: SmallCopyTask, state: SmallCopyState): SmallCopyResult {
  let dir: 'made' | 'exists' | undefined;
  if (t.dir !== null && !state.dirs.has(t.dir)) {
    // mkdir first: a new folder needs no lstat; one that exists is checked on the main thread.
    try {
      fs.mkdirSync(t.dir, { mode: 0o755 });
      state.dirs.add(t.dir);
      dir = 'made';
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') return { disk: diskError('mkdir', t.dir, err) };
      state.dirs.add(t.dir);
      dir = 'exists';
    }
  }
  let lastErr = 'no file of the catalogue has this content any more';
  let last = -1;
  let n: number | undefined;
  let changed = false;
  for (const [k, src] of t.sources.entries()) {
    last = k;
    const r = readSource(t, toBuffer(src), state);
    if (typeof r === 'number') {
      n = r;
      break;
    }
    if (typeof r === 'string') lastErr = r;
    else {
      lastErr = r.changed;
      changed = true;
    }
  }
  if (n === undefined) return { dir, skip: { src: last, error: lastErr, ...(changed ? { changed } : {}) } };
  const w = writeTmp(t.tmp, state.buf.subarray(0, n));
  if (w === undefined) return { dir, ok: last };
  if ('efbig' in w) return { dir, skip: { src: last, error: w.efbig } };
  return { dir, disk: w };
}

/** Read the first source of `t` into the page cache (errors ignored: the copy meets them). */
export function readAhead(t: SmallCopyTask, state: SmallCopyState): void {
  const src = t.sources[0];
  if (src !== undefined) warmFile(src, t.sizeBytes, state);
}

/**
 * Whether the reading thread reads a message's sources ahead or lets it go. Reading ahead saves
 * the copy thread its waits on a cold source (100,000 cold files of 8 KB: 11.9 s against 13.7 s
 * without), but when the sources are in the page cache already it is the same reads done twice,
 * on a core the copy needs (warm: 7.1 s against 6.5 s). So a message whose reads all came back
 * at page-cache speed makes the thread let the next `every - 1` messages go, then look again;
 * one that had to wait keeps it reading every message. Any thread; one per reading thread.
 */
export class ReadAheadPacer {
  private skip = 0;

  /**
   * `every`: one message in this many is read while the sources are found cached; a read is
   * cached when it took under `nsPerFile` a file plus a byte per `bytesPerNs` (page-cache reads
   * of small files take 10–20 µs here; a cold one from a fast SSD, 80 µs and more).
   */
  constructor(
    private readonly every = 8,
    private readonly nsPerFile = 30_000,
    private readonly bytesPerNs = 2,
  ) {}

  /** True when the next message is to be read ahead. */
  shouldRead(): boolean {
    if (this.skip === 0) return true;
    this.skip -= 1;
    return false;
  }

  /** A message of `files` files and `bytes` bytes was read ahead in `ns` nanoseconds. */
  done(files: number, bytes: number, ns: number): void {
    if (files > 0 && ns < files * this.nsPerFile + bytes / this.bytesPerNs) this.skip = this.every - 1;
  }
}

/**
 * A small-file thread booting now (30–50 ms from dist/, 150 under tsx), or undefined when no
 * thread can start: the main thread then copies every file.
 */
export function startSmallCopyThread(): SmallCopyThread | undefined {
  const t = new SmallCopyThread();
  try {
    t.start();
    return t;
  } catch {
    return undefined;
  }
}

/** The thread of the small-file lane (batch-thread.ts): `run(tasks)` resolves with their results. Main thread only. */
export class SmallCopyThread extends BatchThread<SmallCopyTask[], SmallCopyResult[]> {
  constructor() {
    super(import.meta.url, 'small-copy.worker', 'small-file copy thread', true);
  }
}
