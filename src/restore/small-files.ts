/**
 * The small-file lane of `restore` (restore.ts): files below 1 MiB written on a worker thread,
 * many per message. The thread reads the objects of each message whole as the message arrives,
 * eight at a time on libuv's pool in the order given (`fetch.ts`: one open and one read of
 * `size + 1` bytes, so an object that grew or shrank is caught without an fstat); then per file,
 * in order, it checks the length and SHA-256 against the catalogue, creates the temp file beside
 * the target (0600, O_EXCL|O_NOFOLLOW), writes it, gives it its mode, mtime and owner
 * (`applyMeta`), removes the target only when told to, and links it into place without ever
 * replacing a name (`placeNoReplace`); it answers each message with one result per file.
 *
 * The main thread keeps everything that makes the restore safe: it builds and checks every path
 * (paths.ts, dest-tree.ts; only targets it checked inside DEST reach the thread, as paths the
 * kernel takes directly), decides whether a target may be replaced, counts and records a file
 * only once its batch is durable (batch.ts), and reports every problem in the words of the
 * main-thread writer (file-writer.ts). On the main thread each small file cost two libuv round
 * trips (its object's open and read) and a dozen synchronous calls between two rows of the
 * catalogue (3,000 files: about 30 k futex calls, docs/README-recovery.md).
 *
 * `SmallFileWriter` holds the logic and runs in-process in tests; small-files.worker.ts is its
 * thread (`pipeline/batch-thread.ts`, as sync's lane). `SmallFileLane` frames the messages on
 * the main thread.
 */
import * as fs from 'node:fs';
import { writeFully } from '../core/durable.js';
import { DistbackupError, describeError, errnoCode } from '../core/errors.js';
import { sha256Hex } from '../core/sha256.js';
import { BatchThread } from '../pipeline/batch-thread.js';
import { lstatOrUndefined } from './dest-tree.js';
import { ExistsError } from './errors.js';
import { FETCH_SLOTS, type Fetched, ObjectFetcher } from './fetch.js';
import { applyMeta, type MetaLost } from './meta.js';
import { placeFile, TMP_FLAGS, TMP_MODE } from './place.js';

/** One file for the thread: the object to read, the paths to write, the metadata to set. */
export interface SmallFileTask {
  readonly hash: string;
  readonly sizeBytes: number;
  /** The disk's object (null: an empty file, nothing to read). */
  readonly object: string | null;
  /**
   * The temp name beside the target, and the target: paths the kernel takes as they are, as
   * latin1 strings (one char a byte, so names that are not UTF-8 cross intact, and a string
   * crosses to the thread cheaper than a buffer of its own).
   */
  readonly tmp: string;
  readonly target: string;
  /** Unlink the target before placing the file (`--overwrite`, or a file of an earlier run). */
  readonly replace: boolean;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtimeNs: bigint;
  /** Read the mode back once set (the run's first file: does this filesystem keep modes?). */
  readonly checkMode: boolean;
}

/** A step in DEST that failed: rebuilt on the main thread as that errno error. */
export interface SmallFileFailure {
  readonly step: 'create' | 'write' | 'meta' | 'place' | 'close';
  readonly file: string;
  readonly code: string | undefined;
  readonly message: string;
}

/** What became of one task: exactly one of these is set. */
export interface SmallFileResult {
  /** Written, checked and in place; what the filesystem could not keep. */
  readonly placed?: MetaLost;
  /** The object is not there (ENOENT): the main thread checks the disk is still mounted. */
  readonly missing?: true;
  /** The object is damaged or unreadable: the words of a BadObject. Nothing was created. */
  readonly bad?: string;
  /** The target exists and may not be replaced: the words of an ExistsError. */
  readonly exists?: string;
  /** A step in DEST failed; the temp file is removed (the file itself, when `close` failed, is in place). */
  readonly failed?: SmallFileFailure;
}

/** Why `bytes` are not the object `hash` of `sizeBytes` bytes (a BadObject's words), or undefined. Any thread. */
export function objectProblem(hash: string, sizeBytes: number, bytes: Buffer): string | undefined {
  if (bytes.length !== sizeBytes) {
    const what = bytes.length > sizeBytes ? `more than ${sizeBytes} bytes` : `${bytes.length} bytes, not ${sizeBytes}`;
    return `object ${hash} has ${what}: damaged (run 'distbackup verify')`;
  }
  const h = sha256Hex(bytes);
  if (h !== hash) return `object ${hash} reads back as ${h}: damaged (run 'distbackup verify'); not restored`;
  return undefined;
}

function failure(step: SmallFileFailure['step'], file: Buffer, err: unknown): SmallFileResult {
  return {
    failed: {
      step,
      file: file.toString(),
      code: errnoCode(err),
      message: err instanceof Error ? err.message : String(err),
    },
  };
}

