/**
 * The `update` use-case (SPEC §3 `update`): scan every mapped folder, hash new and changed
 * files on every core (the main thread and worker threads), and record the result in the
 * catalogue, resumably.
 *
 * Pipeline, all pull-based so each stage waits for the slower one (bounded memory):
 *
 *   scan (main thread, one folder at a time, pipeline/scan.ts)
 *     → compare with that folder's catalogue rows; unchanged entries cost nothing, folders
 *       and symlinks are written at once, files to hash are batched
 *     → hash (the main thread, and worker threads when there is enough to hash,
 *       pipeline/hash-pool.ts; at most 4 batches per lane in flight: pipeline/bounded.ts)
 *     → writer (main thread, catalog/files.ts): one transaction per ~10,000 rows or ~2 s.
 *
 * A file's row is written only with its hash, so a run killed at any moment leaves every row
 * either as it was or complete; the next run hashes only what was not committed.
 *
 * Safety (RELIABILITY.md 4): a mapping whose root is missing or empty while the catalogue holds
 * files under it refuses the whole run before anything is written (an unmounted source is never
 * read as "everything deleted"); a folder that cannot be read keeps its catalogued rows; rows
 * are removed only for names absent from a folder that was read.
 */
import * as fs from 'node:fs';
import type { Catalog } from '../catalog/db.js';
import {
  type CatalogChild,
  type ChildRow,
  catalogChild,
  childId,
  childName,
  compareChildName,
  type FileRow,
  FilesWriter,
  int64,
  sameEntry,
  sameSettings,
} from '../catalog/files.js';
import { lockCatalogue } from '../catalog/lock.js';
import { FileKind, type FileKindValue, NO_CAP } from '../catalog/schema.js';
import { listSources, type SourceRow } from '../catalog/sources.js';
import { describeError, errnoCode, RefusedError } from '../core/errors.js';
import { displayPath, subtreeRange, vpathContains, vpathJoin } from '../core/vpath.js';
import { boundedMap, type Settled } from '../pipeline/bounded.js';
import { EMPTY_SHA256, type HashResult, type HashTask } from '../pipeline/hash.js';
import { createHashPool, createInlineHashPool, defaultHashJobs, type HashPool } from '../pipeline/hash-pool.js';
import { type DirScan, globPolicy, type ScanEntry, type ScanPolicy, scanTree } from '../pipeline/scan.js';
import { loadScanPolicy, withPathSettings } from '../sources/scan-policy.js';
import type { Progress } from '../ui/progress.js';
import { DirSigner } from './dir-sig.js';

/** A path and what went wrong with it (real path, printable). */
export interface PathProblem {
  path: string;
  error: string;
}

/** The SPEC §3a `update` document (fields may be added, never renamed). */
export interface UpdateResult {
  /** Entries examined: files, folders and symlinks. */
  scanned: number;
  /** Entries recorded for the first time. */
  new: number;
  /** Entries whose content or metadata changed. */
  changed: number;
  /** Catalogued entries gone from folders that were read. */
  removed: number;
  /** Entries found as catalogued (racily clean files re-read and found the same count here). */
  unchanged: number;
  /** Bytes read and hashed. */
  bytesHashed: number;
  /** Per-path problems; the run went on. Exit code 1 when not empty. */
  errors: PathProblem[];
  /** Entries left out on purpose: FIFOs, sockets, devices, symlink loops. */
  skipped: PathProblem[];
  /** Problems that changed nothing (an invalid `.meta-inf` sidecar, ignored), one line each. */
  warnings: string[];
  /** Objects deleted from the catalogue: no file references them and no disk holds them. */
  objectsForgotten: number;
  /** Files that needed reading (new or changed content), and their bytes; a dry run reads none. */
  toHash: number;
  bytesToHash: number;
  /** True for `-n/--dry-run`: the counts say what would change; nothing was hashed or written. */
  dryRun: boolean;
  /** Stopped by Ctrl-C: the counts are of what was done, and committed; the next run goes on. */
  interrupted: boolean;
  elapsedMs: number;
}

