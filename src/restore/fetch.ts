/**
 * Reading small objects whole on libuv's pool, ahead of the file that writes them, so the main
 * thread neither waits on the disk nor spends system calls of its own on them: one open
 * (O_NOFOLLOW, O_NONBLOCK: no link followed, no FIFO waited on) and one read of `size + 1`
 * bytes, so an object that grew is caught by the byte too many and one that shrank by the
 * bytes missing, without an fstat. A read that stops short of `size` bytes is read on (a short
 * read is not proof of a shorter file) until the file ends. The bytes are checked against the
 * object's name by the caller before anything is written. Every fetch settles (an error is a
 * value, never a rejection); at most `slots` run at once, started in call order, so the ones
 * the writer waits for first come first and the pool keeps room for kernel copies and
 * write-backs. Any one thread (the main thread's writer, or the small-file lane's).
 */
import * as fs from 'node:fs';
import { readAsync } from '../pipeline/copy-io.js';

/**
 * Reads of small objects in flight at once, ahead of their files (FileWriter, and the small-file
 * lane's thread). libuv's pool has 4 threads, shared with the kernel copies and write-backs; a few
 * more reads than threads keep its queue from running dry between two callbacks. 20,000 cold
 * small objects restored (load 2.8–3.7, two rounds each): 1 slot 6.8–7.7 s, 2 slots 4.8–6.7 s,
 * 4 slots 3.6–5.4 s, 8 slots 3.2–4.2 s, 16 slots 3.4–4.1 s, 32 slots 4.3–4.6 s. See
 * READ_AHEAD_FILES in restore.ts.
 */
export const FETCH_SLOTS = 8;

/** An object read whole: its bytes, or the error that kept it from being read. */
export type Fetched =
  | { readonly ok: true; readonly bytes: Buffer }
  /** `err`: what open or read threw (an errno error). */
  | { readonly ok: false; readonly err: NodeJS.ErrnoException };

/** The flags objects are opened with for reading (see the module comment). */
const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

function openAsync(file: Buffer | string): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.open(file, OPEN_FLAGS, (err, fd) => (err === null ? resolve(fd) : reject(err)));
  });
}

/**
 * Read `file`, expected to hold `sizeBytes` bytes: one open and one read of `sizeBytes + 1`
 * bytes (more reads only after a short one). `bytes` holds what was read: `sizeBytes` of them
 * when the size is right, one more when the file is bigger, fewer when it is smaller.
 */
export async function fetchObject(file: Buffer | string, sizeBytes: number): Promise<Fetched> {
  let fd: number;
  try {
    fd = await openAsync(file);
  } catch (err) {
    return { ok: false, err: err as NodeJS.ErrnoException };
  }
  try {
    const buf = Buffer.allocUnsafe(sizeBytes + 1);
    let got = 0;
    for (;;) {
      const n = await readAsync(fd, buf, got, buf.length - got, got);
      got += n;
      // Done: the end of the file, the byte too many, or exactly the size in one read (the
      // usual case; a regular file's read stops short only at its end).
      if (n === 0 || got === buf.length || (got === sizeBytes && n === got)) break;
    }
    return { ok: true, bytes: buf.subarray(0, got) };
  } catch (err) {
    return { ok: false, err: err as NodeJS.ErrnoException };
  } finally {
    // Closed on this thread: a descriptor opened for reading closes in a few µs, where another
    // trip through libuv's pool cost about 17 µs of this thread's time per file (20,000 small
    // objects: 335 ms in the async close). A failed close of a descriptor only read from loses
    // nothing, and must not turn into a rejection: a fetch never rejects (ObjectFetcher waits).
    try {
      fs.closeSync(fd);
    } catch {
      // the bytes read are checked against the object's name by the caller
    }
  }
}

/** Fetches objects with at most `slots` at once, in call order (see the module comment). */
export class ObjectFetcher {
  private running = 0;
  private readonly queue: (() => void)[] = [];

  constructor(private readonly slots: number) {}

  /** `fetchObject(file, sizeBytes)` once a slot is free. Never rejects. */
  fetch(file: Buffer | string, sizeBytes: number): Promise<Fetched> {
    return new Promise<Fetched>((resolve) => {
      const run = (): void => {
        this.running += 1;
        void fetchObject(file, sizeBytes).then((r) => {
          this.running -= 1;
          this.queue.shift()?.();
          resolve(r);
        });
      };
      if (this.running < this.slots) run();
      else this.queue.push(run);
    });
  }
}
