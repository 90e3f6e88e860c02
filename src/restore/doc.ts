/**
 * The options of a restore and the document it returns (SPEC §3a, with additions), plus the
 * two ways a run adds to it: a capped problem list and a warning said once. Plain data.
 */
import type { Progress } from '../ui/progress.js';

/** At most this many entries per list in the result document (counts stay exact). */
export const LIST_CAP = 1000;

export interface RestoreOptions {
  /** Restore folder (created 0700 when missing). */
  dest: string;
  /** Virtual paths to restore (subtrees); empty = everything. */
  vpaths: readonly string[];
  /** `--disk PATH`. */
  diskPath?: string | undefined;
  /** Home data folder. */
  dataDir: string;
  /** `home`, `disk`, or `auto` (home when it exists, else the disk's copy). */
  catalogue: 'home' | 'disk' | 'auto';
  overwrite?: boolean | undefined;
  /** Only print the disk order; restore nothing. */
  planOnly?: boolean | undefined;
  /** Globs on virtual paths (picomatch); a match of a folder takes its whole subtree. Empty = all. */
  filters?: readonly string[] | undefined;
  /** Folders that may already hold files (same relative path, size and content): those are skipped. */
  existing?: readonly string[] | undefined;
  /** Hard-link each file to the disk's object instead of copying it (DEST must be on the disk's filesystem). */
  link?: boolean | undefined;
  /** Say what would be restored (through `onDryRun`), write nothing. */
  dryRun?: boolean | undefined;
  /** Receives every entry a dry run would restore, in path order. */
  onDryRun?: ((entry: DryRunEntry) => void) | undefined;
  /**
   * `--profile`: hdd writes the small files on one thread (the disk's reads stay one stream),
   * ssd on two. Default from the disk's device: rotational → hdd, else ssd; unknown → hdd.
   */
  profile?: 'hdd' | 'ssd' | undefined;
  /** Files planned from which files below 1 MiB are written on a thread of their own (default 10,000). */
  smallFileLaneMinFiles?: number | undefined;
  /** Biggest file copied in one kernel call (default 1 GiB; bigger ones go in 1 MiB chunks). */
  kernelCopyMaxBytes?: number | undefined;
  /**
   * Keep every file and link an earlier run into DEST restored where this catalogue lists another
   * version, --overwrite or not: set when the catalogue used is older than the one an earlier run
   * used (restore/newest.ts), so nothing newer is replaced by an older version.
   */
  keepRestored?: boolean | undefined;
  /** Stop soon after this aborts (Ctrl-C): what is written is made durable and recorded. */
  signal?: AbortSignal | undefined;
  progress?: Progress | undefined;
}

/** One entry of a dry run. */
export interface DryRunEntry {
  path: string;
  kind: 'file' | 'symlink' | 'folder';
  sizeBytes: number;
  /** What the run would do with it. */
  action: 'restore' | 'link' | 'overwrite' | 'exists' | 'found-elsewhere';
}

/** One disk of the plan, by name. */
export interface PlanDoc {
  disk: string;
  files: number;
  bytes: number;
}

/** One path that was not restored, and why. */
export interface PathProblem {
  path: string;
  error: string;
}

/** The `restore --json` document (SPEC §3a), with additions. */
export interface RestoreDoc {
  restored: number;
  bytesRestored: number;
  remaining: number;
  remainingBytes: number;
  next: PlanDoc | null;
  /** The disk used in this run (null with --plan and no disk). */
  disk: string | null;
  catalogue: 'home' | 'disk';
  dest: string;
  /** Files already in DEST from an earlier run (or identical files found there). */
  alreadyRestored: number;
  /** Of `restored`, files hard-linked to the disk's objects (`--link`). */
  linked: number;
  /** Files not written because an `--existing` folder holds the same content at the same path. */
  foundElsewhere: number;
  dirs: number;
  symlinks: number;
  /** Files that no disk in the catalogue holds (or none but this one, where they failed). */
  unavailable: number;
  unavailableBytes: number;
  /** Unsafe catalogue paths, refused (a disk is untrusted input). */
  refused: PathProblem[];
  /** Paths that exist in DEST and were not overwritten. */
  existing: PathProblem[];
  /** Per-file failures (bad object, I/O error). */
  errors: PathProblem[];
  /** The whole disk order for what is missing. */
  plan: PlanDoc[];
  warnings: string[];
  /** True when the run was stopped (Ctrl-C) before the end; `remaining` is then not counted. */
  interrupted: boolean;
  /** Files and bytes this run set out to restore from this disk. */
  planned: { files: number; bytes: number };
  /** True for a dry run: nothing was written; `wouldRestore` says what would have been. */
  dryRun: boolean;
  /** `hdd` or `ssd` (see RestoreOptions.profile): as asked, else as found when the small-file lane started; null when neither. */
  profile: 'hdd' | 'ssd' | null;
  wouldRestore: { files: number; bytes: number; symlinks: number; dirs: number };
}

/** A document with nothing done yet. */
export function emptyDoc(disk: string | null, dest: string, dryRun: boolean): RestoreDoc {
  return {
    restored: 0,
    bytesRestored: 0,
    remaining: 0,
    remainingBytes: 0,
    next: null,
    disk,
    catalogue: 'home',
    dest,
    alreadyRestored: 0,
    linked: 0,
    foundElsewhere: 0,
    dirs: 0,
    symlinks: 0,
    unavailable: 0,
    unavailableBytes: 0,
    refused: [],
    existing: [],
    errors: [],
    plan: [],
    warnings: [],
    profile: null,
    interrupted: false,
    planned: { files: 0, bytes: 0 },
    dryRun,
    wouldRestore: { files: 0, bytes: 0, symlinks: 0, dirs: 0 },
  };
}

/** Add a problem to `list`, up to LIST_CAP entries. */
export function addProblem(list: PathProblem[], p: string, error: string): void {
  if (list.length < LIST_CAP) list.push({ path: p, error });
}

/** Add `text` to the document's warnings unless it is there already. */
export function warnOnce(doc: RestoreDoc, text: string): void {
  if (!doc.warnings.includes(text)) doc.warnings.push(text);
}
