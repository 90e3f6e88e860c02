/**
 * Real small filesystems for the fault suite (RELIABILITY.md §1): tmpfs (ENOSPC, inode
 * exhaustion), ext4 loop images (ENOSPC, `remount,ro` → EROFS), a btrfs image with one file's
 * data byte flipped (a real EIO on exactly that file), and FUSE exFAT / FAT / NTFS images.
 * Every mount returns its cleanup and also registers it on the test and on process exit; mount
 * points live under `distbackup-fault-<pid>-*` temp folders, so mounts left by a process that
 * died are swept by the next run. When a mount cannot be made (not root, tool missing) the
 * helpers return null after `skipTest` printed `SKIPPED: <test> (<reason>)`; under `CI=true`
 * with the tools installed that is a failure instead.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { have, IS_ROOT, skipTest } from './faults.js';

const PREFIX = `distbackup-fault-${process.pid}-`;

/** A mounted filesystem. `dir` is the mount point. */
export interface Mounted {
  readonly dir: string;
  readonly kind: 'tmpfs' | 'ext4' | 'btrfs' | 'exfat' | 'vfat' | 'ntfs';
  /** The image file, for loop and FUSE mounts. */
  readonly image?: string;
  /** The loop device, when one was attached by us. */
  loop?: string;
  /** PID of the FUSE daemon, when there is one. */
  fusePid?: number;
  /** Unmount and detach; idempotent, never throws. */
  cleanup(): void;
}

const live = new Set<Mounted>();

function run(cmd: string, args: string[], timeoutMs = 30_000): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL' });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

