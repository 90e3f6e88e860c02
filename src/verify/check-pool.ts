/**
 * Where verify's checks run. One lane per object read at a time: the hdd profile has one (a
 * single sequential stream), the ssd profile two, each hashing on its own thread (one thread
 * hashes about 2 GB/s with SHA-NI, NODE20.md, so two streams need two threads).
 *
 * - inline lanes run ObjectChecker.checkAsync on the calling thread: for one lane, and for
 *   tests that inject a reader (a reader cannot cross into a worker);
 * - with threads, the checks start on the calling thread; only once enough checking is left
 *   (THREAD_MIN_MS at the rate measured so far) does one lane stay there and the others move
 *   to piscina threads running check.worker, so a small verify pays for no thread and two
 *   lanes start one thread, not two (a thread costs about 0.13 s of CPU to start from dist/,
 *   0.45 s under tsx). Under tsx the worker is the `.ts` file next to this one, from `dist/`
 *   the `.js` (NODE20.md). Aborting a check in a thread stops that thread (piscina), so Ctrl-C
 *   never waits for a large object to finish.
 *
 * `destroy()` must be called at the end, or idle threads keep the process alive.
 */
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import type { Piscina } from 'piscina';
import { CHECK_CHUNK_BYTES, type CheckResult, ObjectChecker, type ObjectReader } from '../disk/check-object.js';

/** One object to check: its path on the disk, its name, its catalogued size. */
export interface CheckTask {
  path: string;
  hash: string;
  sizeBytes: number;
}

/** Runs checks on `lanes` lanes; drive it from one thread, at most `lanes` checks at a time. */
export interface CheckPool {
  readonly lanes: number;
  readonly threads: boolean;
  /** Worker threads started so far (0 for inline lanes). */
  readonly threadsStarted: number;
  /** Checks handed to worker threads so far. */
  readonly threadChecks: number;
  /** Check one object; rejects with the signal's reason when `signal` aborts. */
  check(task: CheckTask, signal?: AbortSignal): Promise<CheckResult>;
  /** Stop the threads. Idempotent. */
  destroy(): Promise<void>;
}

/** `lanes` checks at a time on the calling thread (one checker, so one buffer pair, per lane). */
export function createInlineCheckPool(lanes: number, reader?: ObjectReader): CheckPool {
  // With several lanes no read may block the thread the others share.
  const make = (): ObjectChecker => new ObjectChecker(reader, CHECK_CHUNK_BYTES, lanes > 1 ? 0 : CHECK_CHUNK_BYTES);
  const idle = Array.from({ length: lanes }, make);
  return {
    lanes,
    threads: false,
    threadsStarted: 0,
    threadChecks: 0,
    check: async (task, signal) => {
      const checker = idle.pop() ?? make();
      try {
        return await checker.checkAsync(task.path, task.hash, task.sizeBytes, signal);
      } finally {
        idle.push(checker);
      }
    },
    destroy: async () => {},
  };
}

/**
 * A worker thread pays for itself only when enough checking is left: starting one costs about
 * 0.13 s of CPU from `dist/` (0.45 s under tsx), which a verify of 256 MiB (about 0.15 s of
 * hashing on one core) never earns back. bench/recovery.ts, 256 MiB of 64 MiB objects, ssd
 * profile against two `openssl dgst` processes: 3.28× with the thread started at once, 1.12×
 * checking on the calling thread (docs/README-recovery.md).
 */
export const THREAD_MIN_MS = 500;

/**
 * The rate assumed before any check has finished: faster than one core hashes SHA-256 here
 * (node:crypto 1.4 GB/s with SHA-NI), so a run started at once on this estimate needs its thread
 * whatever the disk. Without it a verify of a few large objects put both lanes on this thread
 * before any rate was known and never used the thread: 4 objects of 512 MiB, ssd profile,
 * 1.80 s (one core) against 0.91 s for two `openssl dgst` processes.
 */
export const PRIOR_BYTES_PER_MS = 2_000_000;

/**
 * While the thread starts (about 0.1 s), an object at least this large waits for it rather than
 * share this thread with the other lane: hashing it here would take about as long as the wait.
 */
export const THREAD_WAIT_BYTES = 64 * 1024 * 1024;

/**
 * Objects below this size are checked with synchronous reads on the calling thread, never on a
 * worker: a worker's round trip and libuv's (open, read, close on the pool) cost more than the
 * check itself, and a read this small holds the other lane up for less than a hop would.
 * 3,000 objects of 2–5 KB, `verify --profile ssd` from dist/: 1.21 s with every check a round
 * trip, against 0.37 s for the hdd profile's synchronous reads.
 */
export const INLINE_BELOW_BYTES = 256 * 1024;

/** When `createThreadCheckPool` starts its worker threads. */
export interface ThreadStartOptions {
  /** Bytes the run plans to check (catalogued sizes). */
  plannedBytes: number;
  /** Start the threads only when at least this much checking is left at the measured rate (ms; default THREAD_MIN_MS). */
  minMs?: number | undefined;
  /** Monotonic clock in ms (tests); default performance.now. */
  nowMs?: (() => number) | undefined;
  /** Objects below this size are checked synchronously here (default INLINE_BELOW_BYTES; tests: 0). */
  inlineBelowBytes?: number | undefined;
  /** Objects of this size or more wait for a starting thread (default THREAD_WAIT_BYTES). */
  waitBytes?: number | undefined;
}

