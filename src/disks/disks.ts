/**
 * Use-cases of the `disk` commands: add (register or adopt), set, list, drop, remove, refresh.
 * Each takes an open catalogue and returns the document its command prints.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { countDiskCopies, dropAllCopies } from '../catalog/copies.js';
import type { Catalog } from '../catalog/db.js';
import {
  type DiskRow,
  deleteDisk,
  diskUsage,
  getDiskByName,
  getDiskByUuid,
  insertDisk,
  listDisks,
  updateDisk,
} from '../catalog/disks.js';
import { lockCatalogue } from '../catalog/lock.js';
import { recordRemovedDisk } from '../catalog/removed-disks.js';
import { listSources } from '../catalog/sources.js';
import { DistbackupError, describeError, errnoCode, RefusedError, UsageError } from '../core/errors.js';
import { formatCount } from '../core/units.js';
import { printable, vpathContains } from '../core/vpath.js';
import { DISK_NAME_RE, type DiskIdentity, readDiskIdentity, writeDiskIdentity } from '../disk/disk-json.js';
import { DiskRoot } from '../disk/disk-root.js';
import { defaultDiskSize, fsSpace } from '../disk/fsinfo.js';
import { DISK_FORMAT, DISK_JSON } from '../disk/layout.js';
import { candidatePaths, type DiskPlace, describePlace } from '../disk/locate.js';
import { findDisk, lockDisk } from './open.js';
import { type ReconcileResult, reconcileDisk, reconcileDiskChunks } from './reconcile.js';

/** What `disk add` reports. */
export interface DiskAddDoc {
  name: string;
  uuid: string;
  size: number;
  path: string;
  mountPoint: string | null;
  relPath: string | null;
  fsUuid: string | null;
  fsType: string | null;
  /** True when the folder already was a distbackup disk (e.g. written by the Python distbackup). */
  adopted: boolean;
  /** Objects found on an adopted disk and now counted. */
  objectsAdopted: number;
  warnings: string[];
}

function checkName(name: string, hint = ''): void {
  if (!DISK_NAME_RE.test(name)) {
    throw new UsageError(
      `invalid disk name '${printable(name)}': use 1-64 of A-Z a-z 0-9 . _ - (not starting with . or -)${hint}`,
    );
  }
}

/** `abs` resolved, or its resolved parent and its name when it does not exist yet; undefined when neither resolves. */
function resolvedOrUndefined(abs: string): string | undefined {
  try {
    return fs.existsSync(abs)
      ? fs.realpathSync(abs)
      : path.join(fs.realpathSync(path.dirname(abs)), path.basename(abs));
  } catch {
    return undefined;
  }
}

/** Where `real` sits (its parent's place when it does not exist yet); null when that cannot be told. */
function placeOf(real: string): DiskPlace | null {
  try {
    return fs.existsSync(real) ? describePlace(real) : placeBelow(describePlace(path.dirname(real)), real);
  } catch {
    return null;
  }
}

/**
 * Refuse (exit 2) a disk folder that is, holds or lies inside the folder of a registered disk
 * (one drive would count as two disks, each copy twice) or a source's folder (the disk would be
 * backed up onto itself, or a source's files stored as objects among its own). Disks take turns
 * at one mount point: a folder at, in or around a registered disk's is refused only while it is
 * on that disk's filesystem, either filesystem's UUID is unknown, or it is on the root
 * filesystem (an empty mount point, the drive not plugged in). A folder of the same
 * filesystem mounted elsewhere, at or inside the registered one, is refused too, and so is one
 * inside any distbackup disk folder.
 */
