/**
 * The thread of the small-file lane of `sync` (small-copy.ts): a thin adapter over
 * `copySmallBatch`, which holds the logic and is tested in-process. Answers each message (a list
 * of tasks) with its results, in order. One read buffer per thread, grown to the largest file.
 * Started with `readAhead`, it only reads the sources of each message into the page cache and
 * answers nothing: it runs ahead of the copy thread, which then seldom waits on a cold source.
 */
import { serveBatches } from './batch-thread.js';
import { copySmallBatch, readAhead, type SmallCopyTask, smallCopyState } from './small-copy.js';

const state = smallCopyState();
serveBatches(
  (tasks: SmallCopyTask[]) => copySmallBatch(tasks, state),
  (tasks: SmallCopyTask[]) => {
    for (const t of tasks) readAhead(t, state);
  },
);
