/**
 * The piscina worker of `verify --profile ssd`: a thin adapter over ObjectChecker.checkAsync
 * (src/disk/check-object.ts), which holds the logic and is tested in-process. One checker (two
 * reused 1 MiB buffers) per worker thread. A worker never opens the catalogue.
 */
import { type CheckResult, ObjectChecker } from '../disk/check-object.js';
import type { CheckTask } from './check-pool.js';

const checker = new ObjectChecker();

/** Check one object file against its name. */
export default function checkWorker(task: CheckTask): Promise<CheckResult> {
  return checker.checkAsync(task.path, task.hash, task.sizeBytes);
}

/** Answers once the thread has started (check-pool.ts sends checks here only from then on). */
export function ready(): boolean {
  return true;
}
