/**
 * The thread of the small-file lane of `restore` (small-files.ts): a thin adapter over
 * `SmallFileWriter`, which holds the logic and is tested in-process. Answers each message (a list
 * of tasks) with its results, in order; the objects of a message are read as soon as it arrives.
 */
import { workerData } from 'node:worker_threads';
import { serveBatches } from '../pipeline/batch-thread.js';
import { type SmallFileTask, SmallFileWriter } from './small-files.js';

const writer = new SmallFileWriter((workerData as { checkPlaced?: boolean } | null)?.checkPlaced === true);
serveBatches((tasks: SmallFileTask[]) => writer.write(tasks));
