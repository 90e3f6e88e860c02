/**
 * Finding a connected disk (SPEC §3): by `--disk PATH` (its `distbackup-disk.json` decides which
 * registered disk it is), or by NAME through the last known path, then every mounted filesystem
 * whose UUID matches, then every mount point holding the relative path. A disk whose uuid is
 * not the one registered under NAME is refused (exit 2), and so is one registered by another
 * catalogue. Synchronous, read-only.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DistbackupError, describeError, RefusedError, UsageError } from '../core/errors.js';
import { printable } from '../core/vpath.js';
import { type DiskIdentity, readDiskIdentity } from './disk-json.js';
import { fsUuidOf, mountOf, mountPointsOfFsUuid, readMounts } from './fsinfo.js';

/** What locating needs to know of a registered disk. */
export interface KnownDisk {
  readonly name: string;
  readonly uuid: string;
  /** Full path where the disk was last seen. */
  readonly mountPath: string | null;
  /** Path of the disk folder relative to its mount point (`''` = the mount point itself). */
  readonly relPath: string | null;
  readonly fsUuid: string | null;
}

/** A disk found connected: its folder, its validated identity, and its registration. */
export interface LocatedDisk<T extends KnownDisk> {
  readonly root: string;
  readonly identity: DiskIdentity;
  readonly disk: T;
}

export interface LocateOptions {
  /** `--disk PATH`. */
  readonly diskPath?: string | undefined;
  /** The NAME argument. */
  readonly name?: string | undefined;
  /** Id of the home catalogue: a disk registered by another one is refused. */
  readonly catalogueId?: string | undefined;
}

/**
 * Find the disk the user means among `registered`. Throws UsageError for an unknown NAME or an
 * ambiguous call, RefusedError (exit 2) when the disk is not connected, is another disk, or
 * belongs to another catalogue.
 */
export function locateDisk<T extends KnownDisk>(registered: readonly T[], opts: LocateOptions): LocatedDisk<T> {
  const byName = opts.name === undefined ? undefined : registered.find((d) => d.name === opts.name);
  if (opts.name !== undefined && byName === undefined) {
    throw new UsageError(`no disk named '${printable(opts.name)}' is registered (see 'distbackup disk list')`);
  }
  if (opts.diskPath !== undefined) {
    const root = path.resolve(opts.diskPath);
    const identity = readDiskIdentity(root);
    if (byName !== undefined && byName.uuid !== identity.uuid) {
      throw new RefusedError(
        `${root} holds disk '${identity.name}' (uuid ${identity.uuid}), not '${byName.name}' (uuid ${byName.uuid}): wrong disk`,
        { code: 'wrong-disk', path: root },
      );
    }
    const disk = registered.find((d) => d.uuid === identity.uuid);
    if (disk === undefined) {
      throw new RefusedError(
        `${root}: disk '${identity.name}' (uuid ${identity.uuid}) is not registered in this catalogue; register it with 'distbackup disk add NAME ${root}'`,
        { code: 'disk-unknown', path: root },
      );
    }
    checkCatalogue(root, identity, opts.catalogueId);
    return { root, identity, disk };
  }
  if (byName !== undefined) {
    const found = findConnected(byName);
    if (found.located === undefined) {
      const where = byName.mountPath === null ? '' : ` (last seen at ${byName.mountPath})`;
      const other = found.wrong === undefined ? '' : `; ${found.wrong}`;
      throw new RefusedError(`disk '${byName.name}' is not connected${where}${other}`, {
        code: 'disk-not-found',
        ...(byName.mountPath === null ? {} : { path: byName.mountPath }),
      });
    }
    checkCatalogue(found.located.root, found.located.identity, opts.catalogueId);
    return { ...found.located, disk: byName };
  }
  const connected: LocatedDisk<T>[] = [];
  for (const d of registered) {
    const f = findConnected(d).located;
    if (f !== undefined) connected.push({ ...f, disk: d });
  }
  if (connected.length === 1 && connected[0] !== undefined) {
    checkCatalogue(connected[0].root, connected[0].identity, opts.catalogueId);
    return connected[0];
  }
  if (connected.length === 0) {
    throw new RefusedError(
      registered.length === 0
        ? `no disk is registered yet: 'distbackup disk add NAME PATH' first`
        : `none of the registered disks (${registered.map((d) => d.name).join(', ')}) is connected; give --disk PATH`,
      { code: 'disk-not-found' },
    );
  }
  throw new UsageError(
    `several disks are connected (${connected.map((c) => c.disk.name).join(', ')}): name the one to use`,
  );
}

