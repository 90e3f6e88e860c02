/**
 * Small I/O helpers of the copy pipeline: callback fs calls as promises (they run on libuv's
 * thread pool, so a read and a write overlap), a positional write that loops on short writes,
 * a bounded chunk queue between a reader and a writer, and a read-back that bypasses the page
 * cache where the filesystem allows (O_DIRECT).
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { errnoCode, fileError } from '../core/errors.js';

/** A message to the hash thread: add a chunk of shared memory to a hash, finish it, or drop it. */
export type HashThreadRequest =
  | { readonly t: 'update'; readonly id: number; readonly mem: SharedArrayBuffer; readonly n: number }
  | { readonly t: 'digest'; readonly id: number }
  | { readonly t: 'drop'; readonly id: number };

/** The answer to each request, in order: the hex digest for `digest`, else null (or an error). */
export type HashThreadReply = { readonly hex: string | null; readonly error?: string };

/**
 * The hash thread's code: SHA-256 states by id, one reply per request, in order. Plain
 * JavaScript evaluated in the thread, so that it runs the same from `dist/` and under tsx
 * (whose loader does not reach worker threads).
 */
const HASH_THREAD_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const states = new Map();
parentPort.on('message', (m) => {
  try {
    if (m.t === 'update') {
      let h = states.get(m.id);
      if (h === undefined) { h = createHash('sha256'); states.set(m.id, h); }
      h.update(new Uint8Array(m.mem, 0, m.n));
      parentPort.postMessage({ hex: null });
      return;
    }
    const h = states.get(m.id);
    states.delete(m.id);
    parentPort.postMessage({ hex: m.t === 'digest' ? (h === undefined ? createHash('sha256') : h).digest('hex') : null });
  } catch (err) {
    parentPort.postMessage({ hex: null, error: String(err && err.message ? err.message : err) });
  }
});
`;

/**
 * A thread that hashes large chunks while the main thread writes them (SHA-256 at ~1.9 GB/s
 * on one core is a third of the copy time of large files when it shares the event loop with
 * the writes). Chunks are SharedArrayBuffers, so nothing is copied; requests are answered in
 * order, so one FIFO of resolvers matches the replies. Started lazily at the first large file;
 * `close()` ends the thread. Drive it from one thread only.
 */
export class HashThread {
  private worker: Worker | undefined;
  private readonly waiting: { resolve: (hex: string | null) => void; reject: (err: Error) => void }[] = [];
  private failed: Error | undefined;

  private start(): Worker {
    if (this.worker !== undefined) return this.worker;
    // No inherited loader flags: the thread runs plain JavaScript only.
    const w = new Worker(HASH_THREAD_SOURCE, { eval: true, execArgv: [] });
    w.on('message', (r: HashThreadReply) => {
      const p = this.waiting.shift();
      if (p === undefined) return;
      if (r.error !== undefined) p.reject(new Error(`hash thread: ${r.error}`));
      else p.resolve(r.hex);
    });
    const die = (err: Error): void => {
      this.failed ??= err;
      for (const p of this.waiting.splice(0)) p.reject(err);
    };
    w.on('error', die);
    w.on('exit', (code) => die(new Error(`hash thread exited (code ${code})`)));
    this.worker = w;
    return w;
  }

  private request(m: HashThreadRequest): Promise<string | null> {
    if (this.failed !== undefined) return Promise.reject(this.failed);
    const w = this.start();
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      w.postMessage(m);
    });
  }

  /** Add the first `n` bytes of `mem` to hash `id`; resolves once they are hashed (`mem` may then be reused). */
  async update(id: number, mem: SharedArrayBuffer, n: number): Promise<void> {
    await this.request({ t: 'update', id, mem, n });
  }

  /** The hex SHA-256 of everything added to `id` (the state is then gone). */
  async digest(id: number): Promise<string> {
    return (await this.request({ t: 'digest', id })) ?? '';
  }

  /** Forget hash `id` (an abandoned file). */
  drop(id: number): void {
    this.request({ t: 'drop', id }).catch(() => {});
  }

  /** Stop the thread. */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.failed ??= new Error('hash thread closed');
    if (w !== undefined) {
      w.removeAllListeners('exit');
      await w.terminate();
    }
    for (const p of this.waiting.splice(0)) p.reject(this.failed);
  }
}

export function readAsync(
  fd: number,
  buf: Uint8Array,
  offset: number,
  length: number,
  position: number,
): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.read(fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

/**
 * SHA-256 (hex) of everything in `fd` from its start: reads on libuv's pool into `bufs` in turns,
 * the next one under way while this thread hashes the last one. Leaves no read in flight when it
 * settles (the caller may then close `fd`), also when `stop` says to end early (it then
 * rejects, code EINTR). Used to check a file just copied by the kernel or by `cp`, read back from the
 * page cache the copy filled.
 */
export async function hashFdAsync(fd: number, bufs: readonly [Buffer, Buffer], stop?: () => boolean): Promise<string> {
  const h = createHash('sha256');
  let pos = 0;
  let k = 0;
  let reading = readAsync(fd, bufs[0], 0, bufs[0].length, 0);
  for (;;) {
    const n = await reading;
    if (n === 0) break;
    // Asked to stop (Ctrl-C): between two reads, none in flight.
    if (stop?.() === true) throw Object.assign(new Error('interrupted'), { code: 'EINTR' });
    const buf = bufs[k % 2] as Buffer;
    k += 1;
    pos += n;
    reading = readAsync(fd, bufs[k % 2] as Buffer, 0, buf.length, pos);
    h.update(buf.subarray(0, n));
  }
  return h.digest('hex');
}

/**
 * The checks of files just copied (by the kernel or by `cp`), one after the other: each is the
 * SHA-256 of its file read back (`hashFdAsync`), through two buffers of `chunkBytes` the checks
 * share, started once the checks queued before it have settled. The caller copies the next file
 * meanwhile. Main thread only.
 */
export class ReadBackChecks {
  private last: Promise<unknown> = Promise.resolve();
  private bufs: [Buffer, Buffer] | undefined;

  constructor(private readonly chunkBytes: number) {}

  /** The SHA-256 (hex) of `fd` from its start, after the checks queued before; `stop` as hashFdAsync's. */
  check(fd: number, stop?: () => boolean): Promise<string> {
    this.bufs ??= [Buffer.allocUnsafe(this.chunkBytes), Buffer.allocUnsafe(this.chunkBytes)];
    const bufs = this.bufs;
    const run = this.last.then(() => hashFdAsync(fd, bufs, stop));
    this.last = run.catch(() => undefined);
    return run;
  }
}

/** Write all of `buf` at `position`, looping on short writes (the async twin of writeFully). */
export async function writeFullyAsync(fd: number, buf: Uint8Array, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const n = await new Promise<number>((resolve, reject) => {
      fs.write(fd, buf, off, buf.length - off, position + off, (err, written) =>
        err ? reject(err) : resolve(written),
      );
    });
    if (n <= 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' });
    off += n;
  }
}

/** rename(2) on libuv's pool. */
export function renameAsync(from: string, to: string): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.rename(from, to, (err) => (err ? reject(err) : resolve()));
  });
}

export function fsyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.fsync(fd, (err) => (err ? reject(err) : resolve()));
  });
}

/** errno names of the messages `sync` prints (strerror), for the errors a disk can give. */
const STRERROR: Record<string, string> = {
  'Input/output error': 'EIO',
  'No space left on device': 'ENOSPC',
  'Disk quota exceeded': 'EDQUOT',
  'Read-only file system': 'EROFS',
  'No such file or directory': 'ENOENT',
  'Transport endpoint is not connected': 'ENOTCONN',
  'Function not implemented': 'ENOSYS',
  'File too large': 'EFBIG',
};

/**
 * Write back every dirty inode of the filesystem holding `p`, commit its journal, and report a
 * write-back error (syncfs(2) through coreutils' `sync -f`; Linux 5.8+ reports errors). A batch
 * of small files rests on it (copy.ts): one call instead of an fsync per file and per folder.
 * Rejects with an errno-coded error naming `p`; code `ENOSYS` when `sync -f` itself is missing
 * or too old (the caller then fsyncs file by file).
 */
export function syncfs(p: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    let child: ReturnType<typeof spawn>;
    try {
      // spawn() throws, rather than emitting 'error', for errnos such as EBUSY: the batch is
      // then not durable, and the line names the folder.
      child = spawn('sync', ['-f', p], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      reject(fileError(p, err, 'syncfs'));
      return;
    }
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 4096) stderr += d.toString('utf8');
    });
    child.on('error', (err) => reject(fileError(p, Object.assign(err, { code: 'ENOSYS' }), 'syncfs')));
    child.on('close', (code, signal) => {
      if (code === 0) {
        resolve();
        return;
      }
      const line = stderr.trim().split('\n')[0] ?? '';
      const errno = commandMissing(null, line) ? 'ENOSYS' : errnoOf(line, 'EIO');
      const why = line === '' ? `sync -f ended with ${signal ?? `exit ${code}`}` : line;
      reject(fileError(p, Object.assign(new Error(why), { code: errno }), 'syncfs'));
    });
  });
}

/**
 * The shell loop of `SyncfsRunner`: one `sync -f` per line read, answered by `ok` or `fail
 * <exit status> <first line of its message>`.
 */
const SYNCFS_LOOP = `while IFS= read -r p; do
  if e=$(sync -f -- "$p" 2>&1 >/dev/null); then echo ok
  else s=$?; printf 'fail %s %s\\n' "$s" "$(printf '%s' "$e" | tr '\\n' ' ')"; fi
