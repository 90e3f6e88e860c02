/**
 * The copy pipeline of `sync` (SPEC §4 step 5). Per lane, a reader visits the items in the
 * order given (the caller sorts them by device and inode so a spinning source reads
 * sequentially), hashes while reading, and hands chunks through a bounded queue (memory is
 * lanes × readAheadChunks × chunkBytes whatever the file sizes) to a writer that writes them
 * with positional writes into `.tmp/`. Complete files wait in a batch; a batch (N files or B
 * bytes) is fsynced, optionally read back, renamed into place, the prefix folders fsynced, the
 * disk's device checked, and only then recorded through `commit` (one transaction). An object
 * whose fsync failed is thrown away and written again from the source, never renamed; a source
 * whose bytes do not match the catalogued hash is skipped, never stored under that hash.
 * Runs on the main thread; the I/O runs on libuv's pool (small files synchronously: it is
 * cheaper than a thread-pool round trip, NODE20.md). Chunks of large files are hashed on a
 * separate thread while the main thread writes them (they live in shared memory: no copy).
 * Small files of syncfs batches are copied on a thread of their own, many per message
 * (small-copy.ts); the main thread keeps their durability, counting and kill points.
 * On an abort (Ctrl-C) the file being copied is dropped at once; what is complete is still
 * made durable and recorded.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { totalmem } from 'node:os';
import * as path from 'node:path';
import { writeFully } from '../core/durable.js';
import { DistbackupError, describeError, errnoCode, fileError } from '../core/errors.js';
import { killPoint } from '../core/kill-points.js';
import { displayPath } from '../core/vpath.js';
import { syncfsAllowed } from '../disk/fsinfo.js';
import { openSource } from './batch-thread.js';
import {
  BoundedQueue,
  CP_COPY_MIN,
  CpRunner,
  fsyncAsync,
  fsyncDirAsync,
  HashThread,
  openFilesLimit,
  type PrefetchedFile,
  ReadBackChecks,
  readAsync,
  readBackHashes,
  renameAsync,
  SmallFilePrefetch,
  SyncfsRunner,
  writeFullyAsync,
} from './copy-io.js';
import { openDeep } from './deep-path.js';
import { type SmallCopyResult, type SmallCopyTask, SmallCopyThread, startSmallCopyThread } from './small-copy.js';
import type { TokenBucket } from './throttle.js';

/** One object to copy. */
export interface CopyItem {
  /** Position of the item in the caller's list (for its bookkeeping; kept by a retry). */
  readonly index: number;
  /** The catalogue's object id (carried through to `commit`). */
  readonly objectId: number;
  readonly hash: string;
  readonly sizeBytes: number;
  /** Real paths of files with this content, tried in order until one matches the hash. */
  readonly sources: readonly Buffer[];
}

/** An object now durable under its final name. */
export interface CopiedObject {
  readonly objectId: number;
  readonly hash: string;
  readonly sizeBytes: number;
}

/** An object that could not be copied from any of its sources. */
export interface CopySkip {
  readonly item: CopyItem;
  /** The last source tried (null when there was none). */
  readonly path: Buffer | null;
  readonly error: string;
  /**
   * A source read at its catalogued size gave other bytes: unlike a size change, its stat may
   * not show it (a rewrite with its mtime put back, then a rename), so update must read it again.
   */
  readonly changed: boolean;
}

/** What the pipeline needs of the disk (see disk/disk-root.ts). */
export interface CopyTarget {
  readonly tmpDir: string;
  /** The checked prefix folder of `hash`, created when missing. */
  prefixDir(hash: string, create: boolean): string;
  /** The prefix folder of `hash`, and whether it is checked (or made) already in this run. */
  prefixDirState(hash: string): { dir: string; checked: boolean };
  /** The prefix folder of `hash` was made by the small-file thread: checked, fsynced by `syncNewDirs`. */
  madePrefixDir(hash: string): void;
  /** fsync the folders that gained a prefix folder through `prefixDir` since the last call. */
  syncNewDirs(): void;
  /** Throw when the disk is no longer the folder it was (unplugged, unmounted). */
  checkMounted(): void;
}

export interface CopyOptions {
  readonly target: CopyTarget;
  /** Reader/writer pairs: 1 for a spinning disk (sequential), more for SSDs. */
  readonly lanes: number;
  readonly chunkBytes: number;
  /** Chunks each reader may read ahead of its writer. */
  readonly readAheadChunks: number;
  /**
   * Files per fsync batch (each batch: fsync every file, then rename them into place). Each file
   * keeps its descriptor until its fsync, so the batch is also capped from RLIMIT_NOFILE.
   */
  readonly fsyncBatchFiles: number;
  readonly fsyncBatchBytes: number;
  /** Files and bytes per commit group (fsync the folders, check the disk, one transaction). */
  readonly commitFiles: number;
  readonly commitBytes: number;
  /**
   * The disk's filesystem makes a syncfs(2) durable for all it holds (an in-kernel filesystem,
   * disk/fsinfo.ts): batches of files under SYNCFS_MAX_BYTES are then made durable by one syncfs
   * before their renames and one after (covering the new names and prefix folders), instead of
   * an fsync per file and per folder. A commit group of one file (`--fsync-batch 1`) is always
   * fsynced on its own descriptor.
   */
  readonly batchSyncfs?: boolean | undefined;
  /**
   * Copy the small files of syncfs batches on a thread of their own (small-copy.ts), one at a
   * time in the order given (a spinning disk still sees one reader in inode order). Not with
   * `throttle`, nor without `batchSyncfs`: those keep the copy on the main thread. (`readback`
   * reads the thread's files back after the batch's syncfs, as it does the others.)
   * A thread the caller started earlier (`startSmallCopyThread`, so that it boots while the
   * disk is reconciled and the plan is made) is used as it is; either way this run closes it.
   */
  readonly smallFileThread?: boolean | SmallCopyThread | undefined;
  /** Re-read each object after its fsync and check its hash (`--verify readback`). */
  readonly readback: boolean;
  readonly throttle?: TokenBucket | undefined;
  /**
   * Called, synchronously, just before an item is started (evictions make room here); false:
   * the item is not copied in this call (the caller keeps it for later).
   */
  readonly beforeItem?: ((item: CopyItem) => boolean) | undefined;
  /** Record a durable batch in the catalogue (one transaction). */
  readonly commit: (batch: readonly CopiedObject[]) => void;
  readonly onSkip: (skip: CopySkip) => void;
  readonly onProgress?: ((bytesDone: number, filesDone: number) => void) | undefined;
  readonly onNote?: ((line: string) => void) | undefined;
  /** Stop taking new items (Ctrl-C); what is complete is still made durable and recorded. */
  readonly signal?: AbortSignal | undefined;
}

