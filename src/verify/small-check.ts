/**
 * The small-object lane of `verify`: objects below INLINE_BELOW_BYTES checked on worker threads,
 * many per message, so that the calling thread only reads the catalogue, orders the objects and
 * records the results while the threads open, read and hash (one thread per lane: the hdd
 * profile's single stream stays one stream, since one thread reads one object at a time). On
 * the calling thread each small check cost about 20 µs of its time beside some 10 µs of
 * catalogue and ordering per object (`node --cpu-prof`, 30,000 objects of 1–16 KiB).
 *
 * `checkSmallBatch` holds the logic and runs in-process in tests; small-check.worker.ts is its
 * thread. A batch stops before its next object once the shared stop flag is set (Ctrl-C) or the
 * deadline (`--max-time`, Date.now() ms) has passed: its answer then holds the results of a
 * prefix of its tasks, and the objects after it were not started. Nothing here writes.
 */
import * as fs from 'node:fs';
import { type CheckResult, ObjectChecker } from '../disk/check-object.js';
import { BatchThread } from '../pipeline/batch-thread.js';

/**
 * One message to a thread: the objects to check in order, and when to stop starting them. Flat,
 * so that it crosses to the thread as two copies of memory rather than an object per task (the
 * copies were a tenth of the threads' time).
 */
export interface SmallCheckBatch {
  /** `distbackup-objects/` of the disk. */
  readonly objectsDir: string;
  /** The objects' names (64 hex digits each, HASH_RE), one after the other. */
  readonly hashes: string;
  /** Their catalogued sizes, in the same order. */
  readonly sizes: Float64Array;
  /** Date.now() ms after which no object is started; null: none. */
  readonly deadlineMs: number | null;
}

/** A result as it crosses back: an ok check is just its bytes read. */
export type SmallCheckAnswer = number | CheckResult;

/** The CheckResult of an answer. */
export function fromAnswer(a: SmallCheckAnswer): CheckResult {
  return typeof a === 'number' ? { status: 'ok', bytesRead: a } : a;
}

/** A batch of the objects `tasks` of `objectsDir` (each hash must match HASH_RE). */
export function smallBatch(
  objectsDir: string,
  tasks: readonly { hash: string; sizeBytes: number }[],
  deadlineMs: number | null,
): SmallCheckBatch {
  const sizes = new Float64Array(tasks.length);
  for (const [i, t] of tasks.entries()) sizes[i] = t.sizeBytes;
  return { objectsDir, hashes: tasks.map((t) => t.hash).join(''), sizes, deadlineMs };
}

/**
 * Check the objects of `batch` in order with `checker` (read twice when wrong, as everywhere);
 * stops before an object when `stop[0]` is not 0 or the deadline has passed. One answer per
 * object checked, in order.
 */
export function checkSmallBatch(batch: SmallCheckBatch, checker: ObjectChecker, stop?: Int32Array): SmallCheckAnswer[] {
  const out: SmallCheckAnswer[] = [];
  const { objectsDir, hashes, sizes, deadlineMs } = batch;
  for (let i = 0; i < sizes.length; i++) {
    if (stop !== undefined && Atomics.load(stop, 0) !== 0) break;
    if (deadlineMs !== null && Date.now() >= deadlineMs) break;
    const hash = hashes.slice(i * 64, i * 64 + 64);
    // As DiskRoot.objectPath for a well-formed hash.
    const r = checker.check(`${objectsDir}/${hash.slice(0, 3)}/${hash}`, hash, sizes[i] as number);
    out.push(r.status === 'ok' ? r.bytesRead : r);
  }
  return out;
}

/** A message asking a thread for the inode numbers of `paths` (joined by NUL bytes). */
export interface InodeRequest {
  readonly paths: string;
}

/**
 * The inode number of each path (lstat, never following a link); MAX_SAFE_INTEGER where it
 * cannot be had (missing, unreadable: the check says which) or once `stop[0]` is set.
 */
