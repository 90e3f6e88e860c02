/**
 * Reaching paths longer than PATH_MAX (4096 bytes on Linux, terminating NUL included), which
 * every path-taking system call refuses with ENAMETOOLONG although such files exist (made with
 * relative `cd`, `mkdir` and `mv`). Node has no `openat`/`fstatat`, so a long path is reached
 * through a folder's descriptor instead: the folder at the longest prefix that fits is opened,
 * then the rest is opened chunk by chunk as `/proc/self/fd/N/<chunk>`, each chunk shorter than
 * PATH_MAX; the kernel resolves `/proc/self/fd/N` to the open folder itself, never to a string
 * path. Descriptors belong to the process, so a worker thread can use a path built here.
 *
 * `process.chdir` into the folder was the other way: it is process-wide (a hash worker opening
 * a relative path would race with the main thread's walk) and not allowed in worker threads.
 *
 * Paths shorter than `DIRECT_MAX` are used as they are: no descriptor, no cost. Linux only
 * (procfs); where `/proc/self/fd` is missing the error is the kernel's ENAMETOOLONG, as before.
 * Every function is synchronous and thread-safe (descriptors are closed before returning).
 */
import * as fs from 'node:fs';

/** Longest path handed to the kernel as it is (PATH_MAX 4096 counts the NUL; a margin for the fd prefix). */
export const DIRECT_MAX = 4000;

/** Longest chunk opened below a folder descriptor (`/proc/self/fd/NNNNNNNNNN/` takes < 30 bytes). */
const CHUNK_MAX = 3900;

const SLASH = 0x2f;
const DIR_FLAGS = fs.constants.O_RDONLY | fs.constants.O_DIRECTORY;

/** The `/proc/self/fd/N/` prefix of folder descriptor `fd`: append a name (or chunk) to reach below it. */
export function fdPrefix(fd: number): Buffer {
  return Buffer.from(`/proc/self/fd/${fd}/`);
}

/**
 * Open the folder `dir` (absolute, bytes, any length) for use as a prefix; the caller closes
 * the descriptor. Throws the kernel's error of the first part that cannot be opened.
 */
export function openDirDeep(dir: Buffer): number {
  if (dir.length <= DIRECT_MAX) return fs.openSync(dir, DIR_FLAGS);
  // The longest prefix ending before a slash that fits, then chunks of whole names.
  let cut = dir.lastIndexOf(SLASH, DIRECT_MAX);
  if (cut <= 0) cut = dir.indexOf(SLASH, 1);
  let fd = fs.openSync(dir.subarray(0, cut), DIR_FLAGS);
  try {
    let at = cut + 1;
    while (at < dir.length) {
      let end = dir.length;
      if (end - at > CHUNK_MAX) {
        end = dir.lastIndexOf(SLASH, at + CHUNK_MAX);
        // A single name is at most 255 bytes, so a slash always falls within a chunk.
        if (end <= at) end = dir.length;
      }
      const next = fs.openSync(Buffer.concat([fdPrefix(fd), dir.subarray(at, end)]), DIR_FLAGS);
      fs.closeSync(fd);
      fd = next;
      at = end + 1;
    }
    return fd;
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

/** Bytes 0..i of `p` are its folder, then a slash, then its last name. */
function splitLast(p: Buffer): { dir: Buffer; name: Buffer } {
  const i = p.lastIndexOf(SLASH);
  return { dir: p.subarray(0, Math.max(i, 1)), name: p.subarray(i + 1) };
}

/**
 * Call `fn` with a path to `p` that the kernel accepts: `p` itself when short, else
 * `/proc/self/fd/N/<last name>` with N its folder, open only during the call. Throws what
 * opening the folder throws.
 */
export function withShortPath<T>(p: Buffer, fn: (short: Buffer) => T): T {
  if (p.length <= DIRECT_MAX) return fn(p);
  const { dir, name } = splitLast(p);
  const fd = openDirDeep(dir);
  try {
    return fn(Buffer.concat([fdPrefix(fd), name]));
  } finally {
    fs.closeSync(fd);
  }
}

/** `fs.openSync(p, flags)` for a path of any length (the descriptor outlives the folder's). */
export function openDeep(p: Buffer, flags: number): number {
  return withShortPath(p, (s) => fs.openSync(s, flags));
}

/**
 * A folder whose entries are reached by name: `prefix + name` is a path the kernel accepts.
 * For a short folder the prefix is the folder and a slash; for a long one, a descriptor's
 * `/proc/self/fd/N/`, held open until `close()`. Main thread or worker; close it once.
 */
export interface DirReach {
  /** True when reached through a descriptor (the folder's path is too long for the kernel). */
  readonly deep: boolean;
  /** The folder itself, as a path the kernel accepts (for readdir). */
  readonly self: Buffer;
  /** The path of the entry `name` of this folder, as one the kernel accepts. */
  entry(name: Buffer): Buffer;
  close(): void;
}

/** Reach folder `dir` (absolute, bytes, any length); throws what opening it throws. */
export function reachDir(dir: Buffer): DirReach {
  // Names are at most 255 bytes, so every entry of a folder this short stays short.
  if (dir.length + 1 + 255 <= DIRECT_MAX) {
    const prefix = dir.length === 1 && dir[0] === SLASH ? dir : Buffer.concat([dir, Buffer.from('/')]);
    return { deep: false, self: dir, entry: (name) => Buffer.concat([prefix, name]), close: () => {} };
  }
  const fd = openDirDeep(dir);
  const prefix = fdPrefix(fd);
  let open = true;
  return {
    deep: true,
    self: Buffer.from(`/proc/self/fd/${fd}`),
    entry: (name) => Buffer.concat([prefix, name]),
    close: () => {
      if (!open) return;
      open = false;
      fs.closeSync(fd);
    },
  };
}