function refuseOverlap(cat: Catalog, abs: string, real: string): void {
  const place = placeOf(real);
  const lower = (u: string | null | undefined): string | null => (u == null ? null : u.toLowerCase());
  // On a mounted filesystem of its own (not the root filesystem, where an empty mount point is).
  const mounted = place?.mountPoint != null && place.mountPoint !== '/';
  for (const d of listDisks(cat.db)) {
    const sameFs =
      lower(d.fsUuid) !== null && lower(place?.fsUuid) !== null ? lower(d.fsUuid) === lower(place?.fsUuid) : undefined;
    let how: string | undefined;
    if (d.mountPath !== null && vpathContains(real, d.mountPath)) {
      how = real === d.mountPath ? 'is' : 'holds';
    } else if (d.mountPath !== null && vpathContains(d.mountPath, real)) how = 'lies inside';
    // Another filesystem mounted where the disk was, or around it: a drive of its own.
    if (how !== undefined && sameFs === false && mounted) how = undefined;
    else if (
      how === undefined &&
      sameFs === true &&
      d.relPath !== null &&
      place?.relPath != null &&
      place.mountRoot === '/'
    ) {
      // The same filesystem at another mount point: compared below the filesystem's root, so
      // only for a place mounted from that root (a bind mount or a subvolume names its folders
      // from elsewhere).
      const [a, b] = [`/${d.relPath}`, `/${place.relPath}`].map((x) => path.posix.normalize(x));
      if (a === b) how = 'is';
      else if (vpathContains(a as string, b as string)) how = 'lies inside';
      else if (vpathContains(b as string, a as string)) how = 'holds';
    }
    if (how !== undefined) {
      throw new RefusedError(
        `${abs}: ${how} the folder of disk '${d.name}' (${d.mountPath ?? `/${d.relPath ?? ''} on filesystem ${d.fsUuid}`}); one drive is one disk`,
        { code: 'disk-overlap', path: abs },
      );
    }
  }
  // A distbackup disk folder above it, up to its filesystem's mount point (registered or not).
  const top = place?.mountPoint ?? '/';
  for (let dir = path.dirname(real); vpathContains(top, dir); dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, DISK_JSON))) {
      throw new RefusedError(`${abs}: lies inside the distbackup disk folder ${dir}; one drive is one disk`, {
        code: 'disk-overlap',
        path: abs,
      });
    }
    if (dir === path.dirname(dir)) break;
  }
  for (const s of listSources(cat.db)) {
    const src = s.realpath.toString();
    if (vpathContains(src, real) || vpathContains(real, src)) {
      throw new RefusedError(
        `${abs}: overlaps the folder of source ${s.vpath} (${src}); a disk is never inside a source, nor a source inside a disk`,
        { code: 'disk-overlap', path: abs },
      );
    }
  }
}

/**
 * Register the folder `diskPath` as disk `name` (SPEC §3 `disk add`): writes
 * distbackup-disk.json with the catalogue id, creates distbackup-objects/. A folder that already
 * is a distbackup disk of no other catalogue (a Python-written one) is adopted with its uuid,
 * and the objects on it are counted. With a dry-run catalogue (`-n`) the folder is only read:
 * nothing is created or written on the disk.
 */