export interface CopyResult {
  copied: number;
  bytesCopied: number;
  skipped: number;
  /** Objects whose read-back went through the page cache (the filesystem refused O_DIRECT). */
  readbackCached: number;
  /** Objects copied by `cp` (see CP_COPY_MIN) whose check passed; the rest went through the loop. */
  copiedByCp: number;
}

/** Files at most this big are read and written with one synchronous call each. */
const SMALL_BYTES = 256 * 1024;

/**
 * Files at least this big are hashed on the hash thread; smaller ones on the main thread, where
 * a round trip per chunk would cost more than the hash.
 */
const HASH_THREAD_BYTES = 1024 * 1024;

/*
 * Files from CP_COPY_MIN (16 MiB) up are copied by another process (`CpRunner`: coreutils `cp`, one at
 * a time) into their `.tmp/` file, then checked by hashing that file read back from the page
 * cache the copy filled, while the next one is copied: no byte of the copy passes through this
 * process, and the check covers the bytes written rather than the bytes read. 1 GiB of 64 MiB
 * files, cold, into an empty folder of the same ext4: the buffered loop took 2.83-3.01 s with
 * 4 MiB chunks (hdd profile; 2.0-2.3 s of system time, most of it in pwrite), 2.62-2.97 s with
 * 1 MiB chunks and 2.33-2.38 s with 256 KiB ones; copies by `cp` 1.64-1.77 s (0.6-0.7 s of
 * system time), `cp -a && sync` 1.29-2.62 s in the same minutes. A `cp` costs the shell a fork
 * and an exec (a few ms): smaller files stay in the loop. Not under `--bwlimit` (the token bucket
 * counts the loop's chunks). Ctrl-C, or a disk error, kills the `cp` in flight.
 */
/**
 * Files larger than this go through the loop too (which hashes the source as it reads it): the
 * check of a copy by `cp` reads the file back, from the page cache while it holds it, and a
 * file too large for the page cache would be read back from the disk itself, a second pass (on a
 * hard disk, seeking between that read and the next copy's writes). An eighth of the memory:
 * 3 GiB here, 512 MiB on a machine of 4 GiB.
 */
const CP_COPY_MAX = Math.max(CP_COPY_MIN, Math.floor(totalmem() / 8));
/**
 * Copies by `cp` made or under way whose check has not ended, for the whole run: one being
 * checked while the next is copied, and one more ready. They share libuv's four threads with the
 * checks' reads, the fsyncs and the renames.
 */
const CP_SLOTS = 3;
/** While `cp` copies a file, the bytes it has written so far are read (fstat) this often for the progress display. */
const CP_PROGRESS_MS = 500;

/**
 * Files below this size go into syncfs batches where the disk allows (`batchSyncfs`); larger
 * ones are fsynced on their own descriptor (one large file's fsync costs what a syncfs does).
 */
const SYNCFS_MAX_BYTES = 16 * 1024 * 1024;

/**
 * Items taken from the list ahead of the copy, and small files read ahead of it at most (see
 * SmallFilePrefetch: each holds a descriptor and a buffer of SMALL_BYTES until written, so
 * memory is PREFETCH_FILES × 256 KiB; fewer under a low `ulimit -n`). libuv's pool runs 4 of
 * them at once.
 */
const AHEAD_ITEMS = 16;
const PREFETCH_FILES = 16;

/**
 * Files of the first batch; each next batch may hold twice as many, up to SYNCFS_BATCH_MAX_FILES
 * (and `commitFiles`). A batch is made durable (syncfs, renames, syncfs, commit) while the next
 * one is copied, so a small first batch starts that overlap early and leaves a short last one:
 * 3,000 small files made one batch whose durability nothing overlapped. Larger batches later
 * keep the count of syncfs calls low on long runs.
 */
const SYNCFS_BATCH_FIRST_FILES = 512;
const SYNCFS_BATCH_MAX_FILES = 4096;

/**
 * Files read back at once under `--verify readback` (each read is a device round trip): 16 on
 * an SSD (2,000 small objects, `readBackHashes` alone: 0.89–1.59 s one at a time, 0.30–0.57 s
 * 8 at once, 0.26–0.44 s 16 at once: libuv's 4 threads stay busy between each file's open,
 * reads and close); 2 on a hard disk, whose files of a batch lie in the order they are read.
 */
const READBACK_WIDTH = { ssd: 16, hdd: 2 } as const;

/**
 * Files per message to the small-file thread, and bytes at most: each message costs a wake-up
 * of both threads, so many files share one (3,000 small files: 33.7 k futex calls with a round
 * trip per step). A message goes at once while the thread is idle; two wait at most.
 */
const THREAD_MSG_FILES = 32;
const THREAD_MSG_BYTES = 2 * 1024 * 1024;

/** Renames of the small-file thread's files done on the main thread between two turns of its event loop. */
const RENAME_SLICE = 64;

/** Descriptors kept free for the rest of the process (SQLite, libuv, the hash thread, sources). */
const RESERVED_FDS = 48;

type Msg =
  | { readonly t: 'start'; readonly item: CopyItem; readonly src: Buffer }
  | { readonly t: 'data'; readonly buf: Buffer; readonly n: number; readonly pos: number; readonly release: () => void }
  | { readonly t: 'end' }
  | { readonly t: 'abort' }
  | {
      /** A copy by `cp` into `p.tmp` (open read-only as `p.fd`), its hash being read back (`check`). */
      readonly t: 'copied';
      readonly p: Pending;
      readonly check: Promise<string>;
      readonly release: () => void;
    };

interface Pending {
  readonly item: CopyItem;
  /** The source file being copied (named in a skip). */
  readonly src: Buffer;
  readonly tmp: string;
  fd: number;
  /** Closed once written: made durable by the batch's syncfs, not by an fsync of its own. */
  viaSyncfs: boolean;
  /** For a file closed for a syncfs: the run's count of failed syncfs calls when it was closed. */
  failuresAtClose?: number;
}

/** An item taken ahead from the list, with its first source being read ahead (small files). */
interface Ahead {
  readonly item: CopyItem;
  readonly pre: Promise<PrefetchedFile | undefined> | undefined;
  /** For the small-file thread (then not read ahead here). */
  readonly thread: boolean;
}

/** Close a prefetched file that will not be copied and give its buffer back. */
function dropPrefetch(pre: Promise<PrefetchedFile | undefined> | undefined): void {
  void pre?.then((f) => {
    if (f === undefined) return;
    f.release();
    fs.close(f.fd, () => {});
  });
}

/** An errno error of an operation on `file` named with that file (fd-based calls name none). */
function onFile(file: string, what: string, err: unknown): unknown {
  return /^E[A-Z0-9]+$/.test(errnoCode(err) ?? '') ? fileError(file, err, what) : err;
}

/** A chunk buffer over shared memory (the hash thread reads it without a copy). */
interface Chunk {
  readonly buf: Buffer;
  readonly mem: SharedArrayBuffer;
}

