/**
 * The thread of the small-file lane of `sync` (small-copy.ts): a thin adapter over
 * `copySmallBatch`, which holds the logic and is tested in-process. Answers each message (a list
 * of tasks) with its results, in order. One read buffer per thread, grown to the largest file.
 * Started with `readAhead`, it only reads the sources of each message into the page cache and
 * answers nothing: it runs ahead of the copy thread, which then seldom waits on a cold source;
 * while the sources are found cached already it reads one message in eight (ReadAheadPacer).
 */
import { serveBatches } from './batch-thread.js';
import { copySmallBatch, ReadAheadPacer, readAhead, type SmallCopyTask, smallCopyState } from './small-copy.js';

const state = smallCopyState();
const pacer = new ReadAheadPacer();
serveBatches(
  (tasks: SmallCopyTask[]) => copySmallBatch(tasks, state),
  (tasks: SmallCopyTask[]) => {
    if (!pacer.shouldRead()) return;
    const t0 = process.hrtime.bigint();
    let bytes = 0;
    for (const t of tasks) {
      readAhead(t, state);
      bytes += t.sizeBytes;
    }
    pacer.done(tasks.length, bytes, Number(process.hrtime.bigint() - t0));
  },
);