/**
 * `lanes` lanes that start on the calling thread and move to worker threads once enough
 * checking is left: up to `lanes` checks run here (async reads, so their reads overlap) until
 * the bytes not yet started would take at least `minMs`, at the rate measured so far on this
 * thread or, before one is known, at PRIOR_BYTES_PER_MS; from then on one lane stays here and the
 * others run on `lanes - 1` piscina threads, one check at a time each. Until the thread has
 * answered, both lanes go on here rather than wait for it, except for objects of `waitBytes` or
 * more. The rate is measured over the checks finished so far, once they span at least a tenth of
 * `minMs` (the first small object, with its cold start, would make any verify look slow).
 */
export function createThreadCheckPool(lanes: number, start: ThreadStartOptions): CheckPool {
  const minMs = start.minMs ?? THREAD_MIN_MS;
  const nowMs = start.nowMs ?? (() => performance.now());
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  const threads = Math.max(1, lanes - 1);
  let pool: Piscina<CheckTask, CheckResult> | undefined;
  /** The thread has answered: until then both lanes go on here, rather than wait for it to start. */
  let poolReady = false;
  // Async reads even for small objects: other checks on this thread must not wait on a read.
  const idle = Array.from({ length: lanes }, () => new ObjectChecker(undefined, CHECK_CHUNK_BYTES, 0));
  const inlineBelow = start.inlineBelowBytes ?? INLINE_BELOW_BYTES;
  // One buffer of that size: a small object is read whole, hashed and done before this returns.
  const small = new ObjectChecker(undefined, Math.max(inlineBelow, 1), inlineBelow);
  let busyHere = 0;
  let threadChecks = 0;
  let startedBytes = 0;
  let doneBytes = 0;
  let firstMs: number | undefined;
  let destroyed: Promise<void> | undefined;
  const waitBytes = start.waitBytes ?? THREAD_WAIT_BYTES;
  const worthAThread = (leftBytes: number): boolean => {
    // Before any rate is measured: so much is left that even the fastest hashing needs a thread.
    if (leftBytes / PRIOR_BYTES_PER_MS >= minMs) return true;
    if (firstMs === undefined || doneBytes <= 0) return false;
    const elapsedMs = nowMs() - firstMs;
    return elapsedMs >= minMs / 10 && leftBytes * (elapsedMs / doneBytes) >= minMs;
  };
  const here = async (task: CheckTask, signal: AbortSignal | undefined): Promise<CheckResult> => {
    const checker = idle.pop() ?? new ObjectChecker(undefined, CHECK_CHUNK_BYTES, 0);
    busyHere += 1;
    try {
      const r = await checker.checkAsync(task.path, task.hash, task.sizeBytes, signal);
      doneBytes += task.sizeBytes;
      return r;
    } finally {
      busyHere -= 1;
      idle.push(checker);
    }
  };
  return {
    lanes,
    threads: true,
    get threadsStarted(): number {
      return pool === undefined ? 0 : threads;
    },
    get threadChecks(): number {
      return threadChecks;
    },
    check: async (task, signal) => {
      firstMs ??= nowMs();
      const leftBytes = Math.max(0, start.plannedBytes - startedBytes);
      startedBytes += task.sizeBytes;
      if (task.sizeBytes < inlineBelow) {
        const r = await small.checkAsync(task.path, task.hash, task.sizeBytes, signal);
        doneBytes += task.sizeBytes;
        return r;
      }
      if (pool === undefined && destroyed === undefined && worthAThread(leftBytes)) {
        pool = new (loadPiscina())<CheckTask, CheckResult>({
          filename: new URL(`./check.worker${ext}`, import.meta.url).href,
          minThreads: threads,
          maxThreads: threads,
          // One object at a time per thread: reading and hashing it keeps the thread busy.
          concurrentTasksPerWorker: 1,
          idleTimeout: 60_000,
        });
        // The worker's `ready` export takes no task.
        pool.run(undefined as unknown as CheckTask, { name: 'ready' }).then(
          () => {
            poolReady = true;
          },
          () => {},
        );
      }
      if (pool === undefined || busyHere === 0) return here(task, signal);
      if (!poolReady && task.sizeBytes < waitBytes) return here(task, signal);
      threadChecks += 1;
      return signal === undefined ? pool.run(task) : pool.run(task, { signal });
    },
    destroy: () => {
      destroyed ??= pool === undefined ? Promise.resolve() : pool.destroy();
      return destroyed;
    },
  };
}

/** piscina, loaded when the first thread starts (~10 ms of start-up that a small verify skips). */
function loadPiscina(): typeof Piscina {
  return (createRequire(import.meta.url)('piscina') as { Piscina: typeof Piscina }).Piscina;
}