/**
 * A pool of at most `count` equal chunks, each allocated when first needed (shared memory is
 * zero-filled: 32 MiB up front cost a no-op re-sync 0.15 s); `get` waits while all are out.
 */
class BufferPool {
  private readonly free: Chunk[] = [];
  private made = 0;
  private waiter: (() => void) | undefined;
  constructor(
    private readonly count: number,
    private readonly size: number,
  ) {}
  async get(): Promise<Chunk> {
    for (;;) {
      if (this.free.length === 0 && this.made < this.count) {
        this.made += 1;
        const mem = new SharedArrayBuffer(this.size);
        return { buf: Buffer.from(mem), mem };
      }
      const b = this.free.pop();
      if (b !== undefined) return b;
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
  }
  put(b: Chunk): void {
    this.free.push(b);
    const w = this.waiter;
    if (w !== undefined) {
      this.waiter = undefined;
      w();
    }
  }
}

/**
 * Copy `items` onto the disk. Per-object source problems go to `onSkip`; a disk problem
 * (ENOSPC, EIO, the disk vanished) stops the run: what is complete is made durable and
 * committed first when the disk is still there, then the error is thrown.
 */
export async function copyObjects(items: Iterable<CopyItem>, opts: CopyOptions): Promise<CopyResult> {
  const result: CopyResult = { copied: 0, bytesCopied: 0, skipped: 0, readbackCached: 0, copiedByCp: 0 };
  let fatal: unknown;
  let bytesWritten = 0;
  let batch: Pending[] = [];
  let batchBytes = 0;
  /** Files of `batch` that hold their descriptor (until their fsync). */
  let batchFds = 0;
  let flushing: Promise<void> = Promise.resolve();
  const retries: CopyItem[] = [];
  const retried = new Set<number>();
  /** Objects whose copy by `cp` did not hash right: copied again through the buffered loop. */
  const noCp = new Set<number>();
  const copier = new CpRunner();
  const killCopy = (): void => copier.kill();
  opts.signal?.addEventListener('abort', killCopy, { once: true });
  let cpFree = CP_SLOTS;
  const cpWaiters: (() => void)[] = [];
  /** The checks of the copies by `cp`, one after the other. */
  const checks = new ReadBackChecks(HASH_THREAD_BYTES);
  const hasher = new HashThread();
  let hashIds = 0;
  /** syncfs calls of this run, through one shell started at the first one. */
  const syncer = new SyncfsRunner();
  if (opts.batchSyncfs === true) syncer.start();
  // (Started now for the same reason; a run under --bwlimit copies through the loop only.)
  if (opts.throttle === undefined) copier.start();
  /** tmp names: the object's hash, then this run's tag and a counter (unique, no RNG per file). */
  const runTag = randomBytes(4).toString('hex');
  let tmpSeq = 0;
  /** Set when a syncfs failed: the rest of the run fsyncs file by file (that finds the bad one). */
  let syncfsBroken = false;
  /**
   * syncfs calls of this run that failed. A syncfs reports a write-back error once for the whole
   * filesystem (Linux 5.8+): the call that failed may have reported the error of a file of the
   * next batch, closed already, whose own syncfs then succeeds. So a file closed before a failure
   * is thrown away and written again (an fsync through a new descriptor may not see its error).
   */
  let syncfsFailures = 0;
  // Two batches may hold descriptors at once (one flushing, one filling): keep both under the
  // process's limit, whatever `ulimit -n` the user runs with (issue: EMFILE under a low limit).
  const fdLimit = openFilesLimit();
  // Prefetched sources hold a descriptor each: an eighth of what is left at most.
  const prefetchFiles =
    fdLimit === undefined
      ? PREFETCH_FILES
      : Math.max(0, Math.min(PREFETCH_FILES, Math.floor((fdLimit - RESERVED_FDS) / 8)));
  const batchFdCap = Math.max(
    1,
    Math.min(
      opts.fsyncBatchFiles,
      fdLimit === undefined ? opts.fsyncBatchFiles : Math.floor((fdLimit - RESERVED_FDS - prefetchFiles) / 3),
    ),
  );
  const useSyncfs = (item: CopyItem): boolean =>
    opts.batchSyncfs === true && !syncfsBroken && opts.commitFiles > 1 && item.sizeBytes < SYNCFS_MAX_BYTES;
  const stopping = (): boolean => fatal !== undefined || opts.signal?.aborted === true;
  const given = opts.smallFileThread instanceof SmallCopyThread ? opts.smallFileThread : undefined;
  const thread =
    opts.smallFileThread !== false &&
    opts.smallFileThread !== undefined &&
    opts.batchSyncfs === true &&
    opts.throttle === undefined
      ? (given ?? startSmallCopyThread())
      : undefined;
  // A thread started for a run that cannot use it.
  if (thread === undefined) await given?.close();
  /** Files the small-file thread copies: those of syncfs batches hashed on the main thread so far. */
  const viaThread = (item: CopyItem): boolean =>
    thread !== undefined && useSyncfs(item) && item.sizeBytes < HASH_THREAD_BYTES && item.sources.length > 0;

  const fail = (err: unknown): void => {
    fatal ??= err;
    // The copy in flight is not waited for.
    copier.kill();
  };
  /**
   * Bytes written by the copies by `cp` not counted yet (under way, or being checked), one entry
   * per copy: progress shows them moving, as the loop's chunks do, instead of a frozen figure
   * while a file of a few GiB is copied. Dropped when the check ends (counted then if it passed).
   */
  const cpLive = new Set<{ bytes: number }>();
  /**
   * The bytes shown so far: progress never goes back, also when a copy by `cp` is dropped and
   * done again by the loop (its bytes are then shown once, and the figure waits for the redo).
   */
  let shownBytes = 0;
  const progress = (): void => {
    let live = 0;
    for (const c of cpLive) live += c.bytes;
    shownBytes = Math.max(shownBytes, bytesWritten + live);
    opts.onProgress?.(shownBytes, result.copied);
  };

  const discard = (p: Pending): void => {
    try {
      if (p.fd >= 0) fs.closeSync(p.fd);
    } catch {
      // already failing: the tmp file goes anyway
    }
    p.fd = -1;
    try {
      fs.rmSync(p.tmp, { force: true });
    } catch {
      // .tmp/ is emptied at the next sync
    }
  };

  const rewrite = (p: Pending, why: string, quiet = false): void => {
    discard(p);
    if (retried.has(p.item.objectId)) {
      fail(
        new DistbackupError(`${p.tmp}: ${why} twice for object ${p.item.hash}; the disk is failing`, {
          code: 'EIO',
          path: p.tmp,
        }),
      );
      return;
    }
    retried.add(p.item.objectId);
    retries.push(p.item);
    if (!quiet) opts.onNote?.(`${p.tmp}: ${why}; it will be written again from the source`);
  };

  /**
   * A syncfs of a batch failed: nothing of it is counted. The disk vanished → that error; full →
   * stop; otherwise every file of the batch is thrown away (`placed`: the names it was renamed
   * to, unlinked — never counted, so never a last copy) and written again from the source, and
   * the rest of the run fsyncs file by file, which tells the bad file from the good ones.
   */
  const syncfsFailed = (list: readonly Pending[], err: unknown, placed: boolean): void => {
    syncfsFailures += 1;
    syncfsBroken = true;
    opts.target.checkMounted();
    const code = errnoCode(err);
    for (const p of list) {
      if (placed) {
        try {
          fs.rmSync(path.join(opts.target.prefixDir(p.item.hash, false), p.item.hash), { force: true });
        } catch (rmErr) {
          fail(rmErr);
        }
      }
      if (code === 'ENOSPC' || code === 'EDQUOT') discard(p);
      else rewrite(p, `syncfs failed (${describeError(err)})`, true);
    }
    if (code === 'ENOSPC' || code === 'EDQUOT') fail(err);
    else if (fatal === undefined)
      opts.onNote?.(
        `${describeError(err)}: the ${list.length} objects of that batch are not counted and will be written again, each fsynced on its own`,
      );
    killPoint('after-syncfs-failed');
  };

  /** Objects fsynced and renamed into place, waiting for their folders' fsync and the commit. */
  let renamed: Pending[] = [];
  const renamedDirs = new Set<string>();

  /** The fsyncs of `part`, in order: a file fsynced joins `ok`; full stops the run; else it is written again. */
  const settleFsyncs = (part: readonly Pending[], res: PromiseSettledResult<void>[], ok: Pending[]): void => {
    res.forEach((r, j) => {
      const p = part[j];
      if (p === undefined) return;
      if (r.status === 'fulfilled') ok.push(p);
      else if (errnoCode(r.reason) === 'ENOSPC' || errnoCode(r.reason) === 'EDQUOT') {
        discard(p);
        fail(onFile(p.tmp, 'fsync', r.reason));
      } else rewrite(p, `fsync failed (${describeError(r.reason)})`);
    });
  };

  /**
   * Stage 1 of durability, per fsync batch: fsync every file (in parallel: the filesystem groups
   * them in one journal commit), close it (an fsync error is seen on the fd that wrote), read it
   * back when asked, rename it into place. A file whose fsync failed is thrown away, never renamed.
   * No syncfs hint here: a whole-filesystem write-back per batch measured slower than the
   * parallel fsyncs alone (3000 small files: 6.0–6.6 s of syncfs against 4.0–5.7 s of fsyncs).
   */
  const fsyncAndRename = async (b: Pending[]): Promise<void> => {
    const ok: Pending[] = [];
    const width = 16;
    const held = b.filter((p) => !p.viaSyncfs);
    const shared = b.filter((p) => p.viaSyncfs);
    for (let i = 0; i < held.length; i += width) {
      const part = held.slice(i, i + width);
      if (opts.signal?.aborted === true) {
        // Ctrl-C: files not fsynced yet are not durable: drop them rather than wait for their
        // write-back (the next sync copies them again). Those fsynced already are kept.
        for (const p of part) discard(p);
        continue;
      }
      settleFsyncs(part, await Promise.allSettled(part.map((p) => fsyncAsync(p.fd))), ok);
    }
    for (const p of ok) {
      fs.closeSync(p.fd);
      p.fd = -1;
    }
    if (shared.length > 0) {
      // Every file of the batch is written and closed: one syncfs makes them all durable and
      // reports a write-back error of any of them (Linux 5.8+). Not begun after Ctrl-C.
      if (opts.signal?.aborted === true) for (const p of shared) discard(p);
      else {
        // A file closed before a syncfs failed: its error may have been reported there already.
        const suspect = shared.filter((p) => p.failuresAtClose !== syncfsFailures);
        let fine = shared.filter((p) => p.failuresAtClose === syncfsFailures);
        if (fine.length > 0) {
          const before = syncfsFailures;
          try {
            await syncer.run(opts.target.tmpDir);
            if (syncfsFailures !== before) {
              suspect.push(...fine);
              fine = [];
            }
            ok.push(...fine);
          } catch (err) {
            syncfsFailed(fine, err, false);
          }
        }
        // Thrown away and written again, each fsynced on its own: an fsync through a new
        // descriptor reports the file's write-back error only while its inode stays in memory,
        // and a file closed with clean pages after a failed write-back may be evicted, error
        // and all, and then pass (RELIABILITY.md, fsyncgate).
        for (const p of suspect) rewrite(p, 'closed before a syncfs failed, so its write-back is unproven', true);
        if (suspect.length > 0 && fatal === undefined) {
          opts.onNote?.(
            `${suspect.length} objects closed before a syncfs failed are not counted and will be written again, each fsynced on its own`,
          );
        }
      }
    }
    killPoint('after-fsync');
    // The whole batch is read back first, several files at once (READBACK_WIDTH), then renamed in order.
    const checks = opts.readback
      ? await readBackHashes(
          ok.map((p) => p.tmp),
          opts.lanes > 1 ? READBACK_WIDTH.ssd : READBACK_WIDTH.hdd,
        )
      : undefined;
    let renamesInSlice = 0;
    for (const [k, p] of ok.entries()) {
      const got = checks?.[k];
      if (got !== undefined) {
        if (!got.ok) {
          rewrite(p, `read-back failed (${describeError(got.error)})`);
          continue;
        }
        if (!got.direct) result.readbackCached += 1;
        if (got.hash !== p.item.hash) {
          rewrite(p, `read-back gave ${got.hash}, not ${p.item.hash}`);
          continue;
        }
      }
      try {
        const dir = opts.target.prefixDir(p.item.hash, true);
        const to = path.join(dir, p.item.hash);
        // On libuv's pool: the main thread goes on copying the next batch meanwhile (a rename
        // into one of 4096 folders waits on the filesystem's rename lock: 0.35 ms each on a busy
        // disk). One at a time, in order, as before. Files of the small-file thread are renamed
        // here instead (the thread goes on copying): a pool round trip per rename cost more
        // than the rename (3,000 files: the last batch's 1,464 renames took 140 ms); the loop
        // yields every RENAME_SLICE files so the thread's results are taken in between.
        if (p.viaSyncfs && thread !== undefined) {
          fs.renameSync(p.tmp, to);
          if (++renamesInSlice >= RENAME_SLICE) {
            renamesInSlice = 0;
            await new Promise<void>((resolve) => setImmediate(resolve));
          }
        } else await renameAsync(p.tmp, to);
        renamedDirs.add(dir);
        renamed.push(p);
      } catch (err) {
        discard(p);
        throw onFile(p.tmp, 'rename', err);
      }
      killPoint('after-rename');
    }
  };

  /**
   * Stage 2, per commit group: fsync the prefix folders of everything renamed (once per folder
   * per group: with 4096 folders, per-batch folder fsyncs would cost one per file), check that
   * the disk is still the same, then count the group in one transaction. Prefix folders created
   * during the group are made durable here too (their parent fsynced once per group).
   */
  const commitRenamed = async (): Promise<void> => {
    if (renamed.length === 0) return;
    const group = renamed;
    const dirs = [...renamedDirs];
    renamed = [];
    renamedDirs.clear();
    const width = 16;
    if (group.some((p) => p.viaSyncfs)) {
      // A second syncfs makes the renames durable: every prefix folder (and a new one's parent)
      // at once. When it fails, nothing of the group is counted.
      try {
        // (On the objects folder itself: the same filesystem; a fault test tells the two apart.)
        await syncer.run(path.dirname(opts.target.tmpDir));
      } catch (err) {
        syncfsFailed(group, err, true);
        return;
      }
    } else {
      // (Not after Ctrl-C: a whole-filesystem write-back may take seconds on a busy disk.)
      // A speed hint only: every folder is still fsynced on its own below. Its failure is not
      // this group's (their files are fsynced), but may be that of a file closed for the next
      // syncfs batch, which that batch must then fsync by name.
      if (dirs.length > 1 && opts.signal?.aborted !== true && syncfsAllowed()) {
        await syncer.run(opts.target.tmpDir).catch(() => {
          syncfsFailures += 1;
          syncfsBroken = true;
        });
      }
      for (let i = 0; i < dirs.length; i += width) {
        await Promise.all(dirs.slice(i, i + width).map((d) => fsyncDirAsync(d)));
      }
    }
    opts.target.syncNewDirs();
    killPoint('after-dirsync');
    opts.target.checkMounted();
    opts.commit(group.map((p) => ({ objectId: p.item.objectId, hash: p.item.hash, sizeBytes: p.item.sizeBytes })));
    killPoint('after-batch-commit');
    for (const p of group) {
      result.copied += 1;
      result.bytesCopied += p.item.sizeBytes;
    }
    progress();
  };

  let inFlight = 0;
  /** Files of the next batch (it doubles at each batch, see SYNCFS_BATCH_FIRST_FILES). */
  let syncfsBatchFiles = SYNCFS_BATCH_FIRST_FILES;
  let groupFiles = 0;
  let groupBytes = 0;
  /** fsync and rename the current batch; commit when the group is full (or `final`). */
  const flushBatch = async (b: Pending[], final: boolean): Promise<void> => {
    await fsyncAndRename(b);
    groupFiles += b.length;
    for (const p of b) groupBytes += p.item.sizeBytes;
    // A syncfs batch is committed at once: its second syncfs covers every folder of the group.
    const viaSyncfs = b.some((p) => p.viaSyncfs);
    if (final || viaSyncfs || groupFiles >= opts.commitFiles || groupBytes >= opts.commitBytes) {
      groupFiles = 0;
      groupBytes = 0;
      await commitRenamed();
    }
  };

  /** A written tmp file joins the batch; a full batch goes to the flusher. */
  const addToBatch = async (p: Pending): Promise<void> => {
    batch.push(p);
    batchBytes += p.item.sizeBytes;
    if (!p.viaSyncfs) batchFds += 1;
    if (
      batchFds >= batchFdCap ||
      batch.length >= Math.min(opts.commitFiles, syncfsBatchFiles) ||
      batchBytes >= opts.fsyncBatchBytes
    ) {
      syncfsBatchFiles = Math.min(SYNCFS_BATCH_MAX_FILES, syncfsBatchFiles * 2);
      // The batch becomes durable in the background while the next one is written: at
      // most one batch waits behind the one being flushed (bounded descriptors, memory).
      if (inFlight >= 1) await flushing;
      inFlight += 1;
      void flush().finally(() => {
        inFlight -= 1;
      });
    }
  };

  /** Hand the current batch to the (serialised) flusher; resolves when it is done. */
  const flush = (final = false): Promise<void> => {
    const b = batch;
    batch = [];
    batchBytes = 0;
    batchFds = 0;
    flushing = flushing.then(async () => {
      if (fatal !== undefined) {
        // A disk error happened: try to keep what is complete, but never hide the first error.
        try {
          await flushBatch(b, true);
        } catch {
          for (const p of b) if (p.fd >= 0) discard(p);
        }
        return;
      }
      try {
        await flushBatch(b, final);
      } catch (err) {
        for (const p of b) if (p.fd >= 0) discard(p);
        fail(err);
      }
    });
    return flushing;
  };

  /** Files waiting to be posted to the small-file thread as one message. */
  let msg: { readonly item: CopyItem; readonly task: SmallCopyTask }[] = [];
  let msgBytes = 0;
  /** Messages posted whose results are not handled yet. */
  let posted = 0;
  /** The handling of the thread's results, message after message. */
  let handled: Promise<void> = Promise.resolve();
  const postWaiters: (() => void)[] = [];
  /** Files sent again after the thread ran out of descriptors (once each). */
  const fdRetried = new Set<number>();

  const post = (): void => {
    const m = msg;
    msg = [];
    msgBytes = 0;
    if (m.length === 0 || thread === undefined) return;
    posted += 1;
    // The thread closes these files after this: a syncfs failing from now on may report them.
    const closedAt = syncfsFailures;
    const reply = thread.run(m.map((x) => x.task));
    handled = handled
      .then(() => reply)
      .then(
        (r) => onThreadResults(m, r, closedAt),
        (err: unknown) => fail(err),
      )
      .catch((err: unknown) => fail(err))
      .then(() => {
        posted -= 1;
        // Every waiting lane looks again (one woken per reply could leave one waiting forever).
        const woken = postWaiters.splice(0);
        for (const w of woken) w();
        if (woken.length === 0 && posted === 0 && !stopping()) post();
      });
  };

  /** Queue `item` for the small-file thread; false when the run must stop. */
  const toThread = async (item: CopyItem): Promise<boolean> => {
    const tmp = newTmp(item);
    const d = opts.target.prefixDirState(item.hash);
    // Own copies of the paths: a pooled Buffer would carry its whole 8 KiB pool across.
    const sources = item.sources.map((s) => new Uint8Array(s));
    msg.push({
      item,
      task: { hash: item.hash, sizeBytes: item.sizeBytes, sources, tmp, dir: d.checked ? null : d.dir },
    });
    msgBytes += item.sizeBytes;
    if (posted === 0 || msg.length >= THREAD_MSG_FILES || msgBytes >= THREAD_MSG_BYTES) {
      while (posted >= 2 && !stopping()) await new Promise<void>((resolve) => postWaiters.push(resolve));
      if (!stopping()) post();
    }
    return !stopping();
  };

  /** Post what waits and handle every result (at the end of the items, or when stopping). */
  const drainThread = async (): Promise<void> => {
    for (;;) {
      if (stopping()) msg = [];
      else post();
      await handled;
      if (posted === 0 && msg.length === 0) return;
    }
  };

  /**
   * The results of one message: a written file joins the batch as one closed after its write
   * (the batch's syncfs makes it durable); a skip is reported as readItem does; a disk error
   * stops the run as the writer's would (its message ends there: the files after it were not
   * started). Out of descriptors at the create: what is pending is made durable (closing its
   * descriptors) and the rest of the message is sent once more.
   */
  const onThreadResults = async (
    m: readonly { readonly item: CopyItem; readonly task: SmallCopyTask }[],
    results: readonly SmallCopyResult[],
    closedAt: number,
  ): Promise<void> => {
    for (const [i, r] of results.entries()) {
      const entry = m[i];
      if (entry === undefined) break;
      const { item, task } = entry;
      if (r.dir === 'made') opts.target.madePrefixDir(item.hash);
      else if (r.dir === 'exists') {
        try {
          // Not made by this run: checked here (a symlink or a file there is refused).
          opts.target.prefixDir(item.hash, true);
        } catch (err) {
          if (r.ok !== undefined) fs.rmSync(task.tmp, { force: true });
          fail(err);
          continue;
        }
      }
      if (r.disk !== undefined) {
        const err = Object.assign(new Error(r.disk.message), r.disk.code === undefined ? {} : { code: r.disk.code });
        const code = r.disk.code;
        if (r.disk.what === 'create' && (code === 'EMFILE' || code === 'ENFILE') && !fdRetried.has(item.objectId)) {
          fdRetried.add(item.objectId);
          if (batch.length > 0) void flush();
          await flushing;
          if (stopping()) return;
          msg.unshift(...m.slice(i));
          for (const x of m.slice(i)) msgBytes += x.item.sizeBytes;
          post();
          return;
        }
        fail(onFile(r.disk.file, r.disk.what, err));
        return;
      }
      if (r.skip !== undefined) {
        result.skipped += 1;
        opts.onSkip({
          item,
          path: item.sources[r.skip.src] ?? null,
          error: r.skip.error,
          changed: r.skip.changed === true,
        });
        continue;
      }
      const src = item.sources[r.ok ?? -1];
      if (src === undefined) continue;
      const p: Pending = { item, src, tmp: task.tmp, fd: -1, viaSyncfs: true, failuresAtClose: closedAt };
      if (fatal !== undefined) {
        discard(p);
        continue;
      }
      bytesWritten += item.sizeBytes;
      killPoint('after-tmp-write');
      await addToBatch(p);
    }
    progress();
  };

  /** A new `.tmp/` name for `item`: its hash, then this run's tag and a counter. */
  const newTmp = (item: CopyItem): string =>
    path.join(opts.target.tmpDir, `${item.hash}.${runTag}${(tmpSeq++).toString(16)}`);

  /** Whether `item`, whose source is `size` bytes now, is copied by `cp` (see CP_COPY_MIN). */
  const viaCp = (item: CopyItem, size: number): boolean => {
    if (!copier.usable || opts.throttle !== undefined || noCp.has(item.objectId)) return false;
    // A source that grew since the update is copied by the loop, which stops at the catalogued size.
    return item.sizeBytes >= CP_COPY_MIN && item.sizeBytes <= CP_COPY_MAX && size === item.sizeBytes;
  };

  const takeCpSlot = async (): Promise<void> => {
    while (cpFree === 0) await new Promise<void>((resolve) => cpWaiters.push(resolve));
    cpFree -= 1;
  };
  const giveCpSlot = (): void => {
    cpFree += 1;
    cpWaiters.shift()?.();
  };

  /**
   * The reader's side of a copy by `cp` of `item` from its source open as `srcFd` (checked: a
   * regular file of the catalogued size): a new `.tmp/` file is made (0600) and kept open, so
   * that its fsync reports any write-back error of the copy (errseq samples at open); `cp` copies
   * into it (`CpRunner`, descriptor to descriptor); it becomes 0444 and, once its size is
   * checked, goes to the writer with its check (its hash read back) under way, while the reader
   * goes on with the next item. A full or read-only disk stops the run, a file too large for the
   * disk's filesystem is skipped, as in the loop; `fallback`: copy this source through the loop
   * instead, which tells the other errors of the source from those of the disk; true/false as
   * readItem's.
   */
  const copyByCp = async (
    item: CopyItem,
    src: Buffer,
    srcFd: number,
    q: BoundedQueue<Msg>,
  ): Promise<boolean | 'fallback'> => {
    await takeCpSlot();
    const tmp = newTmp(item);
    // Made durable by an fsync of this descriptor, never left to a syncfs batch.
    const p: Pending = { item, src, tmp, fd: -1, viaSyncfs: false };
    const live = { bytes: 0 };
    cpLive.add(live);
    const release = (): void => {
      cpLive.delete(live);
      giveCpSlot();
    };
    let handed = false;
    try {
      if (stopping()) return false;
      try {
        p.fd = fs.openSync(tmp, fs.constants.O_RDONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
      } catch (err) {
        const code = errnoCode(err);
        // Out of descriptors: the loop's create makes what is pending durable and tries again.
        if (code === 'EMFILE' || code === 'ENFILE') return 'fallback';
        fail(onFile(tmp, 'create', err));
        return false;
      }
      const poll = setInterval(() => {
        try {
          live.bytes = fs.fstatSync(p.fd).size;
        } catch {
          // (an error of the disk is the copy's to report)
        }
        progress();
      }, CP_PROGRESS_MS);
      try {
        await copier.copy(srcFd, p.fd);
      } catch (err) {
        if (stopping()) return false;
        const code = errnoCode(err);
        if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EROFS') {
          fail(onFile(tmp, 'write', err));
          return false;
        }
        if (code === 'EFBIG') {
          result.skipped += 1;
          opts.onSkip({
            item,
            path: src,
            error: `too large for this disk's filesystem: ${describeError(err)}`,
            changed: false,
          });
          return true;
        }
        // Anything else: this source through the loop (after no `cp`, or failures again and
        // again, every source: CpRunner.usable).
        noCp.add(item.objectId);
        return 'fallback';
      } finally {
        clearInterval(poll);
      }
      if (stopping()) return false;
      // 0444, as every object, and the size written (an error here is the disk's).
      let written: number;
      try {
        fs.fchmodSync(p.fd, 0o444);
        written = fs.fstatSync(p.fd).size;
      } catch (err) {
        fail(onFile(tmp, 'chmod', err));
        return false;
      }
      // A source that grew or shrank during the copy (not a failure of cp): the loop reads the
      // catalogued size.
      if (written !== item.sizeBytes) {
        noCp.add(item.objectId);
        return 'fallback';
      }
      const check = checks.check(p.fd, stopping);
      handed = true;
      // (The reader alone closes the queue, after its last push: this push is taken.)
      live.bytes = written;
      return await q.push({ t: 'copied', p, check, release });
    } finally {
      if (!handed) {
        release();
        if (p.fd >= 0) discard(p);
      }
    }
  };

  /**
   * The writer's side of a copy by `cp`: once its check has ended, a file that hashed right joins
   * the batch as a written one does; a file that did not is thrown away and its object copied
   * again, through the loop, once the items are done (the source changed during the copy, or
   * another source has the content); a read error of the file just written is the disk's.
   */
  const onCopied = async (m: Extract<Msg, { t: 'copied' }>): Promise<void> => {
    const { p } = m;
    let got: string | undefined;
    let readErr: unknown;
    try {
      got = await m.check;
    } catch (err) {
      readErr = err;
    } finally {
      m.release();
    }
    if (fatal !== undefined || opts.signal?.aborted === true) {
      discard(p);
      return;
    }
    if (readErr !== undefined) {
      rewrite(p, `read-back failed (${describeError(readErr)})`);
      return;
    }
    if (got !== p.item.hash) {
      discard(p);
      noCp.add(p.item.objectId);
      retries.push(p.item);
      return;
    }
    try {
      opts.target.prefixDir(p.item.hash, true);
    } catch (err) {
      discard(p);
      fail(err);
      return;
    }
    bytesWritten += p.item.sizeBytes;
    result.copiedByCp += 1;
    progress();
    killPoint('after-tmp-write');
    await addToBatch(p);
  };

  const runItems = async (list: Iterable<CopyItem>): Promise<void> => {
    const it = list[Symbol.iterator]();
    // The next small files are opened and read on libuv's pool while the main thread copies the
    // current one: a cold small file otherwise blocks it on the disk's latency (30,000 small
    // files: 8.2 s of 19 s in synchronous reads behind a page-cache warmer).
    const ahead: Ahead[] = [];
    const prefetch = new SmallFilePrefetch(prefetchFiles, SMALL_BYTES);
    let done = false;
    const next = (): Ahead | undefined => {
      for (;;) {
        const a = pull();
        if (a === undefined) return undefined;
        let go: boolean;
        try {
          go = opts.beforeItem?.(a.item) ?? true;
        } catch (err) {
          dropPrefetch(a.pre);
          fail(err);
          return undefined;
        }
        if (go) return a;
        dropPrefetch(a.pre);
      }
    };
    const pull = (): Ahead | undefined => {
      if (fatal !== undefined || opts.signal?.aborted === true) return undefined;
      while (!done && ahead.length <= AHEAD_ITEMS) {
        const r = it.next();
        if (r.done === true) done = true;
        else {
          const src = r.value.sources[0];
          const onThread = viaThread(r.value);
          const small = src !== undefined && r.value.sizeBytes > 0 && r.value.sizeBytes <= SMALL_BYTES && !onThread;
          ahead.push({
            item: r.value,
            pre: small ? prefetch.fetch(src, r.value.sizeBytes) : undefined,
            thread: onThread,
          });
        }
      }
      return ahead.shift();
    };
    const lanes: Promise<void>[] = [];
    for (let i = 0; i < Math.max(1, opts.lanes); i++) lanes.push(runLane(next));
    try {
      await Promise.all(lanes);
      await drainThread();
    } finally {
      // Stopped early: what was fetched ahead and not copied is closed, and the source of the
      // items is ended (its own clean-up, such as a TEMP table, runs now).
      for (const a of ahead.splice(0)) dropPrefetch(a.pre);
      if (!done) {
        try {
          it.return?.();
        } catch {
          // its clean-up failed: the error that stopped the copy is the one to report
        }
      }
    }
  };

  const runLane = async (next: () => Ahead | undefined): Promise<void> => {
    const q = new BoundedQueue<Msg>(opts.readAheadChunks + 2);
    const pool = new BufferPool(opts.readAheadChunks, opts.chunkBytes);
    const reader = async (): Promise<void> => {
      try {
        for (let a = next(); a !== undefined; a = next()) {
          // (A syncfs that failed since it was taken sends it the main thread's way.)
          if (a.thread && viaThread(a.item)) {
            if (!(await toThread(a.item))) break;
            continue;
          }
          if (!(await readItem(a.item, a.pre === undefined ? undefined : await a.pre, q, pool))) break;
        }
      } finally {
        q.close();
      }
    };
    const writer = async (): Promise<void> => {
      let cur: Pending | undefined;
      let broken = false;
      for (let m = await q.pop(); m !== undefined; m = await q.pop()) {
        if (m.t === 'data') {
          try {
            if (cur !== undefined && !broken && opts.signal?.aborted === true) {
              // Ctrl-C: the file being written is dropped, not finished.
              broken = true;
              discard(cur);
            }
            if (cur !== undefined && !broken && fatal === undefined) {
              const data = m.buf.subarray(0, m.n);
              // A small file in one synchronous write; a larger one's chunks on the pool, even
              // its first (the main thread must not wait on a slow disk's write-back there).
              if (cur.item.sizeBytes <= SMALL_BYTES) writeFully(cur.fd, data, m.pos);
              else await writeFullyAsync(cur.fd, data, m.pos);
              bytesWritten += m.n;
              await opts.throttle?.take(m.n, opts.signal);
              progress();
            }
          } catch (err) {
            broken = true;
            if (cur !== undefined) discard(cur);
            const code = errnoCode(err);
            if (code === 'EFBIG' && cur !== undefined) {
              result.skipped += 1;
              opts.onSkip({
                item: cur.item,
                path: cur.src,
                error: `too large for this disk's filesystem: ${describeError(err)}`,
                changed: false,
              });
            } else {
              fail(cur !== undefined ? onFile(cur.tmp, 'write', err) : err);
            }
          } finally {
            m.release();
          }
        } else if (m.t === 'start') {
          broken = false;
          const tmp = newTmp(m.item);
          // 0444 from the start: objects are never modified, only replaced or deleted.
          const create = (): number =>
            fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o444);
          try {
            // The prefix folder now, while reads are in flight, rather than in the renames that
            // follow the batch's fsync (30,000 objects make some 4,000 folders). An empty folder
            // counts nothing; a new one is made durable with the commit group (syncNewDirs).
            opts.target.prefixDir(m.item.hash, true);
          } catch (err) {
            cur = undefined;
            broken = true;
            fail(err);
            continue;
          }
          try {
            let fd: number;
            try {
              fd = create();
            } catch (err) {
              const code = errnoCode(err);
              if (code !== 'EMFILE' && code !== 'ENFILE') throw err;
              // Out of descriptors: make what is pending durable (closing its descriptors), then
              // try once more; a run under a low `ulimit -n` goes on in smaller batches.
              if (batch.length > 0) void flush();
              await flushing;
              fd = create();
            }
            cur = { item: m.item, src: m.src, tmp, fd, viaSyncfs: false };
          } catch (err) {
            cur = undefined;
            broken = true;
            fail(onFile(tmp, 'create', err));
          }
        } else if (m.t === 'copied') {
          await onCopied(m);
        } else if (m.t === 'abort') {
          if (cur !== undefined && !broken) discard(cur);
          cur = undefined;
        } else if (m.t === 'end') {
          if (cur !== undefined && !broken && fatal === undefined && useSyncfs(cur.item)) {
            // Made durable by the batch's syncfs: the descriptor is not needed any more.
            try {
              fs.closeSync(cur.fd);
              cur.fd = -1;
              cur.viaSyncfs = true;
              cur.failuresAtClose = syncfsFailures;
            } catch (err) {
              broken = true;
              discard(cur);
              fail(onFile(cur.tmp, 'close', err));
            }
          }
          if (cur !== undefined && !broken && fatal === undefined) {
            killPoint('after-tmp-write');
            await addToBatch(cur);
          } else if (cur !== undefined && !broken) {
            discard(cur);
          }
          cur = undefined;
        }
      }
      if (cur !== undefined && cur.fd >= 0) discard(cur);
    };
    await Promise.all([reader(), writer()]);
  };