export interface UpdateOptions {
  /**
   * Hash lanes (default: one per core), the calling thread being one of them and worker
   * threads the others; 0 hashes on the calling thread at once (tests, tiny trees).
   */
  jobs?: number;
  /** Progress display (files and bytes done of the totals known so far). */
  progress?: Progress;
  /** Stop early: what was hashed is committed, nothing is removed, the run throws `interrupted`. */
  signal?: AbortSignal;
  /** Rows per catalogue transaction (default 10,000). */
  commitRows?: number;
  /** Longest wait of a written row for its commit, ms (default 2,000). */
  commitMs?: number;
  /** Wall clock in ms for the racy rule (default Date.now; tests inject one). */
  now?: () => number;
  /**
   * Scan and count what would change (new, changed, removed) without reading any file's
   * content and without writing: `cat` may be read-only, no lock is taken.
   */
  dryRun?: boolean;
}

/**
 * Timestamp granularity assumed for the racy rule (RELIABILITY.md 18, git's racy-git): FAT
 * keeps mtimes to 2 s, and Linux stamps files from a coarse clock that lags the wall clock by
 * a tick. A file whose mtime or ctime is within this of the scan start (or after it) is
 * stored "racily clean" and hashed again at the next run, since a write in the same tick
 * after we read it would leave both unchanged.
 */
export const RACY_GRANULARITY_NS = 2_000_000_000n;

/** Files per hash batch: one worker round trip for many small files. */
const BATCH_FILES = 64;
/** Bytes per hash batch: a large file goes alone, so threads share the work evenly. */
const BATCH_BYTES = 4 << 20;
/** Files of one folder sorted by inode at a time (bounds memory in a huge folder). */
const DIR_QUEUE_FILES = 4096;

const KIND: Record<ScanEntry['kind'], FileKindValue> = {
  file: FileKind.file,
  dir: FileKind.dir,
  symlink: FileKind.symlink,
};

/** A file waiting for its hash, with the catalogue row it may replace. */
interface PendingFile {
  readonly sourceId: number;
  readonly vpath: Buffer;
  readonly parent: Buffer;
  /** Real folder of the file (its real path is built only when it is read: see `realPath`). */
  readonly dirReal: Buffer;
  readonly entry: ScanEntry;
  readonly old: CatalogChild | undefined;
  /** Other paths of the same inode seen in this run (hard links): recorded with the same hash. */
  readonly links: PendingFile[];
}

const SLASH = Buffer.from('/');

function realPath(f: PendingFile): Buffer {
  return Buffer.concat([f.dirReal, SLASH, f.entry.name]);
}

interface HashJob {
  readonly files: PendingFile[];
  readonly tasks: HashTask[];
  readonly bytes: number;
}

/**
 * Run `update` on catalogue `cat` (see the module comment). Takes the home lock (refused, exit 2,
 * when another distbackup process holds it). Throws RefusedError when a mapping's root is
 * missing or empty while files are catalogued under it. When `opts.signal` aborts, the hashes
 * done so far are committed and the result says `interrupted`.
 */
