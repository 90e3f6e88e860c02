/**
 * The invariants every fault test ends with (RELIABILITY.md §3, I1–I6). Ground truth is
 * computed here, never asked of distbackup: every file on every disk the test created is hashed,
 * and the home catalogue and the disks' catalogue copies are read directly with better-sqlite3,
 * read-only.
 *
 * - I1 objects: every file under `distbackup-objects/<3 hex>/` with a valid name hashes to its
 *   name and sits in the folder named by its first 3 characters; no symlink anywhere on the disk.
 * - I2 catalogue ⊆ disk: every (object, disk) the home catalogue counts is on that disk and
 *   passes I1.
 * - I3 no copy loss: every referenced object that had ≥ 1 true copy before still has one.
 * - I4 catalogues sound: integrity_check ok on the home catalogue and every disk's copy, which
 *   is not in WAL mode.
 * - I5 convergence: compare a state with a fault-free reference; `.tmp/` empty.
 * - I6 honest exit: a faulted run exits non-zero, with one `distbackup:` line naming the file
 *   and the errno; canaries outside the disk folders and DEST unchanged.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { Run } from './faults.js';

const HASH_RE = /^[0-9a-f]{64}$/;
const PREFIX_RE = /^[0-9a-f]{3}$/;
const OBJECTS = 'distbackup-objects';
const CATALOGUE = 'distbackup.sqlite';

/** A disk folder a test created. */
export interface DiskRef {
  readonly name: string;
  readonly path: string;
}

/** What a test set up: the home data folder and its disks. */
export interface World {
  readonly dataDir: string;
  readonly disks: readonly DiskRef[];
}

const hashCache = new Map<string, string>();

/**
 * SHA-256 of a file, streamed in 1 MiB reads (sparse and large files stay cheap in memory).
 * Cached by (device, inode, size, mtime, ctime): any write, truncation, rename or replacement
 * changes ctime, which no process can set back, so a cached hash is never stale.
 */
export function hashFile(file: string): string {
  const st = fs.statSync(file, { bigint: true });
  const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  const cached = hashCache.get(key);
  if (cached !== undefined) return cached;
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  const digest = h.digest('hex');
  if (hashCache.size > 200_000) hashCache.clear();
  hashCache.set(key, digest);
  return digest;
}

/** The ground truth of one disk folder. */
export interface DiskTruth {
  readonly name: string;
  readonly path: string;
  readonly present: boolean;
  /** Valid objects (name = hash of content, right folder) → size. */
  readonly objects: Map<string, number>;
  /** I1 violations (wrong content under a valid name, wrong folder, symlinks). */
  readonly bad: string[];
  /** Entries of `.tmp/`. */
  readonly tmp: string[];
  /** Entries of `.quarantine/`. */
  readonly quarantine: string[];
  /** Temp files beside the catalogue copy and the json (`.distbackup*.tmp`). */
  readonly rootTemps: string[];
}

function walkForSymlinks(dir: string, out: string[]): void {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isSymbolicLink()) out.push(`I1 symlink on the disk: ${p}`);
    else if (e.isDirectory()) walkForSymlinks(p, out);
  }
}

