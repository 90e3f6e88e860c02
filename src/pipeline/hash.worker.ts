/**
 * The piscina worker of `update`: a thin adapter over `hashBatch` (hash.ts), which holds the
 * logic and is tested in-process. One read buffer (HASH_CHUNK_BYTES) per worker thread, reused for every file.
 * A worker never opens the catalogue.
 */
import { HASH_CHUNK_BYTES, type HashResult, type HashTask, hashBatch } from './hash.js';

const buf = Buffer.allocUnsafe(HASH_CHUNK_BYTES);

/** Hash a batch of files; results in task order. */
export default function hashWorker(tasks: HashTask[]): HashResult[] {
  return hashBatch(tasks, buf);
}
