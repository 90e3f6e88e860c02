/**
 * The hash pool of `update`: `threads` hashing lanes, one per core by default (SHA-256 is
 * CPU-bound). The calling thread is one lane and worker threads running hash.worker are the
 * others. A worker costs up to 0.2 s of CPU to start on a loaded machine (Node's own bootstrap
 * in the thread: 205–211 ms measured for a bare worker, 250–305 ms through piscina, which also
 * took 60–80 ms to load on the main thread; on an idle machine, 25 ms for a bare worker and
 * 36–38 ms for hash.worker.js from dist/), about what the calling thread needs to hash 256 MiB; so the
 * workers are plain `worker_threads` (one batch at a time each, nothing else of a pool is
 * needed), and they start only once there is more work than the calling thread would finish
 * while they boot (see `WORKER_WORTH_S`).
 *
 * Batches wait in one queue, and whichever lane is free takes the next: a worker as soon as it
 * has started (it says so with a first message), the calling thread whenever a batch waits
 * that no worker can take. So the calling thread hashes from the first batch on while the
 * workers start, and the lanes finish together. It hashes with `hashFileSliced`, giving its
 * event loop a turn every few MiB (worker replies, the commit timer and Ctrl-C are not held up
 * by a large file). A worker that dies fails its batch (each file reported, the run goes on)
 * and leaves its share to the other lanes.
 *
 * Under tsx the worker is the `.ts` file next to this one, from `dist/` the `.js` (NODE20.md: a
 * hard-coded `.js` is not found under tsx). `destroy()` must be called at the end, or the
 * threads keep the process alive.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
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

export interface HashPoolOptions {
  /**
   * When the worker threads start: `on-demand` (default) once the work waiting is worth their
   * start-up (see `WORKER_WORTH_S`); `at-once` with the first batch (tests of the workers).
   */
  readonly workers?: 'on-demand' | 'at-once';
  /** false: the calling thread never hashes, the workers do it all (tests of the workers). Default true. */
  readonly callerHashes?: boolean;
}

/**
 * Seconds of the calling thread's hashing (CPU time, spent or waiting in the queue) that justify
 * starting the workers: about what one takes to start (0.2 s of CPU, 0.4–0.5 s of wall time on a loaded machine). Below that, the
 * calling thread is done before a worker could help, and the worker's start-up only takes a
 * core from it (4 files of 64 MiB: the worker never got a batch, and cost 0.3 s of CPU).
 */
const WORKER_WORTH_S = 0.25;
/** The calling thread's hashing speed for that estimate: node:crypto with reads, ~1.5 GB/s. */
const MAIN_BYTES_PER_S = 1.5e9;
/** The calling thread's cost per file for that estimate (open, two fstats, reads, close): ~40 µs. */
const MAIN_FILE_S = 40e-6;

interface Waiting {
  readonly tasks: HashTask[];
  readonly resolve: (r: HashResult[]) => void;
  readonly reject: (err: unknown) => void;
}

/** One worker thread: started (its first message came), busy with one batch at most. */
interface Lane {
  readonly worker: Worker;
  ready: boolean;
  dead: boolean;
  job: Waiting | undefined;
}

/** Seconds of the calling thread's time that `tasks` would take (see MAIN_BYTES_PER_S). */
function estimateSeconds(tasks: readonly HashTask[]): number {
  let bytes = 0;
  for (const t of tasks) bytes += t.sizeBytes ?? 0;
  return bytes / MAIN_BYTES_PER_S + tasks.length * MAIN_FILE_S;
}

/**
 * `threads` hash lanes: the calling thread and `threads - 1` workers (see the module comment).
 * A run with little to hash (a no-op update, a dry run, a few files) never starts a worker.
 */
