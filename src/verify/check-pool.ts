/**
 * Where verify's checks run. One lane per object read at a time: the hdd profile has one (a
 * single sequential stream), the ssd profile two, each hashing on its own thread (one thread
 * hashes about 2 GB/s with SHA-NI, NODE20.md, so two streams need two threads).
 *
 * - inline lanes run ObjectChecker.checkAsync on the calling thread: for one lane, and for
 *   tests that inject a reader (a reader cannot cross into a worker);
 * - worker lanes are piscina threads running check.worker. Under tsx the worker is the `.ts`
 *   file next to this one, from `dist/` the `.js` (NODE20.md). Aborting a check in a thread
 *   stops that thread (piscina), so Ctrl-C never waits for a large object to finish.
 *
 * `destroy()` must be called at the end, or idle threads keep the process alive.
 */
import { Piscina } from 'piscina';
import { type CheckResult, ObjectChecker, type ObjectReader } from '../disk/check-object.js';

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
  const idle = Array.from({ length: lanes }, () => new ObjectChecker(reader));
  return {
    lanes,
    threads: false,
    check: async (task, signal) => {
      const checker = idle.pop() ?? new ObjectChecker(reader);
      try {
        return await checker.checkAsync(task.path, task.hash, task.sizeBytes, signal);
      } finally {
        idle.push(checker);
      }
    },
    destroy: async () => {},
  };
}

/** `lanes` worker threads, one check at a time each. */
export function createThreadCheckPool(lanes: number): CheckPool {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  const pool = new Piscina<CheckTask, CheckResult>({
    filename: new URL(`./check.worker${ext}`, import.meta.url).href,
    minThreads: lanes,
    maxThreads: lanes,
    // One object at a time per thread: reading and hashing it keeps the thread busy.
    concurrentTasksPerWorker: 1,
    idleTimeout: 60_000,
  });
  let destroyed: Promise<void> | undefined;
  return {
    lanes,
    threads: true,
    check: (task, signal) => (signal === undefined ? pool.run(task) : pool.run(task, { signal })),
    destroy: () => {
      destroyed ??= pool.destroy();
      return destroyed;
    },
  };
}