export function addDisk(cat: Catalog, name: string, diskPath: string, opts: { sizeBytes?: number } = {}): DiskAddDoc {
  // `disk add /media/usb1 backup-01`: the name comes first.
  const swapped = name.includes('/') && DISK_NAME_RE.test(diskPath);
  checkName(name, swapped ? ` (the name comes first: disk add ${diskPath} ${printable(name)})` : '');
  if (getDiskByName(cat.db, name) !== undefined) {
    throw new UsageError(`a disk named '${name}' is already registered (see 'distbackup disk list')`);
  }
  const dryRun = cat.mode === 'dry-run';
  const abs = path.resolve(diskPath);
  // A dry run does not create a missing folder: its parent stands in for it below.
  const absent = dryRun && !fs.existsSync(abs);
  refuseMissingOnRoot(abs, opts.sizeBytes);
  // Before a missing folder is made: a refused one is not left behind inside another disk.
  const early = resolvedOrUndefined(abs);
  if (early !== undefined) refuseOverlap(cat, abs, early);
  try {
    if (!fs.existsSync(abs) && !dryRun) fs.mkdirSync(abs, { mode: 0o755 });
    if (!fs.statSync(absent ? path.dirname(abs) : abs).isDirectory()) {
      throw new UsageError(`${abs}: not a folder`, { path: abs });
    }
  } catch (err) {
    if (err instanceof DistbackupError) throw err;
    throw new UsageError(`${abs}: cannot use it as a disk: ${describeError(err)}`, { path: abs });
  }
  const dataReal = fs.existsSync(cat.dataDir) ? fs.realpathSync(cat.dataDir) : cat.dataDir;
  const real = absent ? path.join(fs.realpathSync(path.dirname(abs)), path.basename(abs)) : fs.realpathSync(abs);
  if (vpathContains(real, dataReal)) {
    throw new UsageError(`${abs}: holds the distbackup data folder; choose another folder`, { path: abs });
  }
  refuseOverlap(cat, abs, real);
  const lock = lockCatalogue(cat);
  try {
    const place = absent ? placeBelow(describePlace(path.dirname(real)), real) : describePlace(real);
    const warnings: string[] = [];
    let existing: DiskIdentity | undefined;
    if (fs.existsSync(path.join(real, DISK_JSON))) {
      existing = readDiskIdentity(real);
      const known = getDiskByUuid(cat.db, existing.uuid);
      if (known !== undefined) {
        // The disk itself, or a copy of it (cp -a, dd): one identity is one disk (exit 2).
        throw new RefusedError(
          `${real}: this disk is already registered as '${known.name}' (uuid ${existing.uuid}); a copy of a disk is not a new disk`,
          { code: 'disk-known', path: real },
        );
      }
      if (existing.catalogue !== undefined && existing.catalogue !== cat.id) {
        throw new RefusedError(
          `${real}: disk '${existing.name}' belongs to another catalogue (${existing.catalogue}); use that catalogue with -d, or a fresh folder`,
          { code: 'other-catalogue', path: real },
        );
      }
    }
    if (place.mountPoint === '/') {
      warnings.push(`${real} is on the root filesystem, not on a removable disk; is the disk mounted?`);
    }
    const sizeBytes = opts.sizeBytes ?? defaultDiskSize(fsSpace(absent ? path.dirname(real) : real).totalBytes);
    if (sizeBytes <= 0) throw new UsageError(`disk size must be above 0`);
    const identity: DiskIdentity = {
      format: DISK_FORMAT,
      uuid: existing?.uuid ?? randomUUID(),
      name,
      created: existing?.created ?? new Date().toISOString(),
      generation: existing?.generation ?? 0,
      catalogue: cat.id,
    };
    const dlock = dryRun ? undefined : lockDisk(real, name);
    try {
      const root = dryRun ? undefined : DiskRoot.open(real, { create: true });
      if (!dryRun) writeDiskIdentity(real, identity);
      root?.pinIdentity(identity.uuid);
      const id = insertDisk(cat.db, {
        uuid: identity.uuid,
        name,
        size: sizeBytes,
        created: identity.created,
        generation: identity.generation,
        mountPath: real,
        mountPoint: place.mountPoint,
        relPath: place.relPath,
        fsUuid: place.fsUuid,
        fsType: place.fsType,
        lastSeenMs: Date.now(),
        lastSyncMs: null,
        lastVerifyMs: null,
        droppedMs: null,
      });
      let objectsAdopted = 0;
      if (existing !== undefined) {
        let r: ReconcileResult;
        try {
          r = reconcileDisk(cat, id, root ?? DiskRoot.open(real), { dryRun });
        } catch (err) {
          if (dryRun || !(err instanceof Error)) throw err;
          // Registered already: what could not be counted is counted by a refresh.
          throw new DistbackupError(
            `${real}: registered as disk '${name}', but the objects on it could not be counted: ${describeError(err)}; run 'distbackup disk refresh ${name}' once the cause is fixed`,
            { path: real, cause: err, ...(err instanceof DistbackupError ? { exitCode: err.exitCode } : {}) },
          );
        }
        objectsAdopted = r.adopted;
        if (r.unknown > 0) warnings.push(`${r.unknown} objects on the disk are not in this catalogue (left in place)`);
      }
      return {
        name,
        uuid: identity.uuid,
        size: sizeBytes,
        path: real,
        mountPoint: place.mountPoint,
        relPath: place.relPath,
        fsUuid: place.fsUuid,
        fsType: place.fsType,
        adopted: existing !== undefined,
        objectsAdopted,
        warnings,
      };
    } finally {
      dlock?.release();
    }
  } finally {
    lock.release();
  }
}

/** The place of `root`, a folder not made yet, from the place of its parent. */
/**
 * Refuse to create a missing disk folder on the root filesystem with the default size: that is
 * what `disk add usb1 /media/usb1/distbackup` does when the disk is not mounted, and the first
 * sync would then fill the host's own disk. A folder that exists, or an explicit `--size`, says
 * the user meant it.
 */
