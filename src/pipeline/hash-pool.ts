/**
 * The hash worker pool of `update`: piscina threads running hash.worker (SHA-256 is CPU-bound,
 * so the default is one thread per core). Under tsx the worker is the `.ts` file next to this
 * one, from `dist/` the `.js` (NODE20.md: a hard-coded `.js` is not found under tsx).
 * `destroy()` must be called at the end, or the idle threads keep the process alive.
 */
import { availableParallelism } from 'node:os';
import { HASH_CHUNK_BYTES, type HashResult, type HashTask, hashBatch } from './hash.js';

/** A pool of hash threads; not shared across threads (drive it from the main thread). */
export interface HashPool {
  readonly threads: number;
  /** Hash a batch in one worker call; resolves with one result per task, in order. */
  hash(tasks: HashTask[]): Promise<HashResult[]>;
  /** Stop the threads (waits for them). Idempotent. */
  destroy(): Promise<void>;
}

/** Default hash threads: one per core (SHA-256 is CPU-bound; NODE20.md measured 2 threads at 3.2 GB/s). */
export function defaultHashJobs(): number {
  return Math.max(1, availableParallelism());
}

/**
 * Start `threads` hash workers. piscina is loaded on this first call, not with the module: a
 * run with nothing to hash (a no-op update, a dry run) never pays for it (~70 ms of CPU to load).
 */
export function createHashPool(threads: number = defaultHashJobs()): HashPool {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  const pool = import('piscina').then(
    ({ Piscina }) =>
      new Piscina<HashTask[], HashResult[]>({
        filename: new URL(`./hash.worker${ext}`, import.meta.url).href,
        minThreads: threads,
        maxThreads: threads,
        // One batch at a time per thread: the work is CPU- and read-bound.
        concurrentTasksPerWorker: 1,
        idleTimeout: 60_000,
      }),
  );
  let destroyed: Promise<void> | undefined;
  return {
    threads,
    hash: async (tasks) => (await pool).run(tasks),
    destroy: () => {
      destroyed ??= pool.then((p) => p.destroy());
      return destroyed;
    },
  };
}

/**
 * A "pool" that hashes on the calling thread (same `hashBatch` as the workers): for tests and
 * tiny trees, where starting threads costs more than the hashing (about 0.2 s from dist/,
 * 2.7 s under tsx, which compiles the worker again in each thread).
 */
export function createInlineHashPool(): HashPool {
  const buf = Buffer.allocUnsafe(HASH_CHUNK_BYTES);
  return {
    threads: 1,
    hash: async (tasks) => hashBatch(tasks, buf),
    destroy: async () => {},
  };
}