done`;

/** A request waiting for its line: how to settle it, and the error it gets when it fails. */
interface ShellRequest {
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
  /** The error of an answer `fail <status> <message>`. */
  readonly failed: (status: number, message: string) => Error;
  /** The error when the shell could not run or ended. */
  readonly gone: (why: string) => Error;
}

/**
 * One long-lived `sh -c SCRIPT` that answers each line written to it with one line, `ok` or
 * `fail <exit status> <first line of a message>`, in order: the loops of SyncfsRunner and
 * CpRunner. Its own process group: a Ctrl-C in the terminal reaches this process, which
 * stops cleanly, and not the shell's commands; `kill()` ends the shell and the command in flight.
 * It ends on its own when this process dies (its stdin closes), after the command in flight.
 * A request still waiting when the shell goes away is rejected, never left unsettled.
 */
/**
 * Process groups of the shells running now. They run in groups of their own (a Ctrl-C at the
 * terminal is this process's to handle), so a process that exits at once (a second Ctrl-C:
 * cli/interrupt.ts) ends them on its way out: a `cp` in flight must not go on writing into a
 * disk whose lock is released.
 */
const liveGroups = new Set<number>();
process.on('exit', () => {
  for (const pid of liveGroups) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
});

class ShellLoop {
  private child: ChildProcessWithoutNullStreams | undefined;
  private readonly waiting: ShellRequest[] = [];
  private out = '';
  private broken = false;

  constructor(
    /** Names the shell in messages (`sync -f`, `the copying shell`). */
    private readonly what: string,
    private readonly script: string,
    private readonly args: readonly string[] = [],
    private readonly env?: NodeJS.ProcessEnv,
  ) {}

  /** Start the shell now (else at the first request); undefined when it cannot start. */
  start(): ChildProcessWithoutNullStreams | undefined {
    if (this.child !== undefined || this.broken) return this.child;
    let child: ChildProcessWithoutNullStreams;
    try {
      child = spawn('sh', ['-c', this.script, 'sh', ...this.args], {
        stdio: 'pipe',
        detached: true,
        ...(this.env === undefined ? {} : { env: this.env }),
      });
    } catch {
      this.broken = true;
      return undefined;
    }
    const group = child.pid;
    if (group !== undefined) liveGroups.add(group);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      this.out += d;
      for (let nl = this.out.indexOf('\n'); nl >= 0; nl = this.out.indexOf('\n')) {
        const line = this.out.slice(0, nl);
        this.out = this.out.slice(nl + 1);
        this.answer(line);
      }
    });
    child.stderr.resume();
    const gone = (why: string): void => {
      this.broken = true;
      if (this.child === child) this.child = undefined;
      // A command of the shell may outlive it (its output goes elsewhere): it is ended before
      // what waits is rejected, or a `cp` could open a descriptor number the caller has reused.
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // none left
      }
      for (const w of this.waiting.splice(0)) w.reject(w.gone(why));
    };
    child.on('error', (err) => gone(`${this.what} could not run: ${err.message}`));
    child.on('close', (code, signal) => {
      if (group !== undefined) liveGroups.delete(group);
      gone(`${this.what} ended with ${signal ?? `exit ${code}`}`);
    });
    child.stdin.on('error', () => {
      // EPIPE when the shell died: its 'close' rejects what waits.
    });
    this.child = child;
    return child;
  }

  private answer(line: string): void {
    const w = this.waiting.shift();
    if (w === undefined) return;
    if (line === 'ok') {
      w.resolve();
      return;
    }
    const m = /^fail (\d+) ?(.*)$/.exec(line);
    w.reject(w.failed(m === null ? 1 : Number(m[1]), (m?.[2] ?? line).trim()));
  }

  /** Process id of the shell while it runs (for tests). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Send `line` (no newline in it); undefined when the shell cannot start (the caller does without). */
  request(line: string, failed: ShellRequest['failed'], gone: ShellRequest['gone']): Promise<void> | undefined {
    const child = this.start();
    if (child === undefined) return undefined;
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ resolve, reject, failed, gone });
      child.stdin.write(`${line}\n`);
    });
  }

  /** End the shell and the command in flight at once. */
  kill(): void {
    const child = this.child;
    this.broken = true;
    if (child?.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }

  /** End the shell once its requests are done; no request is taken after. */
  close(): void {
    const child = this.child;
    this.child = undefined;
    this.broken = true;
    child?.stdin.end();
  }
}

/**
 * Whether a command that failed with `status` (null: unknown) and `message` was not there to run:
 * 126/127 from the shell (no such command), or an option it does not know (not coreutils', or
 * too old).
 */
function commandMissing(status: number | null, message: string): boolean {
  return status === 126 || status === 127 || /unrecognized|invalid option|unknown option/.test(message);
}

/** The errno of a command's message: a known strerror text, else `fallback`. */
function errnoOf(message: string, fallback: string): string {
  const known = Object.keys(STRERROR).find((k) => message.includes(k));
  return known === undefined ? fallback : (STRERROR[known] as string);
}

/**
 * syncfs(2) through one long-lived `sh` that runs `sync -f` for each request, instead of a
 * spawn of `sync` from this process per call: forking a Node process of a few hundred MB cost
 * 40–55 ms of the main thread per call (30,000 small files: 0.65 s of the sync), forking the
 * small shell under a millisecond. Same answers as `syncfs()`: resolves when the filesystem
 * holding `p` is written back, rejects with an errno-coded error naming `p` (ENOSYS when
 * `sync -f` is missing or too old, EIO when the shell itself ended). Requests are answered in
 * order; a path holding a newline, or a shell that cannot start, goes through `syncfs()`.
 * `close()` ends the shell. Main thread only.
 */
export class SyncfsRunner {
  private readonly shell = new ShellLoop('sync -f', SYNCFS_LOOP);

  /**
   * Start the shell now (it starts at the first request otherwise): before the copy, no other
   * thread of this process is inside an fsync (under an LD_PRELOAD fault injector such as libfiu,
   * a fork while one is can leave the child blocked on the injector's lock before its exec).
   */
  start(): void {
    this.shell.start();
  }

  /** Process id of the shell while it runs (for tests). */
  get pid(): number | undefined {
    return this.shell.pid;
  }

  /** syncfs(2) of the filesystem holding `p` (see the class comment). */
  run(p: string): Promise<void> {
    if (p.includes('\n')) return syncfs(p);
    const err = (message: string, code: string): Error =>
      fileError(p, Object.assign(new Error(message), { code }), 'syncfs');
    const done = this.shell.request(
      p,
      (status, msg) => {
        const missing = commandMissing(status, msg);
        return err(msg === '' ? `sync -f ended with exit ${status}` : msg, missing ? 'ENOSYS' : errnoOf(msg, 'EIO'));
      },
      (why) => err(why, 'EIO'),
    );
    return done ?? syncfs(p);
  }

  /** End the shell; requests still waiting are rejected. */
  close(): void {
    this.shell.close();
  }
}

/**
 * Files from this size up are worth a copy by `cp` (sync's and restore's): below it, the fork and
 * exec of a `cp` per file cost more than they save (copy.ts and file-writer.ts have the figures).
 */
export const CP_COPY_MIN = 16 * 1024 * 1024;
/** `cp` failures in a row (other than the target's, see CpRunner) after which a run gives up on `cp`. */
const CP_FAILURES = 3;
/** Errors of a copy that are the target's (full, read-only, a file too big for it), not a failure of `cp`. */
const TARGET_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EFBIG']);

/**
 * The shell loop of `CpRunner`: for each line `S D`, coreutils `cp` copies this process's
 * descriptor S into its descriptor D through their /proc links ($1 is this process's id), and
 * the line is answered as SYNCFS_LOOP's are.
 */
const CP_LOOP = `while read -r s d; do
  if e=$(cp --reflink=never -T -- "/proc/$1/fd/$s" "/proc/$1/fd/$d" 2>&1 >/dev/null); then echo ok
  else st=$?; printf 'fail %s %s\\n' "$st" "$(printf '%s' "$e" | tr '\\n' ' ')"; fi