export async function runUpdate(cat: Catalog, opts: UpdateOptions = {}): Promise<UpdateResult> {
  const started = Date.now();
  const dryRun = opts.dryRun ?? false;
  // A dry run writes nothing, so it neither takes the lock nor waits for one.
  const lock = dryRun ? undefined : lockCatalogue(cat);
  // The catalogue stays WAL + synchronous=FULL: every commit is durable when COMMIT returns, so
  // after a power cut too the next run reads only what was not committed. NORMAL for the run was
  // measured no faster (bench/update.ts and A/B runs, load 13–22: a first update of 50,000 small
  // files 31.1 s against 32.0 s, median of 3; the writer alone 160,627 against 190,795 rows per
  // CPU-second over 1,000,000 rows), so durability costs nothing worth trading here.
  let pool: HashPool | undefined;
  let writer: FilesWriter | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    writer = new FilesWriter(cat.db, {
      dryRun,
      ...(opts.commitRows === undefined ? {} : { commitRows: opts.commitRows }),
      ...(opts.commitMs === undefined ? {} : { commitMs: opts.commitMs }),
    });
    const w = writer;
    // Commit by age also while waiting on the workers (a large file can take seconds).
    timer = setInterval(() => w.maybeCommit(), Math.max(100, Math.floor((opts.commitMs ?? 2000) / 2)));
    timer.unref();
    const sources = listSources(cat.db);
    const problems = checkRoots(cat, sources);
    const run = new UpdateRun(w, opts, (opts.now ?? Date.now)(), () => {
      pool ??= opts.jobs === 0 ? createInlineHashPool() : createHashPool(opts.jobs ?? defaultHashJobs());
      return pool;
    });
    run.result.errors.push(...problems.errors);
    await run.execute(sources.filter((s) => !problems.unreadable.has(s.id)));
    if (opts.signal?.aborted === true) {
      // What was recorded is committed; nothing is forgotten (the scan did not see everything).
      w.close();
      run.result.interrupted = true;
      run.result.elapsedMs = Date.now() - started;
      return run.result;
    }
    run.result.objectsForgotten = w.collectGarbage();
    w.close();
    run.result.elapsedMs = Date.now() - started;
    return run.result;
  } catch (err) {
    // Keep what was committed; a half batch of a failed run is not trusted.
    writer?.rollback();
    throw err;
  } finally {
    if (timer !== undefined) clearInterval(timer);
    opts.progress?.stop();
    await pool?.destroy();
    lock?.release();
  }
}

/**
 * Check every mapping's root before anything is written. Refuses (RefusedError) the run when a
 * root is missing or empty while the catalogue holds entries under it. A missing root with
 * nothing catalogued is reported as an error and that mapping skipped.
 */
function checkRoots(cat: Catalog, sources: SourceRow[]): { errors: PathProblem[]; unreadable: Set<number> } {
  const hasRows = cat.db.prepare('SELECT 1 FROM files WHERE source_id = ? LIMIT 1').pluck();
  const refused: string[] = [];
  const errors: PathProblem[] = [];
  const unreadable = new Set<number>();
  for (const s of sources) {
    const { state, what } = rootState(s.realpath);
    if (state === 'ok') continue;
    const where = `${s.vpath} -> ${displayPath(s.realpath)}`;
    if (hasRows.get(s.id) !== undefined) refused.push(`${where} is ${what}`);
    else if (state !== 'empty') {
      errors.push({ path: displayPath(s.realpath), error: `source ${s.vpath} is ${what}; not scanned` });
      unreadable.add(s.id);
    }
  }
  if (refused.length > 0) {
    throw new RefusedError(
      `refusing to update: ${refused.join('; ')}, while the catalogue holds files under it; nothing was changed (mount it, or 'distbackup source unmap VPATH' to forget its files)`,
      { code: 'source-missing' },
    );
  }
  return { errors, unreadable };
}

/**
 * The state of a mapping's root folder: a folder with entries (`ok`), missing (or unreachable:
 * EIO, ENOTCONN of a FUSE source gone), empty, or not a folder; `what` in words. EACCES is `ok`:
 * the scan reports it as an unreadable folder and keeps its rows.
 */
function rootState(realpath: Buffer | string): { state: 'ok' | 'missing' | 'empty' | 'not a folder'; what: string } {
  let state: 'ok' | 'missing' | 'empty' | 'not a folder' = 'ok';
  let cause = '';
  try {
    const st = fs.statSync(realpath);
    if (!st.isDirectory()) state = 'not a folder';
    else {
      const d = fs.opendirSync(realpath);
      try {
        if (d.readSync() === null) state = 'empty';
      } finally {
        d.closeSync();
      }
    }
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') state = 'missing';
    else if (code !== 'EACCES' && code !== 'EPERM') {
      // As good as missing, and never "all deleted".
      state = 'missing';
      cause = describeError(err);
    }
  }
  return { state, what: state === 'missing' ? `missing${cause === '' ? '' : ` (${cause})`}` : state };
}

/** What a file row records of a stat (`size` of a regular file; mode without the type bits). */
interface FileMeta {
  sizeBytes: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  mode: number;
  uid: number;
  gid: number;
}

function statMeta(st: ScanEntry['stat']): FileMeta {
  return {
    sizeBytes: Number(st.size),
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
  };
}

