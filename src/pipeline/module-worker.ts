/**
 * Starting a worker thread from a module next to the caller: from `dist/` the `.js` file; under
 * tsx (tests, benchmarks) the `.ts` file, through tsx's API, since tsx's loader does not reach
 * worker threads (NODE20.md). Main thread only.
 */
import { Worker } from 'node:worker_threads';

/** The thread's start under tsx: register tsx's loader, then load the `.ts` worker. */
const TSX_BOOT = `const { workerData } = require('node:worker_threads');
(async () => {
  (await import(workerData.tsx)).register();
  await import(workerData.url);
})();`;

/**
 * A worker running `name` (without extension) next to `caller` (the caller's
 * `import.meta.url`), with `workerData` (its own fields, plus `tsx` and `url` under tsx).
 */
export function startModuleWorker(caller: string, name: string, workerData: Record<string, unknown>): Worker {
  const ts = caller.endsWith('.ts');
  const url = new URL(`./${name}${ts ? '.ts' : '.js'}`, caller);
  return ts
    ? new Worker(TSX_BOOT, {
        eval: true,
        workerData: { ...workerData, tsx: import.meta.resolve('tsx/esm/api'), url: url.href },
      })
    : new Worker(url, { workerData });
}