export function inodesOf(paths: readonly string[], stop?: Int32Array): Float64Array {
  const out = new Float64Array(paths.length).fill(Number.MAX_SAFE_INTEGER);
  for (const [i, p] of paths.entries()) {
    if (stop !== undefined && Atomics.load(stop, 0) !== 0) break;
    try {
      const st = fs.lstatSync(p, { throwIfNoEntry: false });
      if (st !== undefined) out[i] = st.ino;
    } catch {
      // unreadable: the check says why
    }
  }
  return out;
}

/** Answer one message of a thread: a batch to check, or paths to look up. */
export function answer(
  msg: SmallCheckBatch | InodeRequest,
  checker: ObjectChecker,
  stop?: Int32Array,
): SmallCheckAnswer[] | Float64Array {
  return 'paths' in msg ? inodesOf(msg.paths.split('\0'), stop) : checkSmallBatch(msg, checker, stop);
}

/** What a thread is started with. */
export interface SmallCheckWorkerData {
  /** One Int32: set to 1 to stop every batch before its next object. */
  readonly stop: SharedArrayBuffer;
  /** Read buffer: objects below it are read in one read (and one more that finds the end). */
  readonly bufferBytes: number;
}

/** A checker for objects below `bufferBytes` (one read each, one more finds the end). */
export function smallChecker(bufferBytes: number): ObjectChecker {
  return new ObjectChecker(undefined, Math.max(1, bufferBytes));
}

/**
 * `count` threads running checkSmallBatch: `run` posts a batch to the thread with the fewest
 * waiting and resolves with its results (each thread answers in order). Started by `start()`;
 * `close()` ends them. A thread that fails rejects what waits on it and every later `run`.
 * Main thread only.
 */
export class SmallCheckThreads {
  private readonly threads: BatchThread<SmallCheckBatch | InodeRequest, SmallCheckAnswer[] | Float64Array>[] = [];
  private readonly stopFlag = new Int32Array(new SharedArrayBuffer(4));
  private failed: Error | undefined;

  constructor(
    readonly count: number,
    private readonly bufferBytes: number,
  ) {}

  /** Threads started so far. */
  get started(): number {
    return this.threads.length;
  }

  /** Start the threads now: they boot while the caller reads the catalogue. */
  start(): void {
    if (this.threads.length > 0) return;
    const data: SmallCheckWorkerData = {
      stop: this.stopFlag.buffer as SharedArrayBuffer,
      bufferBytes: this.bufferBytes,
    };
    for (let i = 0; i < this.count; i++) {
      const t = new BatchThread<SmallCheckBatch | InodeRequest, SmallCheckAnswer[] | Float64Array>(
        import.meta.url,
        'small-check.worker',
        'small-object check thread',
        false,
        { ...data },
      );
      t.start();
      this.threads.push(t);
    }
  }

  /** Check `batch` on the least busy thread. */
  run(batch: SmallCheckBatch): Promise<SmallCheckAnswer[]> {
    return this.post(batch) as Promise<SmallCheckAnswer[]>;
  }

  /**
   * The inode numbers of `paths` (see inodesOf), looked up by the least busy thread once it has
   * checked what it holds: with one thread (the hdd profile) the lookups and the reads stay one
   * stream, in turn, while the calling thread reads the catalogue meanwhile.
   */
  inodes(paths: readonly string[]): Promise<Float64Array> {
    return this.post({ paths: paths.join('\0') }) as Promise<Float64Array>;
  }

  private post(msg: SmallCheckBatch | InodeRequest): Promise<SmallCheckAnswer[] | Float64Array> {
    if (this.failed !== undefined) return Promise.reject(this.failed);
    this.start();
    let t = this.threads[0];
    for (const u of this.threads) if (t === undefined || u.pending < t.pending) t = u;
    if (t === undefined) return Promise.reject(new Error('no small-object check thread'));
    // One thread failing fails every later post, whichever thread it would go to.
    return t.run(msg).catch((err: Error) => {
      this.failed ??= err;
      throw err;
    });
  }

  /** Every batch stops before its next object (it answers with what it checked). */
  stop(): void {
    Atomics.store(this.stopFlag, 0, 1);
  }

  /** End the threads. Idempotent. */
  async close(): Promise<void> {
    this.failed ??= new Error('small-object check threads closed');
    for (const t of this.threads.splice(0)) await t.close();
  }
}
