/**
 * What every disk carries so it can be restored on its own (SPEC §2): the manifest, the restore
 * script and the catalogue copy, each written atomically, with the disk's device checked before
 * each rename (an unplugged disk never makes them land on the host).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Catalog, sqliteFileError } from '../catalog/db.js';
import { getDiskByUuid } from '../catalog/disks.js';
import { iterateManifestRows, snapshotCatalogue } from '../catalog/snapshot.js';
import { fsyncDir, writeFileAtomic } from '../core/durable.js';
import { DistbackupError, errnoCode, fileError } from '../core/errors.js';
import { readDiskIdentity } from '../disk/disk-json.js';
import { DiskRoot } from '../disk/disk-root.js';
import { DISK_CATALOGUE, DISK_CATALOGUE_STALE, DISK_MANIFEST, DISK_RESTORE_SCRIPT } from '../disk/layout.js';
import { writeManifest } from '../disk/manifest.js';
import { RESTORE_SCRIPT } from '../disk/restore-script.js';

/** What was written. */
export interface DiskCatalogueResult {
  manifestFiles: number;
}

/**
 * Write the manifest, the restore script and the catalogue copy to the disk at `disk` (a folder
 * or an open DiskRoot). `diskId` defaults to the registered disk whose uuid the folder holds.
 */
export function writeDiskCatalogue(
  cat: Catalog,
  disk: string | DiskRoot,
  diskId?: number,
  options: { keepStaleMark?: boolean } = {},
): DiskCatalogueResult {
  const root = typeof disk === 'string' ? DiskRoot.open(disk) : disk;
  let id = diskId;
  if (id === undefined) {
    const identity = readDiskIdentity(root.root);
    const row = getDiskByUuid(cat.db, identity.uuid);
    if (row === undefined) {
      throw new DistbackupError(`${root.root}: disk '${identity.name}' is not registered in this catalogue`, {
        path: root.root,
      });
    }
    id = row.id;
  }
  const forDisk: number = id;
  const check = (): void => root.checkMounted();
  const manifestPath = path.join(root.root, DISK_MANIFEST);
  const manifestFiles = named(manifestPath, 'cannot write the manifest', () =>
    writeManifest(manifestPath, iterateManifestRows(cat.db, forDisk), check),
  );
  const scriptPath = path.join(root.root, DISK_RESTORE_SCRIPT);
  if (!holds(scriptPath, RESTORE_SCRIPT)) {
    check();
    named(scriptPath, 'cannot write the restore script', () => writeFileAtomic(scriptPath, RESTORE_SCRIPT, 0o755));
  }
  const cataloguePath = path.join(root.root, DISK_CATALOGUE);
  named(cataloguePath, 'cannot write the catalogue copy', () => snapshotCatalogue(cat.db, cataloguePath, check));
  // The copy is current again (unless evictions may still follow: a copy written during a sync).
  if (options.keepStaleMark === true) return { manifestFiles };
  const stale = path.join(root.root, DISK_CATALOGUE_STALE);
  try {
    fs.unlinkSync(stale);
    fsyncDir(root.root);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw fileError(stale, err, 'cannot remove');
  }
  return { manifestFiles };
}

/** Whether the disk holds a catalogue copy (of any age). */
export function hasDiskCatalogue(root: DiskRoot): boolean {
  return fs.existsSync(path.join(root.root, DISK_CATALOGUE));
}

/** The words of the stale marker (for a person who finds it on the disk). */
const STALE_TEXT =
  'Objects were removed from this disk (evicted by a sync, or set aside as damaged) after its\n' +
  'catalogue copy was written, and the copy was not written again: it may list objects that are no\n' +
  'longer here (a restore reports them missing).\n' +
  'The next sync of this disk writes the copy again and removes this file.\n';

/**
 * Mark the disk's catalogue copy stale, durably, before objects it lists are deleted or moved
 * aside without the copy being written first (sync's evictions, made just in time during the
 * copy; damaged objects quarantined by verify or a reconcile): the copy may
 * lag, but never silently (RELIABILITY.md I2). A restore from the copy warns while the mark is
 * there. Nothing is written when the mark is there already.
 */
export function markCatalogueStale(root: DiskRoot): void {
  const stale = path.join(root.root, DISK_CATALOGUE_STALE);
  try {
    if (fs.lstatSync(stale).isFile()) return;
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw fileError(stale, err, 'cannot check');
  }
  try {
    writeFileAtomic(stale, STALE_TEXT, 0o644, () => root.checkMounted());
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'ENOSPC' && code !== 'EDQUOT') throw fileError(stale, err, 'cannot mark the catalogue copy stale');
    // A disk full to its last block: an empty mark needs no data block, and says the same.
    named(stale, 'cannot mark the catalogue copy stale (the disk is full)', () => {
      root.checkMounted();
      fs.closeSync(fs.openSync(stale, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o644));
      fsyncDir(root.root);
    });
  }
}

/** True when the catalogue copy in the disk folder `root` is marked stale. */
export function catalogueMarkedStale(root: string): boolean {
  try {
    return fs.lstatSync(path.join(root, DISK_CATALOGUE_STALE)).isFile();
  } catch {
    return false;
  }
}

/**
 * True when `file` is a regular file holding exactly `text`: opened without following a link or
 * waiting on a FIFO, read only when fstat says it is a file of that length. The disk is
 * untrusted: a FIFO, a link to /dev/zero or a huge file there must not hang the run or fill the
 * memory.
 */
function holds(file: string, text: string): boolean {
  const want = Buffer.from(text, 'utf8');
  try {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile() || st.size !== want.length) return false;
      const got = Buffer.alloc(want.length + 1);
      let n = 0;
      for (let r = 1; r > 0 && n < got.length; n += r) r = fs.readSync(fd, got, n, got.length - n, n);
      return n === want.length && got.subarray(0, n).equals(want);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
}

/**
 * Run `write` and turn whatever it throws (a SqliteError such as a bare "disk I/O error", an
 * errno) into one line naming `file` and the cause; the code (`ENOSPC`, `SQLITE_IOERR_FSYNC`)
 * is kept, and a DistbackupError (the disk vanished) passes through as it is.
 */
function named<T>(file: string, what: string, write: () => T): T {
  try {
    return write();
  } catch (err) {
    throw sqliteFileError(file, err, what);
  }
}