done`;

/**
 * Copies of whole files by another process, for the large files of `sync` (copy.ts) and
 * `restore` (file-writer.ts): one long-lived
 * `sh` runs coreutils `cp` per request (its own read/write loop: no byte passes through this
 * process; with `--reflink=never` cp does not use copy_file_range), from a descriptor of this
 * process to another (the source opened and checked, the `.tmp/` file made and kept open), both
 * reached through /proc/PID/fd: no name on the disk is looked up, so a link swapped into `.tmp/`
 * is never written through. Not libuv's copyFile: it copies the size it saw at its start and,
 * when the file shrinks meanwhile, its loop never ends (libuv 1.46: a read at the end gives 0
 * bytes and it starts over, a pool thread spinning for good); `cp` stops at the end of the file.
 * Not a spawn of `cp` from this process per file either: forking a Node process of 536 MB
 * blocked its main thread 11 ms a spawn here. `--reflink=never`: an object shares no extent with
 * its source. Requests run one at a time, in order. `kill()` (Ctrl-C, a disk error) ends the
 * copy in flight at once. Rejects with an errno-coded error (from cp's message, in the C locale:
 * ENOSPC, EDQUOT, EROFS, EFBIG, EIO; ENOSYS when `cp` is missing or lacks the options; ECOPY
 * otherwise or when the shell ended). Main thread only.
 */
export class CpRunner {
  private readonly shell = new ShellLoop('the copying shell', CP_LOOP, [String(process.pid)], {
    ...process.env,
    LC_ALL: 'C',
  });
  private failures = 0;
  private givenUp = false;

  /**
   * False once copies by `cp` are not worth asking for any more in this run: there is no `cp`
   * (or not coreutils', or no /proc to reach the descriptors through), or CP_FAILURES copies
   * in a row failed other than by the target's fault. The caller then copies by itself.
   */
  get usable(): boolean {
    return !this.givenUp;
  }

  /** Start the shell now (see SyncfsRunner.start). */
  start(): void {
    this.shell.start();
  }

  /** Process id of the shell while it runs (for tests). */
  get pid(): number | undefined {
    return this.shell.pid;
  }

  /** Copy all of descriptor `srcFd` into descriptor `dstFd` (an empty file); both stay open until this settles. */
  copy(srcFd: number, dstFd: number): Promise<void> {
    const err = (message: string, code: string): Error => Object.assign(new Error(message), { code });
    const done = this.shell.request(
      `${srcFd} ${dstFd}`,
      (status, msg) => {
        const missing = commandMissing(status, msg);
        return err(msg === '' ? `cp ended with exit ${status}` : msg, missing ? 'ENOSYS' : errnoOf(msg, 'ECOPY'));
      },
      (why) => err(why, 'ECOPY'),
    );
    return (done ?? Promise.reject(err('the copying shell could not start', 'ENOSYS'))).then(
      () => {
        this.failures = 0;
      },
      (e: Error) => {
        const code = errnoCode(e) ?? '';
        if (code === 'ENOSYS' || (!TARGET_ERRORS.has(code) && ++this.failures >= CP_FAILURES)) this.givenUp = true;
        throw e;
      },
    );
  }

  /** End the shell and the copy in flight at once; what waits is rejected (code ECOPY). */
  kill(): void {
    this.shell.kill();
  }

  /** End the shell once its requests are done. */
  close(): void {
    this.shell.close();
  }
}

/**
 * The soft limit of open descriptors of this process (RLIMIT_NOFILE, from /proc/self/limits);
 * undefined when unknown or unlimited.
 */
export function openFilesLimit(file = '/proc/self/limits'): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(fs.readFileSync(file, 'utf8'));
    return m === null ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

/**
 * fsync a folder on the thread pool; EINVAL / ENOTSUP / EISDIR ignored as in core's fsyncDir
 * (filesystems that cannot fsync a folder), every other error thrown.
 */
export async function fsyncDirAsync(dir: string): Promise<void> {
  const fd = await new Promise<number>((resolve, reject) => {
    fs.open(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY, (err, f) =>
      err ? reject(fileError(dir, err, 'open folder')) : resolve(f),
    );
  });
  try {
    await fsyncAsync(fd);
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR') throw fileError(dir, err, 'fsync of folder');
  } finally {
    fs.closeSync(fd);
  }
}

/** A small file opened, checked and read whole on libuv's pool (see SmallFilePrefetch). */
export interface PrefetchedFile {
  /** Descriptor of the file (opened O_NOFOLLOW | O_NONBLOCK); the caller closes it. */
  readonly fd: number;
  readonly stat: fs.Stats;
  /** Its first `n` bytes (`n` = the size asked for); valid until `release()`. */
  readonly buf: Buffer;
  readonly n: number;
  /** Give the buffer back (idempotent); only once its bytes are no longer used. */
  release(): void;
}

/**
 * Opens, fstats and reads small files on libuv's pool ahead of the copy, so the main thread
 * never waits on a cold source (30,000 small files: 8.2 s of 19 s blocked in synchronous reads
 * behind a cache warmer). A fetch yields the open descriptor, its stat and the bytes, or
 * undefined when anything differs from a regular file of at least `size` bytes that read whole
 * (the copy then opens and reads the file itself, and reports what it finds). Buffers (at most
 * `slots` of `maxBytes`, allocated when first needed) are handed out in call order, so fetches
 * made in the copy's order cannot starve the one the copy waits for; a descriptor is open only
 * while its fetch holds a buffer. Every promise settles (errors resolve to undefined). Main
 * thread only.
 */
export class SmallFilePrefetch {
  private readonly free: Buffer[] = [];
  private made = 0;
  private readonly waiting: ((b: Buffer) => void)[] = [];

  constructor(
    private readonly slots: number,
    private readonly maxBytes: number,
  ) {}

  private acquire(): Promise<Buffer> {
    const b = this.free.pop();
    if (b !== undefined) return Promise.resolve(b);
    if (this.made < this.slots) {
      this.made += 1;
      return Promise.resolve(Buffer.allocUnsafe(this.maxBytes));
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private give(b: Buffer): void {
    const w = this.waiting.shift();
    if (w !== undefined) w(b);
    else this.free.push(b);
  }

  /** Fetch `file` (`size` bytes, 0 < size <= maxBytes); see the class comment. */
  async fetch(file: Buffer, size: number): Promise<PrefetchedFile | undefined> {
    if (size <= 0 || size > this.maxBytes || this.slots <= 0) return undefined;
    const buf = await this.acquire();
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.give(buf);
    };
    const fd = await new Promise<number>((resolve) => {
      // O_NOFOLLOW, O_NONBLOCK: as the copy opens it (no link followed, no FIFO waited on).
      fs.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK, (err, f) =>
        resolve(err === null ? f : -1),
      );
    });
    if (fd < 0) {
      release();
      return undefined;
    }
    const stat = await new Promise<fs.Stats | undefined>((resolve) => {
      fs.fstat(fd, (err, st) => resolve(err === null ? st : undefined));
    });
    const n =
      stat?.isFile() && stat.size >= size
        ? await new Promise<number>((resolve) => {
            fs.read(fd, buf, 0, size, 0, (err, got) => resolve(err === null ? got : -1));
          })
        : -1;
    if (stat === undefined || n !== size) {
      release();
      fs.close(fd, () => {});
      return undefined;
    }
    return { fd, stat, buf, n, release };
  }
}

/**
 * A FIFO between one producer and one consumer holding at most `capacity` messages; `push`
 * waits while it is full (backpressure), `pop` while it is empty. `close()` ends it: pending
 * and later pops return undefined once drained, pushes return false.
 */
export class BoundedQueue<T> {
  private readonly items: T[] = [];
  private closed = false;
  private waitingPop: ((v: T | undefined) => void) | undefined;
  private waitingPush: (() => void) | undefined;

  constructor(private readonly capacity: number) {}

  async push(item: T): Promise<boolean> {
    while (this.items.length >= this.capacity && !this.closed) {
      await new Promise<void>((resolve) => {
        this.waitingPush = resolve;
      });
    }
    if (this.closed) return false;
    const w = this.waitingPop;
    if (w !== undefined) {
      this.waitingPop = undefined;
      w(item);
    } else {
      this.items.push(item);
    }
    return true;
  }

  async pop(): Promise<T | undefined> {
    const first = this.items.shift();
    if (first !== undefined) {
      this.wakePush();
      return first;
    }
    if (this.closed) return undefined;
    return new Promise<T | undefined>((resolve) => {
      this.waitingPop = resolve;
    });
  }

  close(): void {
    this.closed = true;
    this.wakePush();
    const w = this.waitingPop;
    if (w !== undefined && this.items.length === 0) {
      this.waitingPop = undefined;
      w(undefined);
    }
  }

  private wakePush(): void {
    const w = this.waitingPush;
    if (w !== undefined) {
      this.waitingPush = undefined;
      w();
    }
  }
}

/** WebAssembly is a global of Node; the ES lib this project compiles against does not declare it. */
const Wasm = (
  globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number }) => { buffer: ArrayBuffer } } }
).WebAssembly;

/** What the read-back of one file gave: its hash and whether the page cache was bypassed, or why it failed. */
export type ReadBackResult = { ok: true; hash: string; direct: boolean } | { ok: false; error: unknown };

/** Bytes of each read-back slot (one O_DIRECT read); slots are carved from one page-aligned memory. */
const READBACK_SLOT_BYTES = 1024 * 1024;

/**
 * SHA-256 of each of `files`, read with O_DIRECT where the filesystem allows it, so that the
 * bytes come from the device and not from the page cache that was just written (`--verify
 * readback`); `width` files at once, each read in order in slots of READBACK_SLOT_BYTES.
 * A small file's read-back is one device round trip: one at a time, 112 k small files took 59 s
 * against 11 s for the same sync without it; a queue of them lets an SSD (or the elevator of a
 * hard disk) serve several per round trip. The buffers are a WebAssembly memory: page-aligned,
 * as O_DIRECT requires. Results in the order of `files`.
 */
export async function readBackHashes(files: readonly string[], width: number): Promise<ReadBackResult[]> {
  const lanes = Math.max(1, Math.min(width, files.length));
  // Slots of this call only (one call per batch: an allocation per batch costs nothing against its reads). 64 KiB pages.
  const mem = new Uint8Array(new Wasm.Memory({ initial: (lanes * READBACK_SLOT_BYTES) / 65536 }).buffer);
  const out: ReadBackResult[] = new Array(files.length);
  let next = 0;
  const lane = async (slot: Uint8Array): Promise<void> => {
    for (let i = next++; i < files.length; i = next++) {
      try {
        out[i] = { ok: true, ...(await readBackOne(files[i] as string, slot)) };
      } catch (error) {
        out[i] = { ok: false, error };
      }
    }
  };
  await Promise.all(
    Array.from({ length: lanes }, (_, k) => lane(mem.subarray(k * READBACK_SLOT_BYTES, (k + 1) * READBACK_SLOT_BYTES))),
  );
  return out;
}

function openAsync(file: string, flags: number): Promise<number> {
  return new Promise((resolve, reject) => fs.open(file, flags, (err, fd) => (err ? reject(err) : resolve(fd))));
}

function closeAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve())));
}

async function readBackOne(file: string, buf: Uint8Array): Promise<{ hash: string; direct: boolean }> {
  let direct = true;
  let fd: number;
  try {
    fd = await openAsync(file, fs.constants.O_RDONLY | (fs.constants.O_DIRECT ?? 0));
  } catch (err) {
    if (errnoCode(err) !== 'EINVAL') throw err;
    direct = false;
    fd = await openAsync(file, fs.constants.O_RDONLY);
  }
  const h = createHash('sha256');
  try {
    let pos = 0;
    for (;;) {
      let n: number;
      try {
        n = await readAsync(fd, buf, 0, buf.length, pos);
      } catch (err) {
        if (!direct || errnoCode(err) !== 'EINVAL') throw err;
        // The filesystem accepted O_DIRECT at open but not for this read: read through the cache.
        await closeAsync(fd);
        fd = await openAsync(file, fs.constants.O_RDONLY);
        direct = false;
        continue;
      }
      if (n <= 0) break;
      h.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    await closeAsync(fd).catch(() => {});
  }
  return { hash: h.digest('hex'), direct };
}