/** A fresh folder for a mount point or an image, under the OS temp dir, owned by this process. */
export function faultDir(t: TestContext | undefined, label: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}${label}-`));
  t?.after(() => {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {}
  });
  return dir;
}

function isMountPoint(dir: string): boolean {
  try {
    const mounts = fs.readFileSync('/proc/self/mounts', 'utf8');
    return mounts.split('\n').some((l) => l.split(' ')[1] === dir);
  } catch {
    return false;
  }
}

function unmount(dir: string): void {
  for (let i = 0; i < 20 && isMountPoint(dir); i++) {
    if (!run('umount', [dir]).ok) {
      if (i >= 2) run('umount', ['-l', dir]);
      spawnSync('sleep', ['0.1']);
    }
  }
}

function register(t: TestContext | undefined, m: Omit<Mounted, 'cleanup'>): Mounted {
  let done = false;
  const mounted: Mounted = {
    ...m,
    cleanup: () => {
      if (done) return;
      done = true;
      live.delete(mounted);
      if (mounted.kind === 'exfat' || mounted.kind === 'vfat' || mounted.kind === 'ntfs') {
        run('fusermount', ['-u', '-z', mounted.dir]);
      }
      unmount(mounted.dir);
      if (mounted.fusePid !== undefined) {
        try {
          process.kill(mounted.fusePid, 'SIGKILL');
        } catch {}
      }
      if (mounted.loop !== undefined) run('losetup', ['-d', mounted.loop]);
      try {
        fs.rmSync(mounted.dir, { recursive: true, force: true });
      } catch {}
    },
  };
  live.add(mounted);
  t?.after(() => mounted.cleanup());
  return mounted;
}

// A process that ends for any reason (including a failed assertion) unmounts what it mounted.
process.on('exit', () => {
  for (const m of [...live]) m.cleanup();
});

/**
 * Unmount what an earlier test process left behind: mount points named
 * `distbackup-fault-<pid>-…` whose process is gone. Run once per test file.
 */
export function sweepStaleMounts(): void {
  let mounts: string[];
  try {
    mounts = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n');
  } catch {
    return;
  }
  for (const line of mounts) {
    const dir = line.split(' ')[1];
    if (dir === undefined) continue;
    const m = /\/distbackup-fault-(\d+)-/.exec(dir);
    if (m === null) continue;
    const pid = Number(m[1]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (!alive) {
      run('umount', ['-l', dir]);
    }
  }
}

/** Why mounting cannot work here, or null when it should. */
export function cannotMount(): string | null {
  if (!IS_ROOT) return 'not root: mount needs CAP_SYS_ADMIN';
  if (!have('mount')) return 'mount not installed';
  return null;
}

function skipMount(t: TestContext, reason: string, tools: string[]): null {
  skipTest(t, reason, IS_ROOT && tools.every(have));
  return null;
}

/** A tmpfs of `sizeBytes`, optionally with an inode cap (`nr_inodes`). */
export function mountTmpfs(t: TestContext, opts: { sizeBytes: number; inodes?: number }): Mounted | null {
  const why = cannotMount();
  if (why !== null) return skipMount(t, why, ['mount']);
  const dir = faultDir(t, 'tmpfs');
  const o = [`size=${opts.sizeBytes}`, ...(opts.inodes === undefined ? [] : [`nr_inodes=${opts.inodes}`])];
  const r = run('mount', ['-t', 'tmpfs', '-o', o.join(','), 'tmpfs', dir]);
  if (!r.ok) return skipMount(t, `mount -t tmpfs failed: ${r.out}`, ['mount']);
  return register(t, { dir, kind: 'tmpfs' });
}

/** A tmpfs for scratch space, or null (no skip) when it cannot be mounted. */
export function mountTmpfsQuiet(t: TestContext, sizeBytes: number): Mounted | null {
  if (cannotMount() !== null) return null;
  const dir = faultDir(t, 'scratch');
  if (!run('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', dir]).ok) return null;
  return register(t, { dir, kind: 'tmpfs' });
}

/** An ext4 image of `sizeBytes` mounted through a loop device. */
export function mountExt4(t: TestContext, opts: { sizeBytes: number; options?: string[] }): Mounted | null {
  const why = cannotMount();
  if (why !== null) return skipMount(t, why, ['mkfs.ext4']);
  if (!have('mkfs.ext4')) return skipMount(t, 'mkfs.ext4 not installed (e2fsprogs)', ['mkfs.ext4']);
  const work = faultDir(t, 'ext4img');
  const image = path.join(work, 'disk.img');
  const dir = faultDir(t, 'ext4');
  fs.writeFileSync(image, '');
  fs.truncateSync(image, opts.sizeBytes);
  // -m 0: no blocks reserved for root (the test runs as root and would see them as free).
  const mk = run('mkfs.ext4', ['-q', '-F', '-m', '0', image]);
  if (!mk.ok) return skipMount(t, `mkfs.ext4 failed: ${mk.out}`, ['mkfs.ext4']);
  const r = run('mount', ['-o', ['loop', ...(opts.options ?? [])].join(','), image, dir]);
  if (!r.ok) return skipMount(t, `mount -o loop failed: ${r.out}`, ['mkfs.ext4']);
  fs.rmSync(path.join(dir, 'lost+found'), { recursive: true, force: true });
  return register(t, { dir, kind: 'ext4', image });
}

/**
 * Make a mounted ext4 read-only now, as the kernel does when a failing disk reports an error:
 * `mount -o remount,ro` when the filesystem lets it (no file open for writing), else an ext4
 * error through `/sys/fs/ext4/<dev>/trigger_fs_error` on a filesystem mounted with
 * `errors=remount-ro` (a writer holding a file open does not stop that one). Returns which.
 */
export function forceReadOnly(m: Mounted): 'remount' | 'fs-error' {
  if (run('mount', ['-o', 'remount,ro', m.dir]).ok) return 'remount';
  const source = run('findmnt', ['-n', '-o', 'SOURCE', m.dir]).out.split('\n')[0] ?? '';
  const trigger = `/sys/fs/ext4/${path.basename(source)}/trigger_fs_error`;
  if (!fs.existsSync(trigger)) throw new Error(`${m.dir}: remount,ro refused and no ${trigger}`);
  fs.writeFileSync(trigger, '1');
  return 'fs-error';
}

/** Make a filesystem that `forceReadOnly` turned read-only writable again (remount, or fsck and mount). */
export function makeWritable(m: Mounted, how: 'remount' | 'fs-error'): void {
  if (how === 'remount') {
    remount(m, 'rw');
    return;
  }
  unmount(m.dir);
  if (m.image === undefined) throw new Error(`${m.dir}: no image to check`);
  run('e2fsck', ['-f', '-y', m.image]);
  const r = run('mount', ['-o', 'loop,errors=remount-ro', m.image, m.dir]);
  if (!r.ok) throw new Error(`mount of ${m.image} after e2fsck failed: ${r.out}`);
}

/** `mount -o remount,ro` (or `rw`): writes and unlinks then fail with EROFS, reads work. */
export function remount(m: Mounted, mode: 'ro' | 'rw'): void {
  const r = run('mount', ['-o', `remount,${mode}`, m.dir]);
  if (!r.ok) throw new Error(`remount,${mode} ${m.dir}: ${r.out}`);
}

/**
 * A btrfs image (128 MiB) holding `files` (relative path → content), mounted. Null (after a
 * skip) when btrfs cannot be used here. With `flipInImage` a file's data can then be damaged in
 * the image so that reading it fails with a real EIO (checksum failure).
 */
export function mountBtrfs(t: TestContext, files: Record<string, Buffer> = {}): Mounted | null {
  const why = cannotMount();
  if (why !== null) return skipMount(t, why, ['mkfs.btrfs']);
  if (!have('mkfs.btrfs')) return skipMount(t, 'mkfs.btrfs not installed (btrfs-progs)', ['mkfs.btrfs']);
  const work = faultDir(t, 'btrfsimg');
  const image = path.join(work, 'disk.img');
  const dir = faultDir(t, 'btrfs');
  fs.writeFileSync(image, '');
  fs.truncateSync(image, 128 * 1024 * 1024);
  const mk = run('mkfs.btrfs', ['-q', '-f', image]);
  if (!mk.ok) return skipMount(t, `mkfs.btrfs failed: ${mk.out}`, ['mkfs.btrfs']);
  const r = run('mount', ['-o', 'loop', image, dir]);
  if (!r.ok) return skipMount(t, `mount btrfs failed: ${r.out}`, ['mkfs.btrfs']);
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(dir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
  }
  return register(t, { dir, kind: 'btrfs', image });
}

/**
 * Flip one byte of the file whose content is `content` (> 8 KiB, so not inlined in metadata)
 * inside the btrfs image of `m`: unmount, patch the image, mount again (so no cached page hides
 * the damage). Reading that file then fails with EIO; every other file reads fine.
 */
export function flipInImage(m: Mounted, content: Buffer): void {
  if (m.image === undefined || m.kind !== 'btrfs') throw new Error('flipInImage needs a btrfs image');
  if (content.length <= 8192) throw new Error('the damaged file must be larger than 8 KiB');
  run('sync', []);
  unmount(m.dir);
  const img = fs.readFileSync(m.image);
  const needle = content.subarray(0, 4096);
  const at = img.indexOf(needle);
  if (at < 0 || img.indexOf(needle, at + 1) >= 0) {
    throw new Error('the file data was not found exactly once in the btrfs image');
  }
  const fd = fs.openSync(m.image, 'r+');
  try {
    fs.writeSync(fd, Buffer.from([(img[at + 100] ?? 0) ^ 0xff]), 0, 1, at + 100);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  const r = run('mount', ['-o', 'loop', m.image, m.dir]);
  if (!r.ok) throw new Error(`remount of the btrfs image failed: ${r.out}`);
}

/** A btrfs image holding `files`, where the data of `badFile` reads with EIO. */
export function mountBtrfsWithBadFile(t: TestContext, files: Record<string, Buffer>, badFile: string): Mounted | null {
  const bad = files[badFile];
  if (bad === undefined) throw new Error(`${badFile}: not among the files`);
  const m = mountBtrfs(t, files);
  if (m === null) return null;
  flipInImage(m, bad);
  return m;
}

function pidOfFuse(dir: string, daemon: string): number | undefined {
  const r = run('pgrep', ['-f', '-n', `${daemon}.*${dir}`]);
  const pid = Number(r.out.split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * A FUSE filesystem on an image: exFAT (mount.exfat-fuse over a loop device), FAT (fusefat on
 * the image) or NTFS (ntfs-3g with `windows_names`). `fusePid` is the daemon's PID, so a test can
 * SIGKILL it to pull the disk out (every later operation then fails with ENOTCONN).
 */
export function mountFuse(
  t: TestContext,
  kind: 'exfat' | 'vfat' | 'ntfs',
  sizeBytes = 64 * 1024 * 1024,
): Mounted | null {
  const tools = {
    exfat: ['mkfs.exfat', 'mount.exfat-fuse', 'losetup'],
    vfat: ['mkfs.vfat', 'fusefat'],
    ntfs: ['mkntfs', 'ntfs-3g', 'losetup'],
  }[kind];
  const why = cannotMount();
  if (why !== null) return skipMount(t, why, tools);
  if (!fs.existsSync('/dev/fuse')) return skipMount(t, 'no /dev/fuse', tools);
  const missing = tools.filter((x) => !have(x));
  if (missing.length > 0) return skipMount(t, `${missing.join(', ')} not installed`, tools);
  const work = faultDir(t, `${kind}img`);
  const image = path.join(work, 'disk.img');
  const dir = faultDir(t, kind);
  fs.writeFileSync(image, '');
  fs.truncateSync(image, sizeBytes);
  const mk =
    kind === 'exfat'
      ? run('mkfs.exfat', [image])
      : kind === 'vfat'
        ? run('mkfs.vfat', [image])
        : run('mkntfs', ['-F', '-f', '-q', image]);
  if (!mk.ok) return skipMount(t, `mkfs for ${kind} failed: ${mk.out}`, tools);
  let loop: string | undefined;
  if (kind !== 'vfat') {
    const l = run('losetup', ['-f', '--show', image]);
    if (!l.ok) return skipMount(t, `losetup failed: ${l.out}`, tools);
    loop = l.out.split('\n')[0];
  }
  const r =
    kind === 'exfat'
      ? run('mount.exfat-fuse', [loop ?? '', dir])
      : kind === 'vfat'
        ? run('fusefat', ['-o', 'rw+', image, dir])
        : run('ntfs-3g', ['-o', 'windows_names', loop ?? '', dir]);
  if (!r.ok || !isMountPoint(dir)) {
    if (loop !== undefined) run('losetup', ['-d', loop]);
    return skipMount(t, `${kind} FUSE mount failed: ${r.out}`, tools);
  }
  const daemon = kind === 'exfat' ? 'mount.exfat' : kind === 'vfat' ? 'fusefat' : 'ntfs-3g';
  const m = register(t, { dir, kind, image, ...(loop === undefined ? {} : { loop }) });
  const pid = pidOfFuse(dir, daemon);
  if (pid !== undefined) m.fusePid = pid;
  return m;
}

/**
 * Put an exFAT FUSE disk back after its daemon died (every operation on the mount answers
 * ENOTCONN): lazily unmount the dead mount, check the image on its loop device with
 * `fsck.exfat -y` when installed, and mount it again with a new daemon. Returns fsck's output.
 */
export function reattachExfat(m: Mounted): string {
  if (m.kind !== 'exfat' || m.loop === undefined)
    throw new Error('reattachExfat needs an exFAT mount on a loop device');
  run('fusermount', ['-u', '-z', m.dir]);
  run('umount', ['-l', m.dir]);
  const fsck = have('fsck.exfat') ? run('fsck.exfat', ['-y', m.loop]).out : 'fsck.exfat not installed';
  const r = run('mount.exfat-fuse', [m.loop, m.dir]);
  if (!r.ok || !isMountPoint(m.dir)) throw new Error(`mount.exfat-fuse ${m.loop} again failed: ${r.out}`);
  const pid = pidOfFuse(m.dir, 'mount.exfat');
  if (pid !== undefined) m.fusePid = pid;
  return fsck;
}

/** The device id of `dir` (to tell a mounted disk from the empty mount point under it). */
export function devOf(dir: string): bigint {
  return fs.statSync(dir, { bigint: true }).dev;
}
