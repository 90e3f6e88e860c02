/**
 * Where verify's checks run. One lane per object read at a time: the hdd profile has one (a
 * single sequential stream), the ssd profile two, each hashing on its own thread (one thread
 * hashes about 2 GB/s with SHA-NI, NODE20.md, so two streams need two threads).
 *
 * - inline lanes run ObjectChecker.checkAsync on the calling thread: for one lane, and for
 *   tests that inject a reader (a reader cannot cross into a worker);
 * - with threads, one lane still runs on the calling thread (it has little else to do: a
 *   commit every 2 s) and the others on piscina threads running check.worker, so two lanes
 *   start one thread, not two (a thread costs about 0.13 s of CPU to start from dist/, 0.45 s
 *   under tsx). Under tsx the worker is the `.ts` file next to this one, from `dist/` the
 *   `.js` (NODE20.md). Aborting a check in a thread stops that thread (piscina), so Ctrl-C
 *   never waits for a large object to finish.
 *
 * `destroy()` must be called at the end, or idle threads keep the process alive.
 */
import { Piscina } from 'piscina';
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

/** One lane on the calling thread and `lanes - 1` worker threads, one check at a time each. */
export function createThreadCheckPool(lanes: number): CheckPool {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  const threads = Math.max(1, lanes - 1);
  const pool = new Piscina<CheckTask, CheckResult>({
    filename: new URL(`./check.worker${ext}`, import.meta.url).href,
    minThreads: threads,
    maxThreads: threads,
    // One object at a time per thread: reading and hashing it keeps the thread busy.
    concurrentTasksPerWorker: 1,
    idleTimeout: 60_000,
  });
  // Async reads even for small objects: the worker lanes' results arrive on this thread.
  const here = new ObjectChecker(undefined, CHECK_CHUNK_BYTES, 0);
  let hereBusy = false;
  let destroyed: Promise<void> | undefined;
  return {
    lanes,
    threads: true,
    check: async (task, signal) => {
      if (!hereBusy) {
        hereBusy = true;
        try {
          return await here.checkAsync(task.path, task.hash, task.sizeBytes, signal);
        } finally {
          hereBusy = false;
        }
      }
      return signal === undefined ? pool.run(task) : pool.run(task, { signal });
    },
    destroy: () => {
      destroyed ??= pool.destroy();
      return destroyed;
    },
  };
}
