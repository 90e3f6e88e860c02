/**
 * The fault suite's fixture: a seeded source tree (~300 files, ~20 MB at scale 1: small,
 * medium and a few larger files, duplicates, hard links, an empty file, nested folders) mapped
 * as `/data`, and three disks registered through the real CLI: `d1` big enough for everything,
 * `d2` and `d3` at about 70 % of the data. Disks are plain folders, or ext4 loop images when a
 * test asks for a real filesystem. `save()` and `restore()` put the data folder and the disks
 * back in a saved state, so many kills can start from the same point without redoing the setup.
 */
import { createCipheriv, createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { cli, cliJson, expectExit, type Rng, type Run, type RunOptions, type Started, startCli } from './faults.js';
import { copying, waitUntil } from './faults-os.js';
import {
  checkClean,
  checkInvariants,
  type DiskRef,
  groundTruth,
  plantCanaries,
  type Truth,
  type World,
} from './invariants.js';
import { cannotMount, faultDir, type Mounted, mountExt4, mountTmpfsQuiet } from './mounts.js';

/** Deterministic pseudo-random bytes: AES-256-CTR over zeros, keyed by `key`. */
export function seededBytes(key: string, size: number): Buffer {
  const k = createHash('sha256').update(key).digest();
  const c = createCipheriv('aes-256-ctr', k, Buffer.alloc(16));
  return Buffer.concat([c.update(Buffer.alloc(size)), c.final()]);
}

/** Bytes a planner counts for an object (SPEC §5: rounded up to 4 KiB, plus 4 KiB). */
export function allocated(size: number): number {
  return Math.ceil(size / 4096) * 4096 + 4096;
}

export interface TreeOptions {
  /** 1 = ~300 files and ~20 MB; 0.2 = ~60 files, ~4 MB. */
  scale?: number;
  /** Sizes of extra files (`big/large<k>.bin`), beside the tree's files of at most 800 KiB. */
  largeFiles?: readonly number[];
}

/** A source tree written to `dir`: relative path → content (hard links share content). */
export function writeSourceTree(dir: string, rng: Rng, opts: TreeOptions = {}): Map<string, Buffer> {
  const scale = opts.scale ?? 1;
  const files = new Map<string, Buffer>();
  const dirs = ['', 'a', 'a/b', 'a/b/c', 'photos', 'photos/2019', 'photos/2020', 'docs', 'video', 'misc/deep/er'];
  const counts: [number, number, number][] = [
    [Math.round(240 * scale), 1024, 48 * 1024],
    [Math.round(50 * scale), 64 * 1024, 256 * 1024],
    [Math.max(1, Math.round(10 * scale)), 400 * 1024, 800 * 1024],
  ];
  let i = 0;
  for (const [n, lo, hi] of counts) {
    for (let k = 0; k < n; k++) {
      const rel = path.join(rng.pick(dirs), `f${String(i).padStart(4, '0')}.bin`);
      files.set(rel, seededBytes(`${rng.int(0, 2 ** 31)}-${i}`, rng.int(lo, hi)));
      i += 1;
    }
  }
  // Duplicates: same content under other names (one object, several files).
  const names = [...files.keys()];
  for (let k = 0; k < Math.max(2, Math.round(8 * scale)); k++) {
    const from = rng.pick(names);
    const content = files.get(from);
    if (content !== undefined) files.set(path.join(rng.pick(dirs), `dup${k}.bin`), content);
  }
  for (const [k, size] of (opts.largeFiles ?? []).entries()) {
    files.set(path.join('big', `large${k}.bin`), seededBytes(`large-${rng.int(0, 2 ** 31)}-${k}`, size));
  }
  files.set('empty.txt', Buffer.alloc(0));
  for (const [rel, content] of files) {
    const p = path.join(dir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
  }
  // Hard links: two paths, one inode.
  const linked = names.slice(0, 2);
  for (const [k, from] of linked.entries()) {
    const to = path.join('a', `hardlink${k}.bin`);
    fs.mkdirSync(path.join(dir, 'a'), { recursive: true });
    fs.linkSync(path.join(dir, from), path.join(dir, to));
    const content = files.get(from);
    if (content !== undefined) files.set(to, content);
  }
  return files;
}

export interface FixtureOptions extends TreeOptions {
  rng: Rng;
  /** Put the disks on ext4 loop images (null when they cannot be mounted: the test was skipped). */
  ext4?: boolean;
  /** Fraction of the data that d2 and d3 hold (default 0.7). */
  smallFraction?: number;
  /** Register only these of d1, d2, d3 (default all three; each `disk add` is a CLI run). */
  only?: readonly string[];
}

/** A ready world: source mapped, disks registered (update and sync are left to the test). */
export interface Fixture extends World {
  readonly root: string;
  readonly src: string;
  readonly dataDir: string;
  readonly disks: DiskRef[];
  readonly sizes: Record<string, number>;
  readonly tree: Map<string, Buffer>;
  /** Sum of allocated bytes over distinct contents. */
  readonly allocatedBytes: number;
  readonly mounts: Mounted[];
  /** Folders beside the disks and the data, where canaries go. */
  readonly outside: string;
  run(args: string[], opts?: RunOptions): Run;
  json<T = Record<string, unknown>>(args: string[], opts?: RunOptions): Run & { json: T | undefined };
  /** `update` that must succeed. */
  update(): Run;
  /** `sync NAME` that must succeed. */
  sync(name: string): Run;
  /** Save the data folder and the disks (named state). */
  save(label: string): void;
  /** Put a saved state back in place (same paths). */
  restore(label: string): void;
  disk(name: string): DiskRef;
}

function copyInto(from: string, to: string): void {
  fs.cpSync(from, to, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
}

/**
 * Make `to` an exact copy of `from` (which `copyInto` wrote with timestamps kept), copying only
 * what differs: a regular file of the same size and mtime is left alone (objects are written
 * once and never modified in place; a rewrite changes the mtime), everything else is replaced,
 * and what `from` lacks is removed. The home catalogue folder is always copied whole.
 */
function mirror(from: string, to: string, whole: boolean): void {
  if (whole) {
    for (const e of fs.readdirSync(to)) fs.rmSync(path.join(to, e), { recursive: true, force: true });
    copyInto(from, to);
    return;
  }
  const want = new Set(fs.readdirSync(from));
  for (const e of fs.readdirSync(to)) {
    if (!want.has(e)) fs.rmSync(path.join(to, e), { recursive: true, force: true });
  }
  for (const e of want) {
    const a = path.join(from, e);
    const b = path.join(to, e);
    const sa = fs.lstatSync(a);
    const sb = fs.lstatSync(b, { throwIfNoEntry: false });
    if (sa.isDirectory()) {
      if (sb !== undefined && !sb.isDirectory()) fs.rmSync(b, { recursive: true, force: true });
      if (sb === undefined || !sb.isDirectory()) fs.mkdirSync(b);
      mirror(a, b, false);
      fs.chmodSync(b, sa.mode & 0o7777);
      fs.utimesSync(b, sa.atime, sa.mtime);
      continue;
    }
    if (sb !== undefined && sa.isFile() && sb.isFile() && sa.size === sb.size && sa.mtimeMs === sb.mtimeMs) {
      if ((sb.mode & 0o7777) !== (sa.mode & 0o7777)) fs.chmodSync(b, sa.mode & 0o7777);
      continue;
    }
    if (sb !== undefined) fs.rmSync(b, { recursive: true, force: true });
    fs.cpSync(a, b, { preserveTimestamps: true, verbatimSymlinks: true });
  }
}

/** Build the fixture under a fresh temp folder; null when the test was skipped (no ext4 here). */
export function makeFixture(t: TestContext, opts: FixtureOptions): Fixture | null {
  // On a tmpfs where possible: creating and deleting thousands of files on this machine's ext4
  // slows down for tens of seconds after a mass delete (NODE20.md), and every kill restores a state.
  let root = faultDir(t, 'fx');
  const tmpfs = cannotMount() === null ? mountTmpfsQuiet(t, 1024 * 1024 * 1024) : null;
  if (tmpfs !== null) root = tmpfs.dir;
  const src = path.join(root, 'src');
  const dataDir = path.join(root, 'home');
  const outside = path.join(root, 'outside');
  fs.mkdirSync(src);
  fs.mkdirSync(outside);
  const tree = writeSourceTree(src, opts.rng, opts);
  const distinct = new Map<string, number>();
  for (const c of tree.values()) distinct.set(createHash('sha256').update(c).digest('hex'), c.length);
  let allocatedBytes = 0;
  for (const s of distinct.values()) allocatedBytes += allocated(s);
  const frac = opts.smallFraction ?? 0.7;
  const sizes: Record<string, number> = {
    d1: Math.ceil(allocatedBytes * 1.5),
    d2: Math.floor(allocatedBytes * frac),
    d3: Math.floor(allocatedBytes * frac),
  };
  const mounts: Mounted[] = [];
  const disks: DiskRef[] = [];
  for (const name of Object.keys(sizes).filter((n) => opts.only === undefined || opts.only.includes(n))) {
    let base = path.join(root, 'mnt', name);
    if (opts.ext4 === true) {
      const m = mountExt4(t, { sizeBytes: Math.max(16 << 20, Math.ceil((sizes[name] ?? 0) * 1.3)) });
      if (m === null) return null;
      mounts.push(m);
      base = m.dir;
    }
    const p = path.join(base, 'backup');
    fs.mkdirSync(p, { recursive: true });
    disks.push({ name, path: p });
  }
  const saved = new Map<string, string[]>();
  const dirsToSave = (): string[] => [dataDir, ...disks.map((d) => d.path)];
  const fx: Fixture = {
    root,
    src,
    dataDir,
    disks,
    sizes,
    tree,
    allocatedBytes,
    mounts,
    outside,
    run: (args, o) => cli(dataDir, args, o),
    json: (args, o) => cliJson(dataDir, args, o),
    update() {
      const r = cli(dataDir, ['update', '--quiet']);
      expectExit(r, 0, 'update');
      return r;
    },
    sync(name) {
      const r = cli(dataDir, ['sync', name, '--quiet']);
      expectExit(r, 0, `sync ${name}`);
      return r;
    },
    save(label) {
      const dest = path.join(root, 'saved', label);
      fs.rmSync(dest, { recursive: true, force: true });
      const list: string[] = [];
      for (const [i, d] of dirsToSave().entries()) {
        const to = path.join(dest, String(i));
        fs.mkdirSync(to, { recursive: true });
        if (fs.existsSync(d)) copyInto(d, to);
        list.push(to);
      }
      saved.set(label, list);
    },
    restore(label) {
      const list = saved.get(label);
      if (list === undefined) throw new Error(`no saved state ${label}`);
      for (const [i, d] of dirsToSave().entries()) {
        fs.mkdirSync(d, { recursive: true });
        const from = list[i];
        if (from !== undefined) mirror(from, d, d === dataDir);
      }
    },
    disk(name) {
      const d = disks.find((x) => x.name === name);
      if (d === undefined) throw new Error(`no disk ${name}`);
      return d;
    },
  };
  expectExit(fx.run(['source', 'map', '/data', src]), 0, 'source map');
  for (const d of disks) {
    expectExit(fx.run(['disk', 'add', d.name, d.path, '--size', String(sizes[d.name])]), 0, `disk add ${d.name}`);
  }
  return fx;
}

/** A sync under way onto a disk on a test filesystem, with what to check it against. */
export interface SyncUnderWay {
  readonly disk: DiskRef;
  /** The state before the sync (after update). */
  readonly before: Truth;
  readonly canaries: { check(): string[] };
  readonly sync: Started;
}

/**
 * Register `dir/backup` (on a filesystem the test mounted) as disk `name` sized twice the data,
 * run update, plant canaries beside it, and start `sync NAME` throttled to 1 MB/s with batches of
 * 2 files; resolves once the sync is copying (so a fault injected then lands mid-copy).
 */
export async function startSyncOnto(fx: Fixture, dir: string, name: string, timeoutMs: number): Promise<SyncUnderWay> {
  const disk = { name, path: path.join(dir, 'backup') };
  fs.mkdirSync(disk.path);
  expectExit(fx.run(['disk', 'add', name, disk.path, '--size', String(fx.allocatedBytes * 2)]), 0, `disk add ${name}`);
  fx.disks.push(disk);
  fx.update();
  const before = groundTruth(fx);
  const canaries = plantCanaries(
    [fx.outside],
    fx.disks.map((d) => d.path),
  );
  const sync = startCli(fx.dataDir, ['sync', name, '--quiet', '--bwlimit', '1M', '--fsync-batch', '2'], { timeoutMs });
  const started = await waitUntil(sync, copying(disk.path));
  if (!started || sync.child.exitCode !== null) throw new Error(`the sync of ${name} never started copying`);
  return { disk, before, canaries, sync };
}

/**
 * After the fault is gone: the next plain `sync NAME` completes, the invariants hold with the
 * disk's catalogue copy required, nothing is left unclean, the disk holds every referenced object
 * and no canary changed. Returns the violations, each prefixed with `label`.
 */
export function resyncCompletes(fx: Fixture, w: SyncUnderWay, label: string): string[] {
  const v: string[] = [];
  const name = w.disk.name;
  const again = fx.run(['sync', name, '--quiet']);
  if (again.code !== 0) v.push(`the sync ${label} exited ${again.code}: ${again.stderr.slice(0, 300)}`);
  const after = checkInvariants(fx, { before: w.before, disksWithCatalogue: [name] });
  v.push(...after.violations, ...checkClean(after.truth));
  const held = after.truth.disks.find((d) => d.name === name)?.objects.size ?? 0;
  const referenced = after.truth.home?.referenced.size ?? 0;
  if (held < referenced) v.push(`${name} holds ${held} of ${referenced} referenced objects after the re-run`);
  v.push(...w.canaries.check());
  return v;
}