/** Hash every object on the disk folder `d` and classify what is there. */
export function scanDisk(d: DiskRef): DiskTruth {
  const t: DiskTruth = {
    name: d.name,
    path: d.path,
    present: fs.existsSync(d.path),
    objects: new Map(),
    bad: [],
    tmp: [],
    quarantine: [],
    rootTemps: [],
  };
  if (!t.present) return t;
  walkForSymlinks(d.path, t.bad);
  for (const n of fs.readdirSync(d.path)) if (n.endsWith('.tmp')) t.rootTemps.push(n);
  const objects = path.join(d.path, OBJECTS);
  let prefixes: fs.Dirent[];
  try {
    prefixes = fs.readdirSync(objects, { withFileTypes: true });
  } catch {
    return t;
  }
  for (const p of prefixes) {
    const dir = path.join(objects, p.name);
    if (p.name === '.tmp' || p.name === '.quarantine') {
      const list = p.name === '.tmp' ? t.tmp : t.quarantine;
      if (p.isDirectory()) list.push(...fs.readdirSync(dir));
      continue;
    }
    if (!p.isDirectory()) continue;
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, e.name);
      if (!HASH_RE.test(e.name)) continue; // a stray name: never an object, ignored by the product
      if (!e.isFile()) {
        if (!e.isSymbolicLink()) t.bad.push(`I1 not a regular file under an object name: ${file}`);
        continue;
      }
      if (!PREFIX_RE.test(p.name) || e.name.slice(0, 3) !== p.name) {
        t.bad.push(`I1 object in the wrong folder: ${file}`);
        continue;
      }
      let h: string;
      try {
        h = hashFile(file);
      } catch (err) {
        t.bad.push(`I1 unreadable object ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
        continue;
      }
      if (h !== e.name) t.bad.push(`I1 object does not hash to its name: ${file} (content ${h.slice(0, 12)}…)`);
      else t.objects.set(e.name, fs.statSync(file).size);
    }
  }
  return t;
}

/** What the home catalogue says. */
export interface HomeState {
  readonly integrity: string;
  /** name → id of registered disks. */
  readonly diskIds: Map<string, number>;
  /** disk name → hashes it counts as copies. */
  readonly copies: Map<string, Set<string>>;
  /** Hashes referenced by current regular files. */
  readonly referenced: Set<string>;
  /** vpath (hex) → hash (or null, not hashed yet) of every regular file. */
  readonly files: Map<string, string | null>;
  /** Smallest counted copies over referenced objects (null: none referenced). */
  readonly minCopies: number | null;
}

/** Open a SQLite file read-only and run `fn`; always closes it. */
export function withReadonlyDb<T>(file: string, fn: (db: Database.Database) => T): T {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** Read the home catalogue of `dataDir` (null when there is none yet). */
export function readHome(dataDir: string): HomeState | null {
  const file = path.join(dataDir, CATALOGUE);
  if (!fs.existsSync(file)) return null;
  return withReadonlyDb(file, (db) => {
    const integrity = String(db.pragma('integrity_check', { simple: true }));
    const diskIds = new Map<string, number>();
    const byId = new Map<number, string>();
    for (const r of db.prepare('SELECT id, name FROM disks').all() as { id: number; name: string }[]) {
      diskIds.set(r.name, r.id);
      byId.set(r.id, r.name);
    }
    const copies = new Map<string, Set<string>>();
    for (const name of diskIds.keys()) copies.set(name, new Set());
    for (const r of db
      .prepare('SELECT c.disk_id AS d, o.hash AS h FROM copies c JOIN objects o ON o.id = c.object_id')
      .all() as { d: number; h: string }[]) {
      copies.get(byId.get(r.d) ?? `#${r.d}`)?.add(r.h);
    }
    const referenced = new Set<string>();
    const files = new Map<string, string | null>();
    for (const r of db
      .prepare(
        'SELECT f.vpath AS v, o.hash AS h FROM files f LEFT JOIN objects o ON o.id = f.object_id WHERE f.kind = 0',
      )
      .all() as { v: Buffer; h: string | null }[]) {
      files.set(Buffer.from(r.v).toString('hex'), r.h);
      if (r.h !== null) referenced.add(r.h);
    }
    let minCopies: number | null = null;
    for (const h of referenced) {
      let n = 0;
      for (const set of copies.values()) if (set.has(h)) n += 1;
      minCopies = minCopies === null ? n : Math.min(minCopies, n);
    }
    return { integrity, diskIds, copies, referenced, files, minCopies };
  });
}

/** Ground truth of a world: every disk scanned, the catalogue read, true copies per object. */
export interface Truth {
  readonly disks: DiskTruth[];
  readonly home: HomeState | null;
  /** hash → number of disks really holding a valid copy. */
  readonly trueCopies: Map<string, number>;
}

export function groundTruth(world: World): Truth {
  const disks = world.disks.map(scanDisk);
  const trueCopies = new Map<string, number>();
  for (const d of disks) for (const h of d.objects.keys()) trueCopies.set(h, (trueCopies.get(h) ?? 0) + 1);
  return { disks, home: readHome(world.dataDir), trueCopies };
}