/** The state of one run: counters, the folder-by-folder comparison, the hash batching. */
class UpdateRun {
  readonly result: UpdateResult = {
    scanned: 0,
    new: 0,
    changed: 0,
    removed: 0,
    unchanged: 0,
    bytesHashed: 0,
    errors: [],
    skipped: [],
    warnings: [],
    objectsForgotten: 0,
    toHash: 0,
    bytesToHash: 0,
    dryRun: false,
    interrupted: false,
    elapsedMs: 0,
  };
  /** Anything with an mtime or ctime at or after this is stored racily clean (hashed again next run). */
  private readonly racyFromNs: bigint;
  /** Files of the folder being compared that need a hash (sorted by inode before batching). */
  private dirQueue: PendingFile[] = [];
  /** Files waiting to be handed to a worker: `batch[batchHead..]`. */
  private batch: PendingFile[] = [];
  private batchHead = 0;
  private batchBytes = 0;
  /** Files with more than one link waiting for a hash, by `dev:ino`. */
  private readonly pendingInodes = new Map<string, PendingFile>();
  /**
   * Folders found on another device than their row says (a mount point whose disk went away, or
   * came), by vpath (latin1): their rows are written only once their own listing is seen (see
   * compareDir). Mount points only, so few.
   */
  private readonly devMoved = new Map<string, FileRow>();
  private filesDone = 0;
  /** When the scan last gave the event loop a turn (performance.now()). */
  private lastTurn = performance.now();
  private emptyObjectId: number | undefined;
  private readonly signer = new DirSigner();

  constructor(
    private readonly writer: FilesWriter,
    private readonly opts: UpdateOptions,
    scanStartMs: number,
    private readonly pool: () => HashPool,
  ) {
    this.racyFromNs = BigInt(Math.floor(scanStartMs)) * 1_000_000n - RACY_GRANULARITY_NS;
    this.result.dryRun = opts.dryRun ?? false;
  }

  async execute(sources: SourceRow[]): Promise<void> {
    const threads = Math.max(1, this.opts.jobs ?? defaultHashJobs());
    const hashed = boundedMap(this.produce(sources), (job: HashJob) => this.pool().hash(job.tasks), {
      // Four batches per thread: one hashing, three queued, so no thread waits while the main
      // thread scans a folder or commits.
      concurrency: threads * 4,
      ordered: false,
      // Ctrl-C: nothing more is taken, the batches in flight are given up (the pool is stopped
      // by the caller); what was recorded is committed.
      ...(this.opts.signal === undefined ? {} : { signal: this.opts.signal }),
    });
    try {
      for await (const s of hashed) this.take(s);
    } catch (err) {
      // Only the abort itself ends the loop quietly (boundedMap throws the signal's reason); a
      // failure to record, even one after Ctrl-C, is the run's.
      if (this.opts.signal === undefined || err !== this.opts.signal.reason) throw err;
    }
  }

  /** Record the results of one hash batch. */
  private take(s: Settled<HashJob, HashResult[]>): void {
    // One slot per batch: a worker that failed as a whole fails each of its files alike.
    const failed: HashResult | undefined = s.ok
      ? undefined
      : { ok: false, code: 'worker', error: describeError(s.error) };
    s.input.files.forEach((f, i) => {
      const res = s.ok ? s.value[i] : failed;
      this.recordHash(f, res ?? { ok: false, code: 'EIO', error: 'no result from the hash worker' });
    });
    this.writer.maybeCommit();
    this.report();
  }

