/**
 * The worker thread of `update`'s hash pool (hash-pool.ts): a thin adapter over `hashBatch`
 * (hash.ts), which holds the logic and is tested in-process. It says it has started with a
 * `null` message, then answers each batch of tasks with its results, in order, one batch at a
 * time. One read buffer (HASH_CHUNK_BYTES) per worker thread, reused for every file. A worker
 * never opens the catalogue.
 */
import { parentPort } from 'node:worker_threads';
import { HASH_CHUNK_BYTES, type HashResult, type HashTask, hashBatch } from './hash.js';

const buf = Buffer.allocUnsafe(HASH_CHUNK_BYTES);

/** Hash a batch of files; results in task order. */
export default function hashWorker(tasks: HashTask[]): HashResult[] {
  return hashBatch(tasks, buf);
}

const port = parentPort;
if (port !== null) {
  port.on('message', (tasks: HashTask[]) => port.postMessage(hashWorker(tasks)));
  port.postMessage(null);
}
