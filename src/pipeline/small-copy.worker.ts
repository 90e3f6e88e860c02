/**
 * The thread of the small-file lane of `sync` (small-copy.ts): a thin adapter over
 * `copySmallBatch`, which holds the logic and is tested in-process. Answers each message (a list
 * of tasks) with its results, in order. One read buffer per thread, grown to the largest file.
 * Started with `readAhead`, it only reads the sources of each message into the page cache and
 * answers nothing: it runs ahead of the copy thread, which then seldom waits on a cold source.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { copySmallBatch, readAhead, type SmallCopyTask, smallCopyState } from './small-copy.js';

const state = smallCopyState();
const port = parentPort;
const ahead = (workerData as { readAhead?: boolean } | null)?.readAhead === true;
if (port !== null) {
  port.on('message', (tasks: SmallCopyTask[]) => {
    if (ahead) for (const t of tasks) readAhead(t, state);
    else port.postMessage(copySmallBatch(tasks, state));
  });
}
