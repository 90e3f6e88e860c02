/**
 * What the system knows of the filesystem under a path: its mount point, device, type,
 * filesystem UUID (from `lsblk --json`, else /dev/disk/by-uuid), size, and whether the device
 * spins (`/sys/dev/block/MAJ:MIN/queue/rotational`). Every probe is best effort: a missing
 * tool or file gives `undefined`, never an error. Synchronous; safe to call from any thread.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** One line of /proc/self/mountinfo. */
export interface MountEntry {
  /** `major:minor` of the filesystem's device (as st_dev splits into). */
  majorMinor: string;
  /** Folder of the mounted filesystem that is mounted (usually `/`). */
  root: string;
  mountPoint: string;
  fsType: string;
  source: string;
}

/** Decode the octal escapes (`\040` for a space) that mountinfo uses in paths. */
function unescapeMount(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/** Parse /proc/self/mountinfo; empty when it cannot be read (not Linux). */
export function readMounts(file = '/proc/self/mountinfo'): MountEntry[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const parts = line.split(' ');
    const sep = parts.indexOf('-', 6);
    if (sep < 0 || parts.length < sep + 3) continue;
    out.push({
      majorMinor: parts[2] ?? '',
      root: unescapeMount(parts[3] ?? ''),
      mountPoint: unescapeMount(parts[4] ?? ''),
      fsType: parts[sep + 1] ?? '',
      source: unescapeMount(parts[sep + 2] ?? ''),
    });
  }
  return out;
}