export function createHashPool(threads: number = defaultHashJobs(), opts: HashPoolOptions = {}): HashPool {
  const workers = Math.max(0, threads - 1);
  const buf = Buffer.allocUnsafe(HASH_CHUNK_BYTES);
  const queue: Waiting[] = [];
  const lanes: Lane[] = [];
  let started = false;
  let mainBusy = false;
  /** CPU seconds the calling thread has spent hashing so far (counted until the workers start). */
  let mainSeconds = 0;
  let destroyed: Promise<void> | undefined;

  const worthWorkers = (): boolean => {
    if (opts.workers === 'at-once') return true;
    if (mainSeconds >= WORKER_WORTH_S) return true;
    let waiting = 0;
    for (const job of queue) waiting += estimateSeconds(job.tasks);
    return waiting >= WORKER_WORTH_S;
  };

  const startWorkers = (): void => {
    started = true;
    const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
    const url = new URL(`./hash.worker${ext}`, import.meta.url);
    for (let i = 0; i < workers; i++) {
      let worker: Worker;
      try {
        worker = new Worker(url);
      } catch {
        // A thread that cannot start leaves its share to the others.
        continue;
      }
      const lane: Lane = { worker, ready: false, dead: false, job: undefined };
      worker.on('message', (msg: HashResult[] | null) => {
        if (msg === null) lane.ready = true;
        else {
          const job = lane.job;
          lane.job = undefined;
          job?.resolve(msg);
        }
        pump();
      });
      const fail = (err: unknown): void => {
        if (lane.dead) return;
        lane.dead = true;
        const job = lane.job;
        lane.job = undefined;
        job?.reject(err);
        pump();
      };
      worker.on('error', fail);
      worker.on('exit', (code) => fail(new Error(`hash worker stopped (exit code ${code})`)));
      lanes.push(lane);
    }
  };

  const mainLane = async (): Promise<void> => {
    try {
      // A turn first: the caller goes on queueing (and a started worker may take this batch).
      await new Promise<void>((resolve) => setImmediate(resolve));
      for (let job = queue.shift(); job !== undefined; job = queue.shift()) {
        const out: HashResult[] = [];
        // CPU time, not wall time: on a loaded machine the wall clock would count the turns
        // other processes took and start workers that only add to the load.
        // Measured only until the workers start: getrusage over a process with threads, called
        // for every batch, was 49 ms of a first update of 30,000 small files (`--cpu-prof`).
        const c0 = started ? undefined : process.cpuUsage();
        try {
          for (const t of job.tasks) {
            // Destroyed meanwhile (Ctrl-C): a large file is not read to its end for nothing.
            if (destroyed !== undefined) break;
            out.push(await hashFileSliced(t, buf, () => destroyed !== undefined));
          }
          if (destroyed !== undefined) job.reject(new Error('the hash pool was stopped'));
          else job.resolve(out);
        } catch (err) {
          job.reject(err);
        }
        if (c0 !== undefined && !started) {
          const c = process.cpuUsage(c0);
          mainSeconds += (c.user + c.system) / 1e6;
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
    if (destroyed !== undefined) return;
    if (!started && workers > 0 && queue.length > 0 && worthWorkers()) startWorkers();
    for (const lane of lanes) {
      if (queue.length === 0) break;
      if (!lane.ready || lane.dead || lane.job !== undefined) continue;
      const job = queue.shift() as Waiting;
      lane.job = job;
      lane.worker.postMessage(job.tasks);
    }
    const callerHashes = opts.callerHashes !== false || (started && lanes.every((l) => l.dead));
    if (queue.length > 0 && !mainBusy && callerHashes) {
      mainBusy = true;
      void mainLane();
    }
  }

  return {
    threads: Math.max(1, threads),
    hash: (tasks) =>
      new Promise<HashResult[]>((resolve, reject) => {
        queue.push({ tasks, resolve, reject });
        pump();
      }),
    destroy: () => {
      // Batches not started are given up with the pool.
      for (const job of queue.splice(0)) job.reject(new Error('the hash pool was stopped'));
      destroyed ??= Promise.all(
        lanes.map((lane) => {
          lane.dead = true;
          // Its batch never gets an answer now: given up, as the queued ones.
          lane.job?.reject(new Error('the hash pool was stopped'));
          lane.job = undefined;
          return lane.worker.terminate();
        }),
      ).then(
        () => undefined,
        () => undefined,
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