  /** Scan every source folder by folder; yields hash batches as they fill. */
  private async *produce(sources: SourceRow[]): AsyncGenerator<HashJob> {
    // Path settings (`source set`: lock, hide, priority, copies, ignore rules), the
    // `.distbackup.skip` marker and `.meta-inf` sidecars, in front of each mapping's globs.
    const settings = loadScanPolicy(this.writer.db);
    const hasRows = this.writer.db.prepare('SELECT 1 FROM files WHERE source_id = ? LIMIT 1').pluck();
    for (const src of sources) {
      // Checked again as its turn comes (the run's start may be hours ago): a source unmounted
      // meanwhile is skipped with its rows kept, never read as everything deleted.
      const root = rootState(src.realpath);
      if (root.state !== 'ok' && (root.state !== 'empty' || hasRows.get(src.id) !== undefined)) {
        this.result.errors.push({
          path: displayPath(src.realpath),
          error: `source ${src.vpath} is ${root.what} since the run began; not scanned, its files kept`,
        });
        continue;
      }
      const globs = globPolicy(src.include, src.exclude, {
        priority: 1,
        minCopies: src.minCopies,
        maxCopies: NO_CAP,
      });
      const policy = withPathSettings(globs, settings, (line) => {
        this.result.warnings.push(line);
        this.opts.progress?.note(`warning: ${line}`);
      });
      const nested = sources
        .filter((o) => o.id !== src.id && o.vpath !== src.vpath && vpathContains(src.vpath, o.vpath))
        .map((o) => o.vpath);
      const tree = scanTree(
        { vpath: src.vpath, realPath: src.realpath, followSymlinks: src.followSymlinks, nested },
        policy,
      );
      for (const ds of tree) {
        if (this.opts.signal?.aborted === true) return;
        // A generator, so a huge folder hands out batches while it is compared.
        yield* this.compareDir(src.id, ds, policy);
        this.writer.maybeCommit();
        this.report();
        // Let finished hashes be written between folders (the scan itself is synchronous), and
        // give the event loop a turn every 50 ms: a signal (Ctrl-C) is only heard there, and a
        // scan with nothing to hash would otherwise never stop for it.
        if (performance.now() - this.lastTurn >= 50) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          this.lastTurn = performance.now();
          // (read through the options again: the check above narrowed it for the compiler)
          if (isAborted(this.opts.signal)) return;
        } else if (this.queued() > 0) await Promise.resolve();
      }
    }
    while (this.queued() > 0) yield this.takeBatch();
  }

  private queued(): number {
    return this.batch.length - this.batchHead;
  }

  private *fullBatches(): Generator<HashJob> {
    while (this.queued() >= BATCH_FILES || this.batchBytes >= BATCH_BYTES) yield this.takeBatch();
  }

  private takeBatch(): HashJob {
    const files: PendingFile[] = [];
    let bytes = 0;
    while (this.queued() > 0 && files.length < BATCH_FILES && (files.length === 0 || bytes < BATCH_BYTES)) {
      const f = this.batch[this.batchHead] as PendingFile;
      this.batchHead += 1;
      files.push(f);
      bytes += Number(f.entry.stat.size);
    }
    if (this.batchHead === this.batch.length) {
      this.batch = [];
      this.batchHead = 0;
    }
    this.batchBytes -= bytes;
    return {
      files,
      bytes,
      tasks: files.map((f) => ({
        path: realPath(f),
        dev: f.entry.stat.dev,
        ino: f.entry.stat.ino,
        follow: f.entry.followed,
        sizeBytes: Number(f.entry.stat.size),
      })),
    };
  }

  /** Compare one scanned folder with its catalogue rows and write what changed. */
  private *compareDir(sourceId: number, ds: DirScan, policy: ScanPolicy): Generator<HashJob> {
    const r = this.result;
    for (const p of ds.errors) r.errors.push(p);
    for (const p of ds.skipped) {
      r.skipped.push(p);
      this.opts.progress?.note(`skipped ${p.path}: ${p.error}`);
    }
    if (ds.kept) return;
    if (ds.entries === null) {
      r.errors.push({ path: displayPath(ds.dir.realPath), error: ds.readError ?? 'cannot read folder' });
      return;
    }
    const dirVpath = ds.dir.vpath;
    // A folder on another device than its row says, now empty or holding less than half the
    // names catalogued in it (a stray file written into the mount point): a mount point whose
    // disk went away reads so. Its rows, its own included, are kept.
    const moved = this.devMoved.get(dirVpath.toString('latin1'));
    if (moved !== undefined) {
      this.devMoved.delete(dirVpath.toString('latin1'));
      const listed = new Set(ds.entries.map((e) => e.name.toString('latin1')));
      const rows = this.writer.childRows(dirVpath, sourceId);
      const nameStart = dirVpath.length === 1 ? 1 : dirVpath.length + 1;
      const still = rows.filter((row) => listed.has(childName(row, nameStart).toString('latin1'))).length;
      if (still * 2 < rows.length) {
        r.errors.push({
          path: displayPath(ds.dir.realPath),
          error:
            'on another device than when it was catalogued, and most of its files are not there: a mount point whose disk is not mounted? Its files are kept (mount it again, or remove the folder if they are gone for good)',
        });
        return;
      }
      this.writer.upsert(moved);
    }
    // Unchanged since its signature was stored (dir-sig.ts): no row to read or compare. Only for
    // a folder whose every name was examined (no lstat error, nothing kept by the policy).
    const sig = ds.errors.length === 0 && ds.keepNames.size === 0 ? this.signer.sign(ds.entries) : undefined;
    if (sig !== undefined && this.writer.dirSig(dirVpath, sourceId)?.equals(sig) === true) {
      r.scanned += ds.entries.length;
      r.unchanged += ds.entries.length;
      this.filesDone += ds.entries.length;
      return;
    }
    const nameStart = dirVpath.length === 1 ? 1 : dirVpath.length + 1;
    // A merge of two lists in byte order of name: the folder's listing and its catalogued rows.
    const rows = this.writer.childRows(dirVpath, sourceId, { forSignature: sig !== undefined });
    const gone: ChildRow[] = [];
    // Every entry matched its row as it is (settings too): the rows equal the scan.
    let same = true;
    let j = 0;
    for (const e of ds.entries) {
      let old: ChildRow | undefined;
      while (j < rows.length) {
        const row = rows[j] as ChildRow;
        const c = compareChildName(e.name, row, nameStart);
        if (c < 0) break;
        j += 1;
        if (c === 0) {
          old = row;
          break;
        }
        gone.push(row);
      }
      r.scanned += 1;
      if (old !== undefined && sameEntry(old, KIND[e.kind], e.stat, e.linkTarget)) {
        const s = e.settings;
        if (!sameSettings(old, s.priority, s.minCopies, s.maxCopies)) {
          this.writer.setSettings(childId(old), s.priority, s.minCopies, s.maxCopies);
          same = false;
        }
        r.unchanged += 1;
        this.filesDone += 1;
        continue;
      }
      same = false;
      this.compareEntry(sourceId, ds, e, old === undefined ? undefined : catalogChild(old));
      // A huge folder is handed out in sorted chunks, so memory and the first hash do not wait for its end.
      if (this.dirQueue.length >= DIR_QUEUE_FILES) yield* this.flushDirQueue();
    }
    for (; j < rows.length; j++) gone.push(rows[j] as ChildRow);
    if (same && gone.length === 0 && sig !== undefined) this.writer.putDirSig(dirVpath, sourceId, sig);
    yield* this.flushDirQueue();
    // Catalogued, not listed: gone, unless the scan could not tell or the policy keeps it.
    for (const row of gone) {
      const name = childName(row, nameStart);
      if (ds.keepNames.has(name.toString('latin1'))) continue;
      const old = catalogChild(row);
      if (old.kind === FileKind.dir) {
        const rel = ds.dir.rel.length === 0 ? name : Buffer.concat([ds.dir.rel, Buffer.from('/'), name]);
        const action = policy.enterDir({
          vpath: old.vpath,
          realPath: Buffer.concat([ds.dir.realPath, Buffer.from('/'), name]),
          rel,
        });
        if (action === 'keep') continue;
        r.removed += this.writer.removeSubtree(subtreeRange(old.vpath), sourceId);
      }
      this.writer.remove(old);
      r.removed += 1;
    }
  }

  private compareEntry(sourceId: number, ds: DirScan, e: ScanEntry, old: CatalogChild | undefined): void {
    const r = this.result;
    const st = e.stat;
    const kind = KIND[e.kind];
    const s = e.settings;
    // Unchanged entries never get here (compareDir matched them in place).
    const vpath = old?.vpath ?? vpathJoin(ds.dir.vpath, e.name);
    // A followed link to a folder or file whose target is missing now: a link into an unmounted
    // share or disk reads so. What was catalogued there is kept (the sync would otherwise
    // delete its backups as orphans) until the link goes or its target is back.
    if (old !== undefined && (old.kind === FileKind.dir || old.kind === FileKind.file) && e.unreachable === true) {
      r.errors.push({
        path: displayPath(Buffer.concat([ds.dir.realPath, Buffer.from('/'), e.name])),
        error: 'a followed symbolic link whose target is missing (unmounted?); what was catalogued there is kept',
      });
      this.filesDone += 1;
      r.unchanged += 1;
      return;
    }
    // A folder that became something else: what was catalogued below it is gone.
    if (old !== undefined && old.kind === FileKind.dir && kind !== FileKind.dir) {
      r.removed += this.writer.removeSubtree(subtreeRange(old.vpath), sourceId);
    }
    // (A device of 0 is unknown: folder rows of the Python import.)
    if (
      old !== undefined &&
      old.kind === FileKind.dir &&
      kind === FileKind.dir &&
      old.dev !== 0n &&
      old.dev !== int64(st.dev)
    ) {
      this.devMoved.set(vpath.toString('latin1'), this.row(sourceId, vpath, ds.dir.vpath, e, null, st.ctimeNs));
      this.count(old, undefined);
      return;
    }
    if (kind !== FileKind.file) {
      if (old?.objectId != null) this.writer.gcCandidate(old.objectId);
      this.writer.upsert(this.row(sourceId, vpath, ds.dir.vpath, e, null, st.ctimeNs));
      this.count(old, undefined);
      return;
    }
    const pending: PendingFile = {
      sourceId,
      vpath,
      parent: ds.dir.vpath,
      dirReal: ds.dir.realPath,
      entry: e,
      old,
      links: [],
    };
    const sizeBytes = Number(st.size);
    const racy = this.isRacy(st.mtimeNs, st.ctimeNs);
    if (sizeBytes === 0) {
      // The empty file's content is known from its size; nothing to read.
      this.emptyObjectId ??= this.writer.object(EMPTY_SHA256, 0);
      this.recordFile(pending, this.emptyObjectId, statMeta(st));
      return;
    }
    // Hard-linked: same device, inode, size, mtime and ctime as a row hashed before (see
    // objectByInode). Not when this path already held this inode: then the inode itself changed
    // (ctime moved) and must be read, or an in-place rewrite with its mtime put back would keep
    // the stale hash.
    if (s.hash !== undefined) {
      // A trusted hash from a `.meta-inf` sidecar: recorded without reading the file.
      this.recordFile(pending, this.writer.object(s.hash, sizeBytes), statMeta(st));
      return;
    }
    // Only an inode with another link: on exfat the ctime is a copy of the mtime and inode
    // numbers are handed out anew at each mount, so a lone file could match another's row.
    if (!racy && !e.followed && st.nlink > 1n && old?.ino !== int64(st.ino)) {
      const reuse = this.writer.objectByInode(st.dev, st.ino, sizeBytes, st.mtimeNs, st.ctimeNs);
      if (reuse !== undefined) {
        this.recordFile(pending, reuse, statMeta(st));
        return;
      }
    }
    if (this.result.dryRun) {
      // Would be read: counted as new or changed, never read (a dry run reads no content).
      this.result.toHash += 1;
      this.result.bytesToHash += sizeBytes;
      this.count(old, undefined);
      return;
    }
    if (st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const leader = this.pendingInodes.get(key);
      if (leader !== undefined) {
        leader.links.push(pending);
        return;
      }
      this.pendingInodes.set(key, pending);
    }
    this.dirQueue.push(pending);
    this.result.toHash += 1;
    this.result.bytesToHash += sizeBytes;
  }

  /**
   * Hand the folder's files to the hash queue in inode order: on a spinning disk, or cold on
   * any disk, inode order is close to the order on the platter (names are not), so reads go
   * forward instead of seeking.
   */
  private *flushDirQueue(): Generator<HashJob> {
    if (this.dirQueue.length === 0) return;
    const q = this.dirQueue;
    this.dirQueue = [];
    q.sort((a, b) => (a.entry.stat.ino < b.entry.stat.ino ? -1 : a.entry.stat.ino > b.entry.stat.ino ? 1 : 0));
    for (const f of q) {
      this.batch.push(f);
      this.batchBytes += Number(f.entry.stat.size);
      yield* this.fullBatches();
    }
  }

  private isRacy(mtimeNs: bigint, ctimeNs: bigint): boolean {
    return mtimeNs >= this.racyFromNs || ctimeNs >= this.racyFromNs;
  }

  /** Write the result of hashing `f` (and its hard links seen in this run). */
  private recordHash(f: PendingFile, res: HashResult): void {
    if (f.entry.stat.nlink > 1n) this.pendingInodes.delete(`${f.entry.stat.dev}:${f.entry.stat.ino}`);
    if (!res.ok) {
      const path = displayPath(realPath(f));
      this.result.errors.push({ path, error: res.error });
      for (const l of f.links) {
        this.result.errors.push({ path: displayPath(realPath(l)), error: `not hashed: its hard link ${path} failed` });
      }
      this.filesDone += 1 + f.links.length;
      return;
    }
    this.result.bytesHashed += res.sizeBytes;
    const objectId = this.writer.object(res.hash, res.sizeBytes);
    this.recordFile(f, objectId, res);
    // A hard link shares the inode, so it shares the content and the stat just checked.
    for (const l of f.links) this.recordFile(l, objectId, res);
  }

  private recordFile(f: PendingFile, objectId: number, meta: FileMeta): void {
    // Racily clean (RELIABILITY.md 18): stored with ctime 0, so the next run hashes it again.
    const ctimeNs = this.isRacy(meta.mtimeNs, meta.ctimeNs) ? 0n : meta.ctimeNs;
    const st = f.entry.stat;
    const s = f.entry.settings;
    if (f.old?.objectId != null && f.old.objectId !== objectId) this.writer.gcCandidate(f.old.objectId);
    this.writer.upsert({
      vpath: f.vpath,
      parent: f.parent,
      sourceId: f.sourceId,
      kind: FileKind.file,
      sizeBytes: meta.sizeBytes,
      mtimeNs: meta.mtimeNs,
      ctimeNs,
      mode: meta.mode,
      uid: meta.uid,
      gid: meta.gid,
      dev: st.dev,
      ino: st.ino,
      linkTarget: null,
      objectId,
      priority: s.priority,
      minCopies: s.minCopies,
      maxCopies: s.maxCopies,
    });
    this.count(f.old, { objectId, sizeBytes: meta.sizeBytes });
  }

  /** Count an entry written: new, changed, or (a racy re-hash that found the same) unchanged. */
  private count(old: CatalogChild | undefined, file: { objectId: number; sizeBytes: number } | undefined): void {
    this.filesDone += 1;
    if (old === undefined) this.result.new += 1;
    else if (
      file !== undefined &&
      old.kind === FileKind.file &&
      old.objectId === file.objectId &&
      old.sizeBytes === file.sizeBytes
    ) {
      this.result.unchanged += 1;
    } else this.result.changed += 1;
  }

  private row(
    sourceId: number,
    vpath: Buffer,
    parent: Buffer,
    e: ScanEntry,
    objectId: number | null,
    ctimeNs: bigint,
  ): FileRow {
    const st = e.stat;
    return {
      vpath,
      parent,
      sourceId,
      kind: KIND[e.kind],
      sizeBytes: e.kind === 'file' ? Number(st.size) : 0,
      mtimeNs: st.mtimeNs,
      ctimeNs,
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      dev: st.dev,
      ino: st.ino,
      linkTarget: e.linkTarget,
      objectId,
      priority: e.settings.priority,
      minCopies: e.settings.minCopies,
      maxCopies: e.settings.maxCopies,
    };
  }

  private report(): void {
    const p = this.opts.progress;
    if (p === undefined) return;
    // A dry run reads no bytes: its progress counts entries only.
    p.setTotals(this.result.dryRun ? 0 : this.result.bytesToHash, this.result.scanned);
    p.update(this.result.bytesHashed, this.filesDone);
  }
}

/** Whether `signal` has aborted (a call, so that a check earlier in a loop does not narrow it). */
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}