/** I4 on a disk's catalogue copy: not WAL (header bytes 18/19 = 1), integrity_check ok. */
export function checkDiskCatalogue(d: DiskRef, required: boolean): string[] {
  const file = path.join(d.path, CATALOGUE);
  if (!fs.existsSync(file)) return required ? [`I4 ${d.name}: no ${CATALOGUE} on the disk`] : [];
  const out: string[] = [];
  const head = Buffer.alloc(100);
  const fd = fs.openSync(file, 'r');
  let n: number;
  try {
    n = fs.readSync(fd, head, 0, 100, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (n < 100 || head.subarray(0, 16).toString('latin1') !== 'SQLite format 3\0') {
    return [`I4 ${d.name}: ${CATALOGUE} is not a SQLite database (${n} bytes)`];
  }
  if (head[18] === 2 || head[19] === 2) out.push(`I4 ${d.name}: ${CATALOGUE} is in WAL mode`);
  for (const side of ['-wal', '-journal']) {
    if (fs.existsSync(file + side)) out.push(`I4 ${d.name}: ${CATALOGUE}${side} left beside the copy`);
  }
  try {
    const ok = withReadonlyDb(file, (db) => String(db.pragma('integrity_check', { simple: true })));
    if (ok !== 'ok') out.push(`I4 ${d.name}: integrity_check: ${ok}`);
  } catch (err) {
    out.push(`I4 ${d.name}: cannot open ${CATALOGUE} read-only: ${(err as Error).message}`);
  }
  return out;
}

export interface CheckOptions {
  /** Truth before the fault, for I3. */
  readonly before?: Truth | undefined;
  /** Disks that must hold a catalogue copy (synced at least once before). */
  readonly disksWithCatalogue?: readonly string[];
  /** Objects (hashes) damaged on purpose (bitrot) that I1 and I2 must not report. */
  readonly planted?: ReadonlySet<string>;
}

/** I1–I4 (and the raw truth). Returns the violations, each one line. */
export function checkInvariants(world: World, opts: CheckOptions = {}): { truth: Truth; violations: string[] } {
  const truth = groundTruth(world);
  const v: string[] = [];
  // I1
  for (const d of truth.disks) {
    for (const b of d.bad) if (![...(opts.planted ?? [])].some((p) => b.includes(p))) v.push(b);
  }
  // I4 home
  if (truth.home !== null && truth.home.integrity !== 'ok') v.push(`I4 home: integrity_check: ${truth.home.integrity}`);
  // I2
  if (truth.home !== null) {
    for (const [name, hashes] of truth.home.copies) {
      const d = truth.disks.find((x) => x.name === name);
      if (d === undefined) continue; // a disk this test did not create (never the case today)
      for (const h of hashes) {
        if (opts.planted?.has(h) === true) continue; // rotted on purpose behind the product's back
        if (!d.objects.has(h)) v.push(`I2 ${name}: copy of ${h.slice(0, 12)}… counted but not (valid) on the disk`);
      }
    }
  }
  // I3
  if (opts.before !== undefined && truth.home !== null) {
    const beforeRefs = opts.before.home?.referenced ?? new Set<string>();
    for (const h of beforeRefs) {
      if (!truth.home.referenced.has(h)) continue;
      const was = opts.before.trueCopies.get(h) ?? 0;
      const now = truth.trueCopies.get(h) ?? 0;
      if (now < Math.min(was, 1)) v.push(`I3 object ${h.slice(0, 12)}… went from ${was} true copies to ${now}`);
    }
  }
  // I4 disks
  const need = new Set(opts.disksWithCatalogue ?? []);
  for (const d of world.disks) v.push(...checkDiskCatalogue(d, need.has(d.name)));
  return { truth, violations: v };
}

/** The comparable state of a world: objects per disk and the minimum copy count. */
export interface StateSummary {
  readonly perDisk: Record<string, string[]>;
  readonly minCopies: number | null;
}

export function summarize(truth: Truth): StateSummary {
  const perDisk: Record<string, string[]> = {};
  for (const d of truth.disks) perDisk[d.name] = [...d.objects.keys()].sort();
  return { perDisk, minCopies: truth.home?.minCopies ?? null };
}

/** I5: differences between a reference state and the state reached after a fault and re-run. */
export function diffStates(ref: StateSummary, got: StateSummary): string[] {
  const out: string[] = [];
  if (ref.minCopies !== got.minCopies) out.push(`I5 minCopies ${got.minCopies}, reference ${ref.minCopies}`);
  for (const [name, want] of Object.entries(ref.perDisk)) {
    const have = new Set(got.perDisk[name] ?? []);
    const wantSet = new Set(want);
    const missing = want.filter((h) => !have.has(h)).length;
    const extra = [...have].filter((h) => !wantSet.has(h)).length;
    if (missing + extra > 0)
      out.push(`I5 ${name}: ${missing} objects missing and ${extra} extra against the reference`);
  }
  return out;
}

/** I5: `.tmp/` empty and no temp files at the disk root after a clean run. */
export function checkClean(truth: Truth): string[] {
  const v: string[] = [];
  for (const d of truth.disks) {
    if (d.tmp.length > 0) v.push(`I5 ${d.name}: ${d.tmp.length} files left in .tmp/`);
    if (d.rootTemps.length > 0) v.push(`I5 ${d.name}: temp files left at the disk root: ${d.rootTemps.join(', ')}`);
  }
  return v;
}

/**
 * I6: a faulted run exits with one of `codes` (never 0), with exactly one `distbackup:` error
 * line, which matches each of `mentions` (the file, the errno).
 */
export function checkHonestExit(r: Run, codes: readonly number[], mentions: readonly (string | RegExp)[]): string[] {
  const v: string[] = [];
  if (r.signal !== null) return [`I6 the run died of ${r.signal}`];
  if (r.code === 0 || !codes.includes(r.code ?? -1)) v.push(`I6 exit ${r.code}, expected one of ${codes.join('/')}`);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('distbackup: '));
  if (lines.length !== 1) {
    v.push(`I6 ${lines.length} error lines on stderr, expected 1: ${r.stderr.slice(0, 500).replace(/\n/g, ' | ')}`);
    return v;
  }
  const line = lines[0] ?? '';
  for (const m of mentions) {
    const ok = typeof m === 'string' ? line.includes(m) : m.test(line);
    if (!ok) v.push(`I6 the error line does not name ${String(m)}: ${line}`);
  }
  return v;
}

/** Hash every file under `dir` (recursive, by relative path; symlinks by their target). */
export function treeDigest(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string, rel: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isSymbolicLink()) out.set(r, `link:${fs.readlinkSync(p)}`);
      else if (e.isDirectory()) {
        out.set(`${r}/`, 'dir');
        walk(p, r);
      } else if (e.isFile()) out.set(r, hashFile(p));
      else out.set(r, 'special');
    }
  };
  walk(dir, '');
  return out;
}

