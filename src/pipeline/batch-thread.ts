/**
 * A worker thread that answers lists of tasks, one message at a time and in order, optionally
 * with a second thread of the same module that gets the same messages first and only reads their
 * files into the page cache, so the answering thread seldom waits on a cold file. The small-file
 * lanes of `sync` (small-copy.ts, with the reading thread) and `restore` (restore/small-files.ts,
 * which reads ahead on its own thread) run on it: many files per message, each answered with its
 * own result, every durability step left to the main thread.
 *
 * The threads start through module-worker.ts (the `.ts` file under tsx, the `.js` from `dist/`).
 * The worker side is `serveBatches`.
 */
import * as fs from 'node:fs';
import { parentPort, type Worker, workerData } from 'node:worker_threads';
import { withShortPath } from './deep-path.js';
import { startModuleWorker } from './module-worker.js';

/** The worker module `name` beside `base` (an `import.meta.url`); `readAhead`: the reading thread. */
function startWorker(base: string, name: string, readAhead: boolean, data: Record<string, unknown>): Worker {
  return startModuleWorker(base, name, { ...data, readAhead });
}

/**
 * The thread (and its reading thread) of one lane: `run(msg)` posts one message and resolves
 * with its answer (answers come in order: one FIFO of resolvers). Started at the first `run`;
 * `close()` ends it. A thread that fails rejects what waits and every later `run`. Main thread
 * only. The lanes of sync and restore post lists of tasks and get one result per task
 * (`BatchThread<T[], R[]>`); verify's small-object threads post their own messages.
 */
export class BatchThread<M, A> {
  private worker: Worker | undefined;
  private reader: Worker | undefined;
  private readonly waiting: { resolve: (r: A) => void; reject: (err: Error) => void }[] = [];
  private failed: Error | undefined;

  /**
   * `base` and `name`: the worker module (see startWorker); `what`: the thread as error lines
   * name it (`small-file copy thread`); `readAhead`: start the reading thread too; `data`: more
   * `workerData` for the module.
   */
  constructor(
    private readonly base: string,
    private readonly name: string,
    private readonly what: string,
    private readonly readAhead: boolean,
    private readonly data: Record<string, unknown> = {},
  ) {}

  /** Messages posted and not answered yet. */
  get pending(): number {
    return this.waiting.length;
  }

  /** Start the thread now (it starts at the first `run` otherwise): it boots while the caller works. */
  start(): Worker {
    if (this.worker !== undefined) return this.worker;
    const w = startWorker(this.base, this.name, false, this.data);
    if (this.readAhead) {
      try {
        this.reader = startWorker(this.base, this.name, true, this.data);
        // Reading ahead is a speed-up only: a reader that fails is forgotten.
        this.reader.on('error', () => {});
      } catch {
        this.reader = undefined;
      }
    }
    w.on('message', (r: A) => this.waiting.shift()?.resolve(r));
    const die = (err: Error): void => {
      this.failed ??= err;
      for (const p of this.waiting.splice(0)) p.reject(err);
    };
    w.on('error', die);
    w.on('exit', (code) => die(new Error(`${this.what} exited (code ${code})`)));
    this.worker = w;
    return w;
  }

  run(msg: M): Promise<A> {
    if (this.failed !== undefined) return Promise.reject(this.failed);
    const w = this.start();
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.reader?.postMessage(msg);
      w.postMessage(msg);
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.failed ??= new Error(`${this.what} closed`);
    if (w !== undefined) {
      w.removeAllListeners('exit');
      await w.terminate();
    }
    const r = this.reader;
    this.reader = undefined;
    await r?.terminate();
    for (const p of this.waiting.splice(0)) p.reject(this.failed);
  }
}

/**
 * The worker side of a BatchThread: answers each message (a list of tasks) with `answer(tasks)`,
 * called as the message arrives; a promise of results is posted once it settles (the answers of
 * an asynchronous `answer` settle in the order of their messages). In the reading thread, calls
 * `readAhead(tasks)` instead and answers nothing. A failed answer ends the thread with its error.
 */
export function serveBatches<T, R>(answer: (tasks: T[]) => R[] | Promise<R[]>, readAhead?: (tasks: T[]) => void): void {
  const port = parentPort;
  if (port === null) return;
  const ahead = (workerData as { readAhead?: boolean } | null)?.readAhead === true;
  port.on('message', (tasks: T[]) => {
    if (ahead) readAhead?.(tasks);
    else {
      const r = answer(tasks);
      if (Array.isArray(r)) port.postMessage(r);
      else
        r.then(
          (done) => port.postMessage(done),
          (err: unknown) => {
            // Thrown out of the thread's event loop: the thread ends, and the main thread's run fails.
            setImmediate(() => {
              throw err;
            });
          },
        );
    }
  });
}

/** Paths cross the thread boundary as Uint8Array (structured clone); fs wants a Buffer. */
export function toBuffer(p: Uint8Array): Buffer {
  return Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
}

/** The flags files are opened with for reading: no link followed, no FIFO waited on. */
export const READ_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

/**
 * Open the source file `src` to copy it: not through a link (READ_FLAGS), except that a source
 * which is one (ELOOP) is opened through it: update records a link it follows (`--follow`) as
 * the file behind it, and the copy's hash check keeps anything but the catalogued bytes out.
 */
export function openSource(src: Buffer, open: (p: Buffer, flags: number) => number): number {
  try {
    return open(src, READ_FLAGS);
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ELOOP') throw err;
  }
  // Through the link only to a regular file (a device or FIFO there is never opened), and the
  // file opened must be the one looked at.
  const st = withShortPath(src, (short) => fs.statSync(short));
  if (!st.isFile()) throw Object.assign(new Error('a symbolic link to something else than a file'), { code: 'ELOOP' });
  const fd = open(src, READ_FLAGS & ~fs.constants.O_NOFOLLOW);
  const now = fs.fstatSync(fd);
  if (now.dev !== st.dev || now.ino !== st.ino) {
    fs.closeSync(fd);
    throw Object.assign(new Error('the file behind the symbolic link changed while it was opened'), { code: 'ELOOP' });
  }
  return fd;
}

/**
 * Read the first `sizeBytes` of `file` into the page cache through `state.buf` (grown when too
 * small); errors ignored: the answering thread meets them and reports them.
 */
export function warmFile(file: Uint8Array | string, sizeBytes: number, state: { buf: Buffer }): void {
  let fd: number;
  try {
    fd = fs.openSync(typeof file === 'string' ? file : toBuffer(file), READ_FLAGS);
  } catch {
    return;
  }
  try {
    if (state.buf.length < sizeBytes) state.buf = Buffer.allocUnsafe(sizeBytes);
    fs.readSync(fd, state.buf, 0, sizeBytes, 0);
  } catch {
    // the answering thread reads it again and reports what it finds
  } finally {
    fs.closeSync(fd);
  }
}