function refuseMissingOnRoot(abs: string, sizeBytes: number | undefined): void {
  if (sizeBytes !== undefined || fs.existsSync(abs)) return;
  const parent = path.dirname(abs);
  if (!fs.existsSync(parent)) return; // the mkdir below names the missing parent
  if (describePlace(parent).mountPoint !== '/') return;
  throw new RefusedError(
    `${abs}: does not exist, and would be created on the root filesystem, not on a removable disk: is the disk mounted? (create the folder, or give --size, to use it anyway)`,
    { code: 'not-mounted', path: abs },
  );
}

function placeBelow(parent: DiskPlace, root: string): DiskPlace {
  const rel = parent.relPath === null ? null : path.join(parent.relPath, path.basename(root));
  return { ...parent, root, relPath: rel };
}

/** What `disk list --json` prints per disk (SPEC §3a). */
export interface DiskDoc {
  name: string;
  uuid: string;
  size: number;
  used: number;
  objects: number;
  mounted: boolean;
  path: string | null;
  lastSync: string | null;
  lastVerify: string | null;
  lastSeen: string | null;
  generation: number;
  dropped: string | null;
  fsUuid: string | null;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** Every registered disk with its usage and whether it is connected now. */
export function listDiskDocs(cat: Catalog): DiskDoc[] {
  return listDisks(cat.db).map((d) => {
    const u = diskUsage(cat.db, d.id);
    const where = connectedPath(d);
    return {
      name: d.name,
      uuid: d.uuid,
      size: d.size,
      used: u.bytes,
      objects: u.objects,
      mounted: where !== undefined,
      path: where ?? d.mountPath,
      lastSync: iso(d.lastSyncMs),
      lastVerify: iso(d.lastVerifyMs),
      lastSeen: iso(d.lastSeenMs),
      generation: d.generation,
      dropped: iso(d.droppedMs),
      fsUuid: d.fsUuid,
    };
  });
}

function connectedPath(d: DiskRow): string | undefined {
  for (const p of candidatePaths(d)) {
    try {
      if (fs.existsSync(path.join(p, DISK_JSON)) && readDiskIdentity(p).uuid === d.uuid) return p;
    } catch {
      // unreadable or invalid: not this disk
    }
  }
  return undefined;
}

function mustGet(cat: Catalog, name: string): DiskRow {
  const d = getDiskByName(cat.db, name);
  if (d === undefined)
    throw new UsageError(`no disk named '${printable(name)}' is registered (see 'distbackup disk list')`);
  return d;
}

/** `disk set NAME [--size] [--rename]`: returns the changed disk. The disk need not be connected. */
export function setDisk(cat: Catalog, name: string, opts: { sizeBytes?: number; rename?: string }): DiskDoc {
  const d = mustGet(cat, name);
  if (opts.sizeBytes !== undefined && opts.sizeBytes <= 0) throw new UsageError('disk size must be above 0');
  if (opts.rename !== undefined) {
    checkName(opts.rename);
    if (opts.rename !== name && getDiskByName(cat.db, opts.rename) !== undefined) {
      throw new UsageError(`a disk named '${opts.rename}' is already registered`);
    }
  }
  const lock = lockCatalogue(cat);
  try {
    // The name inside a connected disk's json follows at once; otherwise at its next sync. Its
    // lock is taken before the catalogue changes: refused (exit 2), the rename changes nothing.
    // A dry run (`-n`) leaves the disk as it is.
    const where = opts.rename !== undefined && cat.mode !== 'dry-run' ? connectedPath(d) : undefined;
    const dlock = where === undefined ? undefined : lockDisk(where, d.name);
    try {
      // The disk first: a write that fails there leaves the catalogue as it was, and the
      // command's error is the whole story (a name on the disk ahead of the catalogue's is put
      // back by the next sync).
      if (where !== undefined && opts.rename !== undefined) {
        writeDiskIdentity(where, { ...readDiskIdentity(where), name: opts.rename });
      }
      updateDisk(cat.db, d.id, {
        ...(opts.sizeBytes === undefined ? {} : { size: opts.sizeBytes }),
        ...(opts.rename === undefined ? {} : { name: opts.rename }),
      });
    } finally {
      dlock?.release();
    }
  } finally {
    lock.release();
  }
  const after = listDiskDocs(cat).find((x) => x.uuid === d.uuid);
  if (after === undefined) throw new DistbackupError(`disk '${name}' vanished from the catalogue`);
  return after;
}

/** `disk drop NAME`: a failed or lost disk; its copies stop counting. */
export function dropDisk(cat: Catalog, name: string): { disk: string; copiesDropped: number; objectsAtZero: number } {
  const d = mustGet(cat, name);
  const lock = lockCatalogue(cat);
  try {
    return cat.db.transaction(() => {
      const dropped = dropAllCopies(cat.db, d.id);
      updateDisk(cat.db, d.id, { droppedMs: Date.now() });
      const zero = cat.db
        .prepare(
          `SELECT count(*) FROM (SELECT DISTINCT object_id FROM files WHERE kind = 0 AND object_id IS NOT NULL) r
           WHERE NOT EXISTS (SELECT 1 FROM copies c WHERE c.object_id = r.object_id)`,
        )
        .pluck()
        .get() as number;
      return { disk: d.name, copiesDropped: dropped, objectsAtZero: zero };
    })();
  } finally {
    lock.release();
  }
}

/**
 * `disk remove NAME`: forget a disk; refused (exit 2) while it still holds counted copies. Its
 * uuid and last generation are kept (catalog/removed-disks.ts), so a later catalogue copy still
 * shows it saw that disk as far as an earlier one.
 */
export function removeDisk(cat: Catalog, name: string): { disk: string; uuid: string } {
  const d = mustGet(cat, name);
  const lock = lockCatalogue(cat);
  try {
    const n = countDiskCopies(cat.db, d.id);
    if (n > 0) {
      throw new RefusedError(
        `disk '${d.name}' still holds ${formatCount(n)} counted ${n === 1 ? 'copy' : 'copies'}; 'distbackup disk drop ${d.name}' first if it is lost or failed`,
        { code: 'disk-has-copies' },
      );
    }
    cat.db.transaction(() => {
      recordRemovedDisk(cat.db, d.uuid, d.generation);
      deleteDisk(cat.db, d.id);
    })();
    return { disk: d.name, uuid: d.uuid };
  } finally {
    lock.release();
  }
}

/**
 * `disk refresh NAME`: rebuild what the catalogue knows of a disk from the objects on it, listed
 * one prefix folder at a time (memory bounded whatever the number of objects).
 */
export async function refreshDisk(
  cat: Catalog,
  opts: { name?: string | undefined; diskPath?: string | undefined },
): Promise<ReconcileResult & { disk: string; path: string }> {
  const dryRun = cat.mode === 'dry-run';
  const lock = lockCatalogue(cat);
  try {
    const found = findDisk(cat, opts);
    // A dry run (`-n`) only reads the disk: no lock file, no folder created, nothing moved.
    const dlock = dryRun ? undefined : lockDisk(found.root, found.row.name);
    try {
      const root = DiskRoot.open(found.root, { create: !dryRun });
      // Another disk mounted at the same path meanwhile must not pass for this one (DiskRoot).
      root.pinIdentity(found.identity.uuid);
      const r = await reconcileDiskChunks(cat, found.row.id, root, root.listObjectChunks(16), { dryRun });
      const place = describePlace(found.root);
      updateDisk(cat.db, found.row.id, {
        lastSeenMs: Date.now(),
        mountPath: place.root,
        ...(place.mountPoint === null ? {} : { mountPoint: place.mountPoint, relPath: place.relPath }),
        ...(place.fsUuid === null ? {} : { fsUuid: place.fsUuid }),
        ...(place.fsType === null ? {} : { fsType: place.fsType }),
        droppedMs: null,
      });
      return { disk: found.row.name, path: found.root, ...r };
    } finally {
      dlock?.release();
    }
  } catch (err) {
    if (err instanceof DistbackupError) throw err;
    throw new DistbackupError(`disk refresh: ${describeError(err)}`, { code: errnoCode(err) ?? 'runtime', cause: err });
  } finally {
    lock.release();
  }
}