function removeTmp(tmp: Buffer): void {
  try {
    fs.rmSync(tmp, { force: true });
  } catch {
    // the folder itself is gone or unreachable: nothing to clean
  }
}

/**
 * Whether the file at `target` is the one open as `fd`: after two threads placed files side by
 * side, a name another thread's temp file took could have been placed instead (see
 * SmallFileLane). Throws when it is not, after removing the name this placement made (`remove`:
 * a link that made a new name; a rename that replaced a file leaves the name to its writer).
 */
export function checkPlaced(fd: number, target: Buffer, remove = true): void {
  const mine = fs.fstatSync(fd);
  const there = lstatOrUndefined(target);
  if (there !== undefined && there.ino === mine.ino && there.dev === mine.dev) return;
  if (there !== undefined && remove) fs.rmSync(target, { force: true });
  throw Object.assign(new Error('placed a file other than the one written (its temp name was taken); not counted'), {
    code: 'ESTALE',
  });
}

/**
 * Restore one task whose object was read (`fetched`; undefined: nothing to read), see the module
 * comment; `verify`: check that the file placed is the one written (checkPlaced).
 */
function restoreSmallFile(t: SmallFileTask, fetched: Fetched | undefined, verify = false): SmallFileResult {
  let data: Buffer = Buffer.alloc(0);
  if (fetched !== undefined) {
    if (!fetched.ok) {
      if (fetched.err.code === 'ENOENT') return { missing: true };
      return { bad: `object ${t.hash}: ${describeError(fetched.err)}` };
    }
    data = fetched.bytes;
  }
  // Checked before anything is created: a damaged object leaves nothing in DEST.
  const bad = objectProblem(t.hash, t.sizeBytes, data);
  if (bad !== undefined) return { bad };
  const tmp = Buffer.from(t.tmp, 'latin1');
  const target = Buffer.from(t.target, 'latin1');
  let fd: number;
  try {
    fd = fs.openSync(tmp, TMP_FLAGS, TMP_MODE);
  } catch (err) {
    return failure('create', tmp, err);
  }
  let result: SmallFileResult | undefined;
  let step: SmallFileFailure['step'] = 'write';
  try {
    writeFully(fd, data, 0);
    step = 'meta';
    const lost = applyMeta(fd, t, t.checkMode);
    step = 'place';
    placeFile(tmp, target, t.replace);
    // A rename replaced what was there: the name then holds another writer's file, never ours to remove.
    if (verify) checkPlaced(fd, target, !t.replace);
    result = { placed: lost };
  } catch (err) {
    result = err instanceof ExistsError ? { exists: err.message } : failure(step, step === 'place' ? target : tmp, err);
  }
  try {
    fs.closeSync(fd);
  } catch (err) {
    // As on the main thread: a file whose close failed is not counted (the next run checks it by its hash).
    if (result.placed !== undefined) return failure('close', target, err);
    result ??= failure('close', tmp, err);
  }
  if (result.placed === undefined) removeTmp(tmp);
  return result;
}

/**
 * Writes the files of the lane's messages: `write(tasks)` starts reading their objects at once
 * (behind those of earlier messages), then restores them in order once the earlier messages are
 * done; one result per task, never rejects. Any thread (the lane's, or in-process in tests).
 */
export class SmallFileWriter {
  private readonly fetcher = new ObjectFetcher(FETCH_SLOTS);
  private last: Promise<unknown> = Promise.resolve();

  /** `checkPlaced`: another thread places files beside this one (checkPlaced after each placement). */
  constructor(private readonly checkPlaced = false) {}

  write(tasks: readonly SmallFileTask[]): Promise<SmallFileResult[]> {
    const fetched = tasks.map((t) => (t.object === null ? undefined : this.fetcher.fetch(t.object, t.sizeBytes)));
    const after = this.last;
    const done = (async (): Promise<SmallFileResult[]> => {
      await after;
      const out: SmallFileResult[] = [];
      for (const [i, t] of tasks.entries()) out.push(restoreSmallFile(t, await fetched[i], this.checkPlaced));
      return out;
    })();
    this.last = done;
    return done;
  }
}

/**
 * Files per message and bytes per message, as sync's lane measured them (pipeline/copy.ts): 32
 * files or 2 MiB. At most two messages wait on the thread, so at most 64 files (about 4 MiB of
 * objects) are read ahead and not yet answered.
 */
const MSG_FILES = 32;
const MSG_BYTES = 2 * 1024 * 1024;

/** The code of the error that stops a run whose lane's thread failed (its files have no result). */
export const LANE_FAILED = 'small-file-thread';

/** A file waiting on the lane: the caller's entry `e` and its task. */
interface Queued<E> {
  readonly e: E;
  readonly task: SmallFileTask;
}

