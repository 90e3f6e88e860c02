/**
 * The hash pool of `update`: `threads` hashing lanes, one per core by default (SHA-256 is
 * CPU-bound). The calling thread is one lane and piscina threads running hash.worker are the
 * others: the main thread of `update` idles while large files are hashed, and a worker costs
 * about 0.2 s of CPU to start (Node's own bootstrap in the thread) — more than hashing 256 MiB.
 *
 * Batches wait in one queue, and whichever lane is free takes the next: a worker as soon as it
 * has started (a first empty batch tells when), the calling thread whenever a batch waits that
 * no worker can take. So the calling thread hashes from the first batch on while the workers
 * start, and the lanes finish together. It hashes with `hashFileSliced`, giving its event loop a
 * turn every few MiB (worker replies, the commit timer and Ctrl-C are not held up by a large file).
 *
 * Under tsx the worker is the `.ts` file next to this one, from `dist/` the `.js` (NODE20.md: a
 * hard-coded `.js` is not found under tsx). `destroy()` must be called at the end, or the idle
 * threads keep the process alive.
 */
import { availableParallelism } from 'node:os';
import type { Piscina } from 'piscina';
import { HASH_CHUNK_BYTES, type HashResult, type HashTask, hashBatch, hashFileSliced } from './hash.js';

/** A pool of hash threads; not shared across threads (drive it from the main thread). */
export interface HashPool {
  readonly threads: number;
  /** Hash a batch in one lane; resolves with one result per task, in order. */
  hash(tasks: HashTask[]): Promise<HashResult[]>;
  /** Stop the threads (waits for them). Idempotent. */
  destroy(): Promise<void>;
}

/** Default hash lanes: one per core (SHA-256 is CPU-bound; NODE20.md measured 2 threads at 3.2 GB/s). */
export function defaultHashJobs(): number {
  return Math.max(1, availableParallelism());
}

interface Waiting {
  readonly tasks: HashTask[];
  readonly resolve: (r: HashResult[]) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * `threads` hash lanes: the calling thread and `threads - 1` workers (see the module comment).
 * piscina is loaded and its workers started at the first batch, not with the module: a run with
 * nothing to hash (a no-op update, a dry run) never pays for them.
 */
export function createHashPool(threads: number = defaultHashJobs()): HashPool {
  const workers = Math.max(0, threads - 1);
  const buf = Buffer.allocUnsafe(HASH_CHUNK_BYTES);
  const queue: Waiting[] = [];
  let pool: Promise<Piscina<HashTask[], HashResult[]>> | undefined;
  /** Workers that have started (their first, empty batch came back). */
  let ready = 0;
  let busyWorkers = 0;
  let mainBusy = false;
  let destroyed: Promise<void> | undefined;

  const start = (): void => {
    if (pool !== undefined || workers === 0) return;
    const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
    pool = import('piscina').then(
      ({ Piscina }) =>
        new Piscina<HashTask[], HashResult[]>({
          filename: new URL(`./hash.worker${ext}`, import.meta.url).href,
          minThreads: workers,
          maxThreads: workers,
          // One batch at a time per thread: the work is CPU- and read-bound.
          concurrentTasksPerWorker: 1,
          idleTimeout: 60_000,
        }),
    );
    for (let i = 0; i < workers; i++) {
      pool
        .then((p) => p.run([]))
        .then(
          () => {
            ready += 1;
            pump();
          },
          // A worker that cannot start leaves its share to the calling thread.
          () => {},
        );
    }
  };

  const toWorker = (job: Waiting, p: Promise<Piscina<HashTask[], HashResult[]>>): void => {
    busyWorkers += 1;
    p.then((pp) => pp.run(job.tasks))
      .then(job.resolve, job.reject)
      .finally(() => {
        busyWorkers -= 1;
        pump();
      });
  };

  const mainLane = async (): Promise<void> => {
    try {
      // A turn first: the caller goes on queueing (and a started worker may take this batch).
      await new Promise<void>((resolve) => setImmediate(resolve));
      for (let job = queue.shift(); job !== undefined; job = queue.shift()) {
        const out: HashResult[] = [];
        try {
          for (const t of job.tasks) out.push(await hashFileSliced(t, buf));
          job.resolve(out);
        } catch (err) {
          job.reject(err);
        }
        pump();
        // A turn between batches: worker replies and the caller's writes go on meanwhile.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      mainBusy = false;
    }
  };

  function pump(): void {
    while (queue.length > 0 && pool !== undefined && busyWorkers < ready) toWorker(queue.shift() as Waiting, pool);
    if (queue.length > 0 && !mainBusy && destroyed === undefined) {
      mainBusy = true;
      void mainLane();
    }
  }

  return {
    threads: Math.max(1, threads),
    hash: (tasks) =>
      new Promise<HashResult[]>((resolve, reject) => {
        start();
        queue.push({ tasks, resolve, reject });
        pump();
      }),
    destroy: () => {
      destroyed ??= (pool ?? Promise.resolve(undefined)).then(
        (p) => p?.destroy(),
        () => {},
      );
      return destroyed;
    },
  };
}

/**
 * A "pool" that hashes on the calling thread at once (same `hashBatch` as the workers): for
 * tests and tiny trees, where even slicing costs more than it gives.
 */
export function createInlineHashPool(): HashPool {
  const buf = Buffer.allocUnsafe(HASH_CHUNK_BYTES);
  return {
    threads: 1,
    hash: async (tasks) => hashBatch(tasks, buf),
    destroy: async () => {},
  };
}
