/**
 * The thread of verify's small-object lane (small-check.ts): a thin adapter over
 * `checkSmallBatch`, which holds the logic and is tested in-process. Answers each batch with its
 * results, and each list of paths with their inode numbers, in order. One checker (one read buffer) per thread. A worker never opens the catalogue.
 */
import { parentPort, workerData } from 'node:worker_threads';
import {
  answer,
  type InodeRequest,
  type SmallCheckBatch,
  type SmallCheckWorkerData,
  smallChecker,
} from './small-check.js';

const data = workerData as SmallCheckWorkerData;
const checker = smallChecker(data.bufferBytes);
const stop = new Int32Array(data.stop);
const port = parentPort;
port?.on('message', (msg: SmallCheckBatch | InodeRequest) => port.postMessage(answer(msg, checker, stop)));