/**
 * A target path as a case-folding filesystem could see it: ASCII letters lowered, and the dots
 * and spaces FAT drops from the end of each name dropped. Files whose paths fold alike go to the
 * same thread of the lane, in the order they were added, so two names a folder could take for one
 * (`A.txt`, `a.txt`; `Dir/x`, `dir/x`, which share a temp name too) are never placed by two
 * threads at once, while the files of one big folder still spread over both.
 */
export function foldedPath(target: string): string {
  let out = '';
  for (const part of target.split('/')) out += `${part.replace(/[. ]+$/, '').toLowerCase()}/`;
  return out;
}

/** A thread index in [0, n) for `key` (FNV-1a over its chars). */
function threadFor(key: string, n: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return (h >>> 0) % n;
}

/**
 * The main thread's side of the lane: `add` queues a file for its thread (one, or the one of its
 * path, foldedPath) and posts that thread's message once it holds MSG_FILES files or
 * MSG_BYTES bytes (at once when nothing is posted), with at most two messages posted per thread;
 * each result goes to `onResult`, on this thread, when `add` or `drain` settles its message
 * (messages in the order posted, files in the order added). A thread that dies stops the run
 * with an error. Main thread only.
 *
 * One thread keeps the disk's reads one stream (the hdd profile); two (ssd) let the files be
 * written on both cores: with one, the thread was the whole restore's bottleneck (100,000 files
 * of 8 KB: it was busy 9.8 s of 13.6 s, the main thread 3.7 s). The caller asks for two only
 * where DEST's filesystem is case-sensitive and has hard links (caseSensitiveWithLinks), where
 * every no-replace placement is one link(2).
 */
export class SmallFileLane<E> {
  private readonly threads: BatchThread<SmallFileTask[], SmallFileResult[]>[] = [];
  /** The files waiting to be posted, per thread. */
  private readonly msgs: { files: Queued<E>[]; bytes: number }[] = [];
  private readonly posted: {
    m: Queued<E>[];
    thread: number;
    reply: Promise<SmallFileResult[]>;
    done: boolean;
  }[] = [];

  constructor(
    private readonly onResult: (e: E, task: SmallFileTask, r: SmallFileResult) => void,
    threads = 1,
  ) {
    for (let i = 0; i < Math.max(1, threads); i++) {
      const t = new BatchThread<SmallFileTask[], SmallFileResult[]>(
        import.meta.url,
        'small-files.worker',
        'small-file restore thread',
        false,
        { checkPlaced: threads > 1 },
      );
      // Booting now while the first files are looked at: about 40 ms of CPU from dist/ (75–85 ms
      // until a first answer), 150 ms under tsx.
      t.start();
      this.threads.push(t);
      this.msgs.push({ files: [], bytes: 0 });
    }
  }

  /** Queue `task` (see the class comment); waits while two messages of its thread are posted and unanswered. */
  async add(e: E, task: SmallFileTask): Promise<void> {
    while (this.posted[0]?.done === true) await this.settleOne();
    const i = this.threads.length === 1 ? 0 : threadFor(foldedPath(task.target), this.threads.length);
    const q = this.msgs[i] as { files: Queued<E>[]; bytes: number };
    q.files.push({ e, task });
    q.bytes += task.sizeBytes;
    if (this.posted.length === 0 || q.files.length >= MSG_FILES || q.bytes >= MSG_BYTES) {
      while (this.posted.filter((p) => p.thread === i).length >= 2) await this.settleOne();
      this.post(i);
    }
  }

  /** Post what waits and settle every message: each file queued has its result. */
  async drain(): Promise<void> {
    for (let i = 0; i < this.threads.length; i++) this.post(i);
    while (this.posted.length > 0) await this.settleOne();
  }

  /** End the threads (what is queued and not posted is dropped). */
  async close(): Promise<void> {
    for (const q of this.msgs) {
      q.files = [];
      q.bytes = 0;
    }
    for (const t of this.threads) await t.close();
  }

  private post(i: number): void {
    const q = this.msgs[i] as { files: Queued<E>[]; bytes: number };
    const m = q.files;
    q.files = [];
    q.bytes = 0;
    if (m.length === 0) return;
    const thread = this.threads[i] as BatchThread<SmallFileTask[], SmallFileResult[]>;
    const p = { m, thread: i, reply: thread.run(m.map((f) => f.task)), done: false };
    // Observed by settleOne; `done` lets `add` settle answered messages without waiting.
    p.reply.then(
      () => {
        p.done = true;
      },
      () => {
        p.done = true;
      },
    );
    this.posted.push(p);
  }

  private async settleOne(): Promise<void> {
    const p = this.posted.shift();
    if (p === undefined) return;
    let results: SmallFileResult[];
    try {
      results = await p.reply;
    } catch (err) {
      throw new DistbackupError(`the small-file restore thread failed: ${describeError(err)}`, {
        code: LANE_FAILED,
        cause: err,
      });
    }
    for (const [i, q] of p.m.entries()) {
      const r = results[i];
      if (r !== undefined) this.onResult(q.e, q.task, r);
    }
  }
}