/**
 * Canaries: a file with known content in each of `dirs` (folders beside a disk or DEST, the
 * mount point's root, /tmp). `check()` lists every change under those folders since planting,
 * ignoring `exclude`d subfolders (the disk folder or DEST themselves).
 */
export function plantCanaries(dirs: readonly string[], exclude: readonly string[] = []): { check(): string[] } {
  const before = new Map<string, Map<string, string>>();
  for (const d of dirs) {
    fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(d, 'CANARY-do-not-touch'), `canary ${d}\n`);
    before.set(d, treeDigest(d));
  }
  const skip = (d: string, rel: string): boolean =>
    exclude.some((x) => {
      const r = path.relative(d, x);
      return r !== '' && !r.startsWith('..') && (rel === `${r}/` || rel.startsWith(`${r}/`));
    });
  return {
    check(): string[] {
      const v: string[] = [];
      for (const d of dirs) {
        const was = before.get(d) ?? new Map<string, string>();
        const now = treeDigest(d);
        for (const [k, h] of now) {
          if (skip(d, k)) continue;
          if (!was.has(k)) v.push(`I6 new entry outside the disk/DEST: ${path.join(d, k)}`);
          else if (was.get(k) !== h) v.push(`I6 changed outside the disk/DEST: ${path.join(d, k)}`);
        }
        for (const k of was.keys()) {
          if (!skip(d, k) && !now.has(k)) v.push(`I6 removed outside the disk/DEST: ${path.join(d, k)}`);
        }
      }
      return v;
    },
  };
}