  /**
   * Read one item into the queue; false when the run must stop. `pre`: its first source already
   * opened, checked and read whole (SmallFilePrefetch); this takes over its descriptor and buffer.
   */
  const readItem = async (
    item: CopyItem,
    pre: PrefetchedFile | undefined,
    q: BoundedQueue<Msg>,
    pool: BufferPool,
  ): Promise<boolean> => {
    let lastErr = 'no file of the catalogue has this content any more';
    let lastPath: Buffer | null = null;
    let changed = false;
    for (const [k, src] of item.sources.entries()) {
      lastPath = src;
      const fetched = k === 0 ? pre : undefined;
      /** Whether the prefetched buffer went to the writer (which then gives it back). */
      let handed = false;
      let fd: number;
      if (fetched !== undefined) fd = fetched.fd;
      else {
        try {
          // O_NOFOLLOW, except for a source that is a link update followed (openSource: the
          // hash check keeps any other bytes out); O_NONBLOCK: a FIFO in its place does not
          // block the open; a path longer than PATH_MAX is opened through a descriptor of a
          // folder above it.
          fd = openSource(src, openDeep);
        } catch (err) {
          lastErr = describeError(err);
          continue;
        }
      }
      let started = false;
      try {
        const st = fetched?.stat ?? fs.fstatSync(fd);
        if (!st.isFile()) {
          lastErr = 'not a regular file any more';
          continue;
        }
        if (st.size < item.sizeBytes) {
          lastErr = `changed since the last update (${st.size} bytes, catalogued ${item.sizeBytes}); run 'distbackup update'`;
          continue;
        }
        if (viaCp(item, st.size)) {
          const r = await copyByCp(item, src, fd, q);
          if (r !== 'fallback') return r;
        }
        if (!(await q.push({ t: 'start', item, src }))) return false;
        started = true;
        // Large files are hashed on the hash thread while the writer writes the same chunks.
        const threaded = item.sizeBytes >= HASH_THREAD_BYTES;
        const h = threaded ? undefined : createHash('sha256');
        const hashId = hashIds++;
        let hashError: unknown;
        let pos = 0;
        try {
          while (pos < item.sizeBytes) {
            if (stopping()) {
              // Ctrl-C or a disk error: drop this file now rather than finish it.
              await q.push({ t: 'abort' });
              return false;
            }
            if (fetched !== undefined && pos === 0 && h !== undefined) {
              // The whole file, read ahead (a small file: hashed here, written from this buffer).
              const n = fetched.n;
              h.update(fetched.buf.subarray(0, n));
              handed = true;
              if (!(await q.push({ t: 'data', buf: fetched.buf, n, pos, release: fetched.release }))) {
                fetched.release();
                return false;
              }
              pos += n;
              continue;
            }
            const chunk = await pool.get();
            const { buf } = chunk;
            const want = Math.min(buf.length, item.sizeBytes - pos);
            let n: number;
            try {
              n =
                item.sizeBytes <= SMALL_BYTES
                  ? fs.readSync(fd, buf, 0, want, pos)
                  : await readAsync(fd, buf, 0, want, pos);
            } catch (err) {
              pool.put(chunk);
              throw err;
            }
            if (n <= 0) {
              pool.put(chunk);
              throw new Error(`shorter than catalogued (${pos} of ${item.sizeBytes} bytes); run 'distbackup update'`);
            }
            // The chunk goes back to the pool once written and (when threaded) hashed.
            let holds = 1;
            const release = (): void => {
              holds -= 1;
              if (holds === 0) pool.put(chunk);
            };
            if (h !== undefined) h.update(buf.subarray(0, n));
            else {
              holds += 1;
              hasher.update(hashId, chunk.mem, n).then(release, (err: unknown) => {
                hashError ??= err;
                release();
              });
            }
            if (!(await q.push({ t: 'data', buf, n, pos, release }))) {
              release();
              return false;
            }
            pos += n;
          }
        } finally {
          if (pos < item.sizeBytes && h === undefined) hasher.drop(hashId);
        }
        let got: string;
        if (h !== undefined) got = h.digest('hex');
        else {
          try {
            got = await hasher.digest(hashId);
          } catch (err) {
            hashError ??= err;
            got = '';
          }
        }
        if (hashError !== undefined) {
          // Not a problem of this source: the run cannot hash any more.
          await q.push({ t: 'abort' });
          fail(hashError);
          return false;
        }
        if (got !== item.hash) {
          lastErr = `content changed since the last update (hash ${got.slice(0, 12)}…, catalogued ${item.hash.slice(0, 12)}…); run 'distbackup update'`;
          changed = true;
          await q.push({ t: 'abort' });
          continue;
        }
        return await q.push({ t: 'end' });
      } catch (err) {
        lastErr = describeError(err);
        if (started) await q.push({ t: 'abort' });
      } finally {
        fs.closeSync(fd);
        if (fetched !== undefined && !handed) fetched.release();
      }
    }
    result.skipped += 1;
    opts.onSkip({ item, path: lastPath, error: lastErr, changed });
    return true;
  };

  try {
    await runItems(items);
    await flush(true);
    while (retries.length > 0 && !stopping()) {
      const again = retries.splice(0);
      await runItems(again);
      await flush(true);
    }
  } finally {
    syncer.close();
    copier.close();
    opts.signal?.removeEventListener('abort', killCopy);
    await hasher.close();
    await thread?.close();
  }
  if (fatal !== undefined) throw fatal;
  return result;
}

/** Render a skipped source path for reports. */
export function skipPath(s: CopySkip): string {
  return s.path === null ? s.item.hash : displayPath(s.path);
}