/** `major:minor` of a stat's st_dev (Linux encoding). */
export function devToMajorMinor(dev: bigint | number): string {
  const d = BigInt(dev);
  const major = ((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn);
  const minor = (d & 0xffn) | ((d >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

/**
 * The mount holding `p` (an existing path): the longest mount point that prefixes its real
 * path (the last listed when mounts stack). Undefined when mountinfo is unavailable.
 */
export function mountOf(p: string, mounts: MountEntry[] = readMounts()): MountEntry | undefined {
  let real: string;
  try {
    real = fs.realpathSync(p);
  } catch {
    return undefined;
  }
  let best: MountEntry | undefined;
  for (const m of mounts) {
    const under = m.mountPoint === '/' || real === m.mountPoint || real.startsWith(`${m.mountPoint}/`);
    // Several mounts may stack on one point: the last listed is the visible one.
    if (under && (best === undefined || m.mountPoint.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

/** A block device as `lsblk --json` describes it (children flattened). */
export interface BlockDevice {
  name: string;
  path: string | undefined;
  uuid: string | undefined;
  fsType: string | undefined;
  majorMinor: string | undefined;
  rotational: boolean | undefined;
  mountPoints: string[];
}

let lsblkCache: BlockDevice[] | undefined;

/** Block devices from `lsblk --json` (cached per process); empty when lsblk is missing. */
export function listBlockDevices(refresh = false): BlockDevice[] {
  if (lsblkCache !== undefined && !refresh) return lsblkCache;
  const lsblk = (mountColumn: string) =>
    spawnSync('lsblk', ['--json', '-o', `NAME,PATH,UUID,FSTYPE,MAJ:MIN,ROTA,${mountColumn}`], {
      encoding: 'utf8',
      timeout: 5000,
    });
  // MOUNTPOINTS (every mount point of a device) came with util-linux 2.37; an older lsblk
  // refuses the column, and the whole call: it is asked for MOUNTPOINT (the first one) instead.
  let r = lsblk('MOUNTPOINTS');
  if (r.status !== 0 && r.error === undefined) r = lsblk('MOUNTPOINT');
  const out: BlockDevice[] = [];
  if (r.status === 0) {
    try {
      const doc = JSON.parse(r.stdout) as { blockdevices?: unknown[] };
      const walk = (list: unknown[] | undefined): void => {
        for (const raw of list ?? []) {
          if (typeof raw !== 'object' || raw === null) continue;
          const o = raw as Record<string, unknown>;
          const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
          const mps = Array.isArray(o.mountpoints)
            ? o.mountpoints.filter((m): m is string => typeof m === 'string')
            : typeof o.mountpoint === 'string'
              ? [o.mountpoint]
              : [];
          out.push({
            name: str(o.name) ?? '',
            path: str(o.path),
            uuid: str(o.uuid),
            fsType: str(o.fstype),
            majorMinor: str(o['maj:min']),
            rotational:
              typeof o.rota === 'boolean' ? o.rota : o.rota === '1' ? true : o.rota === '0' ? false : undefined,
            mountPoints: mps,
          });
          walk(Array.isArray(o.children) ? o.children : undefined);
        }
      };
      walk(doc.blockdevices);
    } catch {
      // lsblk printed something else: treat as unavailable.
    }
  }
  lsblkCache = out;
  return out;
}

/** Filesystem UUID of the device `source` (e.g. `/dev/sdb1`), from lsblk or /dev/disk/by-uuid. */
export function fsUuidOf(source: string, majorMinor?: string): string | undefined {
  for (const b of listBlockDevices()) {
    if ((b.path === source || (majorMinor !== undefined && b.majorMinor === majorMinor)) && b.uuid !== undefined) {
      return b.uuid;
    }
  }
  try {
    const dir = '/dev/disk/by-uuid';
    const target = fs.realpathSync(source);
    for (const name of fs.readdirSync(dir)) {
      if (fs.realpathSync(path.join(dir, name)) === target) return name;
    }
  } catch {
    // No by-uuid folder, or the source is not a device (tmpfs, overlay).
  }
  return udevKnowsNoUuid() ? blkidUuid(source) : undefined;
}

/**
 * True where lsblk knows no filesystem UUID at all: udev keeps no database (a container, a
 * minimal system), so blkid is asked. Elsewhere a device lsblk lists without one has none (a
 * squashfs of a snap), and no process is started for it.
 */
function udevKnowsNoUuid(): boolean {
  return !listBlockDevices().some((b) => b.uuid !== undefined);
}

const blkidCache = new Map<string, string | undefined>();

/**
 * The UUID in the superblock of the block device `source`, read by `blkid` (util-linux): where
 * udev keeps no database (a container, a minimal system), lsblk and /dev/disk/by-uuid know no
 * UUID, and blkid, run as root, probes the device itself (-p: its cache may name the
 * filesystem a loop or USB device held before). Undefined when it cannot.
 */
function blkidUuid(source: string): string | undefined {
  if (!source.startsWith('/dev/')) return undefined;
  if (blkidCache.has(source)) return blkidCache.get(source);
  let uuid: string | undefined;
  for (const cmd of ['blkid', '/sbin/blkid', '/usr/sbin/blkid']) {
    const r = spawnSync(cmd, ['-p', '-o', 'value', '-s', 'UUID', source], { encoding: 'utf8', timeout: 5000 });
    if (r.error !== undefined) continue;
    const out = r.status === 0 ? r.stdout.trim() : '';
    uuid = /^[0-9A-Fa-f-]{4,64}$/.test(out) ? out : undefined;
    break;
  }
  blkidCache.set(source, uuid);
  return uuid;
}

/** Mount points of every mounted filesystem whose UUID is `fsUuid`. */
export function mountPointsOfFsUuid(fsUuid: string, mounts: MountEntry[] = readMounts()): string[] {
  const out = new Set<string>();
  for (const b of listBlockDevices()) {
    if (b.uuid !== undefined && b.uuid.toLowerCase() === fsUuid.toLowerCase()) {
      for (const mp of b.mountPoints) out.add(mp);
      for (const m of mounts) if (b.majorMinor !== undefined && m.majorMinor === b.majorMinor) out.add(m.mountPoint);
    }
  }
  try {
    const dev = fs.realpathSync(path.join('/dev/disk/by-uuid', fsUuid));
    for (const m of mounts) if (m.source === dev) out.add(m.mountPoint);
  } catch {
    // Not known to udev.
  }
  // No UUID known to udev at all: each mounted device's superblock, through blkid.
  if (udevKnowsNoUuid()) {
    for (const m of mounts) {
      if (blkidUuid(m.source)?.toLowerCase() === fsUuid.toLowerCase()) out.add(m.mountPoint);
    }
  }
  return [...out];
}

/**
 * Whether the device under `p` spins: reads `/sys/dev/block/MAJ:MIN/queue/rotational` (for a
 * partition, its parent's). Undefined when unknown (tmpfs, overlay, FUSE, no sysfs).
 */
export function isRotational(p: string): boolean | undefined {
  let mm: string;
  try {
    mm = devToMajorMinor(fs.statSync(p, { bigint: true }).dev);
  } catch {
    return undefined;
  }
  try {
    const sys = fs.realpathSync(`/sys/dev/block/${mm}`);
    for (const dir of [sys, path.dirname(sys)]) {
      try {
        return fs.readFileSync(path.join(dir, 'queue', 'rotational'), 'utf8').trim() === '1';
      } catch {
        // A partition has no queue folder: its parent does.
      }
    }
  } catch {
    // Not a block device (tmpfs, overlay, FUSE).
  }
  const b = listBlockDevices().find((d) => d.majorMinor === mm);
  return b?.rotational;
}

/** Total size in bytes of the filesystem holding `p`, and the bytes free to an unprivileged user. */
export function fsSpace(p: string): { totalBytes: number; freeBytes: number } {
  const s = fs.statfsSync(p);
  return { totalBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize };
}

/** Default declared size of a disk: filesystem size minus min(5 %, 10 GB) (SPEC §3). */
export function defaultDiskSize(totalBytes: number): number {
  return Math.max(0, totalBytes - Math.min(Math.floor(totalBytes * 0.05), 10e9));
}

/**
 * Filesystems whose kernel driver makes everything durable on syncfs(2): dirty inodes written
 * back, the journal (where there is one) committed. FUSE ones (exfat-fuse, fusefat, ntfs-3g:
 * `fuse.*`, `fuseblk`) are not here: the kernel does not forward syncfs to their daemon. Nor are
 * network ones, whose server decides.
 */
const SYNCFS_DURABLE = new Set([
  'ext2',
  'ext3',
  'ext4',
  'xfs',
  'btrfs',
  'f2fs',
  'vfat',
  'msdos',
  'exfat',
  'ntfs3',
  'tmpfs',
]);

/**
 * Whether the filesystem under `p` is a local in-kernel one (SYNCFS_DURABLE or
 * CASE_SENSITIVE_WITH_LINKS, by /proc/self/mountinfo): not FUSE, not a network share, whose
 * daemon or server could report one size and serve fewer bytes. False when unknown.
 */
export function localKernelFs(p: string, mounts?: MountEntry[]): boolean {
  const m = mountOf(p, mounts);
  return m !== undefined && (SYNCFS_DURABLE.has(m.fsType) || CASE_SENSITIVE_WITH_LINKS.has(m.fsType));
}

/** Linux 5.8 is the first to report write-back errors through syncfs(2). */
function kernelReportsSyncfsErrors(release = os.release()): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (m === null) return false;
  const major = Number(m[1]);
  return major > 5 || (major === 5 && Number(m[2]) >= 8);
}

/**
 * In-kernel filesystems whose names are case-sensitive (folders made case-insensitive on ext4 or
 * f2fs with casefold aside) and that have hard links: where two threads may place files side by
 * side (restore's small-file lane) and each no-replace placement is one link(2).
 */
const CASE_SENSITIVE_WITH_LINKS = new Set(['ext2', 'ext3', 'ext4', 'xfs', 'btrfs', 'tmpfs', 'f2fs', 'zfs']);

/** Whether the filesystem under `p` is one of CASE_SENSITIVE_WITH_LINKS (by /proc/self/mountinfo); false when unknown. */
export function caseSensitiveWithLinks(p: string, mounts?: MountEntry[]): boolean {
  const m = mountOf(p, mounts);
  return m !== undefined && CASE_SENSITIVE_WITH_LINKS.has(m.fsType);
}

/**
 * Whether syncfs(2) may run at all, as a durability step or as a write-back hint: on Linux, and
 * not with `DISTBACKUP_FSYNC=file` (durability file by file only, and no `sync -f` forked during
 * a copy: under libfiu a fork while other threads are inside it can deadlock the child).
 */
export function syncfsAllowed(): boolean {
  return process.platform === 'linux' && process.env.DISTBACKUP_FSYNC !== 'file';
}

/**
 * Whether one syncfs(2) of the filesystem under `p` is as durable as an fsync of every file and
 * folder written to it, errors included: Linux 5.8 or later and an in-kernel filesystem of
 * SYNCFS_DURABLE (by /proc/self/mountinfo). False when unknown. `DISTBACKUP_FSYNC=file` in the
 * environment makes it false (every file fsynced on its own descriptor, as on a FUSE disk: the
 * fault tests that inject fsync errors use it).
 */
export function syncfsDurable(p: string, mounts?: MountEntry[]): boolean {
  if (!syncfsAllowed()) return false;
  if (!kernelReportsSyncfsErrors()) return false;
  const m = mountOf(p, mounts);
  return m !== undefined && SYNCFS_DURABLE.has(m.fsType);
}
