/**
 * The benchmark's data: seeded plans of file trees (large files, small files, a mixed photo-like
 * tree, with duplicates) and the writer that materialises them. A plan is a pure function of
 * (kind, bytes, seed), so two runs with the same seed time the same bytes; contents are
 * AES-256-CTR keystreams, incompressible like photos and videos, so compressing peers
 * (restic, borg) gain nothing a real archive would not give them.
 */
import { createCipheriv, createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The three shapes of data every suite times. */
export type DatasetKind = 'large' | 'small' | 'mixed';
export const DATASET_KINDS: readonly DatasetKind[] = ['large', 'small', 'mixed'];

/** One file of a plan. `content` names the byte stream: equal ids are duplicates. */
export interface FileSpec {
  /** Path relative to the dataset root, `/`-separated. */
  readonly rel: string;
  readonly sizeBytes: number;
  /** Content id; files sharing it have identical bytes (duplicates). */
  readonly content: number;
  /** Modification time, unix seconds (deterministic, so restores can be compared). */
  readonly mtimeS: number;
}

/** A dataset plan with its totals. */
export interface DatasetPlan {
  readonly kind: DatasetKind;
  readonly seed: number;
  readonly files: readonly FileSpec[];
  /** Sum of all file sizes (what a user would call the data size). */
  readonly bytes: number;
  /** Sum over distinct contents (what a deduplicating tool has to store). */
  readonly distinctBytes: number;
  readonly distinctFiles: number;
  /** Files whose content appeared earlier in the plan. */
  readonly duplicates: number;
}

/** splitmix32-style seeded generator of floats in [0, 1): small, fast, reproducible. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    z = (z ^ (z >>> 16)) >>> 0;
    return z / 4294967296;
  };
}

function logUniform(rand: () => number, lo: number, hi: number): number {
  return Math.round(Math.exp(Math.log(lo) + rand() * (Math.log(hi) - Math.log(lo))));
}

/** Content id shared by every empty file. */
export const EMPTY_CONTENT = -1;

const pad = (n: number, w: number): string => String(n).padStart(w, '0');
/** 2023-01-01T00:00:00Z: mtimes spread over the year after it. */
const MTIME_BASE_S = 1_672_531_200;

/**
 * Plan a dataset of about `bytes` bytes (pure; deterministic in `seed`).
 * - large: 4 files (more when each would pass 1 GiB), no duplicates, so hashing compares
 *   like with like;
 * - small: 512 B – 32 KiB (log-uniform, mean ≈ 7.6 KB), 1 % empty, 5 % duplicates, 200 per folder
 *   in two levels of folders;
 * - mixed: 4 KiB – 32 MiB (log-uniform, capped at a quarter of the budget), 10 % duplicates,
 *   camera-like albums of 150 files.
 */
export function planDataset(kind: DatasetKind, bytes: number, seed: number): DatasetPlan {
  const rand = seededRandom(seed * 31 + DATASET_KINDS.indexOf(kind) + 1);
  const files: FileSpec[] = [];
  let nextContent = seed * 1_000_003 + DATASET_KINDS.indexOf(kind) * 100_000_007;
  const mtime = (): number => MTIME_BASE_S + Math.floor(rand() * 365 * 86_400);
  if (kind === 'large') {
    const count = Math.max(4, Math.ceil(bytes / 1024 ** 3));
    const size = Math.max(1, Math.floor(bytes / count));
    for (let i = 0; i < count; i++) {
      files.push({ rel: `video-${pad(i, 3)}.bin`, sizeBytes: size, content: nextContent++, mtimeS: mtime() });
    }
  } else {
    const small = kind === 'small';
    const lo = small ? 512 : 4096;
    const hi = small ? 32 * 1024 : Math.max(lo * 2, Math.min(32 * 1024 ** 2, Math.floor(bytes / 4)));
    const dupRate = small ? 0.05 : 0.1;
    const perFolder = small ? 200 : 150;
    const seen: FileSpec[] = [];
    let total = 0;
    for (let i = 0; total < bytes; i++) {
      const folder = Math.floor(i / perFolder);
      const rel = small
        ? `d${pad(Math.floor(folder / 20), 2)}/d${pad(folder % 20, 2)}/f-${pad(i, 6)}.dat`
        : `album-${pad(folder, 3)}/IMG_${pad(i, 5)}.jpg`;
      let spec: FileSpec;
      const twin = seen.length > 0 && rand() < dupRate ? seen[Math.floor(rand() * seen.length)] : undefined;
      if (twin !== undefined) {
        spec = { rel, sizeBytes: twin.sizeBytes, content: twin.content, mtimeS: mtime() };
      } else {
        const size = small && rand() < 0.01 ? 0 : Math.min(logUniform(rand, lo, hi), Math.max(0, bytes - total));
        // Every empty file has the same (empty) content: one object, like any deduplicating tool sees it.
        spec = { rel, sizeBytes: size, content: size === 0 ? EMPTY_CONTENT : nextContent++, mtimeS: mtime() };
        if (size > 0) seen.push(spec);
      }
      files.push(spec);
      total += spec.sizeBytes;
    }
  }
  return summarise(kind, seed, files);
}

function summarise(kind: DatasetKind, seed: number, files: FileSpec[]): DatasetPlan {
  const distinct = new Map<number, number>();
  let total = 0;
  for (const f of files) {
    total += f.sizeBytes;
    distinct.set(f.content, f.sizeBytes);
  }
  let distinctBytes = 0;
  for (const s of distinct.values()) distinctBytes += s;
  return {
    kind,
    seed,
    files,
    bytes: total,
    distinctBytes,
    distinctFiles: distinct.size,
    duplicates: files.length - distinct.size,
  };
}

const CHUNK = 1024 * 1024;
const ZEROS = Buffer.alloc(CHUNK);

/** The bytes of content `id`: an AES-256-CTR keystream keyed by the id (deterministic). */
export function contentStream(id: number): (n: number) => Buffer {
  const key = createHash('sha256').update(`distbackup-bench-content:${id}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return (n) => cipher.update(n <= CHUNK ? ZEROS.subarray(0, n) : Buffer.alloc(n));
}

/**
 * The order files are created in: a seeded shuffle, as a tree filled over years has its files'
 * disk order (inode order) unrelated to name order. A tool reading in name or directory order
 * then seeks on a spinning disk, as it would on a real tree; one that sorts by inode does not.
 */
export function writeOrder(plan: DatasetPlan): FileSpec[] {
  const order = [...plan.files];
  const rand = seededRandom(plan.seed ^ 0x5eed);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const a = order[i];
    const b = order[j];
    if (a !== undefined && b !== undefined) {
      order[i] = b;
      order[j] = a;
    }
  }
  return order;
}

/**
 * Write `plan` under `root` (created; must not hold the files yet). Data only, no fsync:
 * callers flush with `sync` before timing anything. One sequential writer (the fastest way to
 * lay data on any disk) that yields to the event loop every 64 MiB or 500 files, so a Ctrl-C
 * is seen; stops with an `AbortError` when `signal` is aborted.
 */
export async function writeDataset(
  root: string,
  plan: DatasetPlan,
  opts: { signal?: AbortSignal; onProgress?: (bytesDone: number) => void } = {},
): Promise<void> {
  fs.mkdirSync(root, { recursive: true });
  const made = new Set<string>();
  let done = 0;
  let sinceYield = 0;
  let filesSinceYield = 0;
  for (const f of writeOrder(plan)) {
    if (sinceYield >= 64 * CHUNK || filesSinceYield >= 500) {
      sinceYield = 0;
      filesSinceYield = 0;
      opts.onProgress?.(done);
      await new Promise((resolve) => setImmediate(resolve));
    }
    opts.signal?.throwIfAborted();
    const file = path.join(root, ...f.rel.split('/'));
    const dir = path.dirname(file);
    if (!made.has(dir)) {
      fs.mkdirSync(dir, { recursive: true });
      made.add(dir);
    }
    const next = contentStream(f.content);
    const fd = fs.openSync(file, 'wx');
    try {
      let left = f.sizeBytes;
      while (left > 0) {
        const buf = next(Math.min(CHUNK, left));
        let off = 0;
        while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
        left -= buf.length;
        sinceYield += buf.length;
        if (sinceYield >= 64 * CHUNK) {
          // A file of many GiB must not hold off a Ctrl-C either.
          sinceYield = 0;
          await new Promise((resolve) => setImmediate(resolve));
          opts.signal?.throwIfAborted();
        }
      }
      fs.futimesSync(fd, f.mtimeS, f.mtimeS);
    } finally {
      fs.closeSync(fd);
    }
    done += f.sizeBytes;
    filesSinceYield++;
  }
  opts.onProgress?.(done);
}

/** SHA-256 of content `id` at `sizeBytes` (tests: what a correct tool must find). */
export function contentSha256(id: number, sizeBytes: number): string {
  const next = contentStream(id);
  const h = createHash('sha256');
  for (let left = sizeBytes; left > 0; left -= CHUNK) h.update(next(Math.min(CHUNK, left)));
  return h.digest('hex');
}