/**
 * The places where a registered disk may be, most likely first (SPEC §3 order), each once. A
 * generator: the mount table and the UUIDs are looked up only when the last known folder is not
 * the disk's.
 */
export function* candidatePaths(d: KnownDisk): Generator<string, void, undefined> {
  const seen = new Set<string>();
  function* once(p: string): Generator<string, void, undefined> {
    if (seen.has(p)) return;
    seen.add(p);
    yield p;
  }
  if (d.mountPath !== null) yield* once(d.mountPath);
  const rel = d.relPath ?? '';
  if (d.fsUuid !== null) for (const mp of mountPointsOfFsUuid(d.fsUuid)) yield* once(path.join(mp, rel));
  if (d.relPath !== null) {
    for (const m of readMounts()) {
      // Pseudo filesystems never hold a disk; skipping them keeps the search quiet and fast.
      if (/^(proc|sysfs|cgroup2?|devpts|mqueue|debugfs|tracefs|securityfs|pstore|bpf|autofs)$/.test(m.fsType)) continue;
      yield* once(path.join(m.mountPoint, rel));
    }
  }
}

function findConnected<T extends KnownDisk>(
  d: T,
): { located: { root: string; identity: DiskIdentity } | undefined; wrong: string | undefined } {
  let wrong: string | undefined;
  for (const root of candidatePaths(d)) {
    let identity: DiskIdentity;
    try {
      if (!fs.existsSync(path.join(root, 'distbackup-disk.json'))) continue;
      identity = readDiskIdentity(root);
    } catch (err) {
      // Said beside "not connected": a damaged identity file is not the same as no disk.
      wrong ??= describeError(err);
      continue;
    }
    if (identity.uuid === d.uuid) return { located: { root, identity }, wrong };
    wrong ??= `${root} holds disk '${identity.name}' (uuid ${identity.uuid}) instead`;
  }
  return { located: undefined, wrong };
}

function checkCatalogue(root: string, identity: DiskIdentity, catalogueId: string | undefined): void {
  if (catalogueId === undefined || identity.catalogue === undefined || identity.catalogue === catalogueId) return;
  throw new RefusedError(
    `${root}: disk '${identity.name}' was registered by another catalogue (${identity.catalogue}, this one is ${catalogueId})`,
    { code: 'other-catalogue', path: root },
  );
}

/** Where a disk folder sits: mount point, path below it, filesystem UUID and type (best effort). */
export interface DiskPlace {
  readonly root: string;
  readonly mountPoint: string | null;
  readonly relPath: string | null;
  readonly fsUuid: string | null;
  readonly fsType: string | null;
  /** The folder of the filesystem mounted at the mount point (`/` but for bind mounts and subvolumes). */
  readonly mountRoot?: string | null;
}

/** Describe where the existing folder `root` sits in the mount table. */
export function describePlace(root: string): DiskPlace {
  let real: string;
  try {
    real = fs.realpathSync(root);
  } catch (err) {
    throw new DistbackupError(`${root}: cannot resolve the disk folder: ${(err as Error).message}`, { path: root });
  }
  const m = mountOf(real);
  if (m === undefined) return { root: real, mountPoint: null, relPath: null, fsUuid: null, fsType: null };
  return {
    root: real,
    mountPoint: m.mountPoint,
    relPath: path.relative(m.mountPoint, real),
    fsUuid: fsUuidOf(m.source, m.majorMinor) ?? null,
    fsType: m.fsType,
    mountRoot: m.root,
  };
}
