/**
 * The hash thread of the copy pipeline: a thin adapter over `HashStates` (copy-io.ts), which
 * holds the logic and is tested in-process. It hashes chunks that live in shared memory while
 * the main thread writes the same chunks to the disk, and answers every message in order.
 */
import { parentPort } from 'node:worker_threads';
import { HashStates, type HashThreadRequest } from './copy-io.js';

const states = new HashStates();
parentPort?.on('message', (m: HashThreadRequest) => {
  parentPort?.postMessage(states.handle(m));
});
