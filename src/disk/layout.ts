/**
 * The on-disk format of a backup disk, format 1 (SPEC §2): file names and object paths.
 * Same layout as the Python distbackup, so a disk written by either is readable by the other.
 */
import * as path from 'node:path';

export const DISK_FORMAT = 1;
export const DISK_JSON = 'distbackup-disk.json';
export const DISK_CATALOGUE = 'distbackup.sqlite';
export const DISK_MANIFEST = 'distbackup-manifest.txt';
export const DISK_RESTORE_SCRIPT = 'distbackup-restore.sh';
export const OBJECTS_DIR = 'distbackup-objects';
export const TMP_DIR = '.tmp';
export const QUARANTINE_DIR = '.quarantine';
/**
 * Present while the disk's catalogue copy may list objects a sync has evicted since it was
 * written (removed by the next complete write of the copy, see disks/disk-catalogue.ts).
 */
export const DISK_CATALOGUE_STALE = 'distbackup-catalogue-stale';
/** Lock file of a disk (SQLite exclusive lock, see catalog/lock.ts). */
export const DISK_LOCK = '.distbackup-lock';

/** A valid object name: 64 lowercase hex characters (SHA-256). */
export const HASH_RE = /^[0-9a-f]{64}$/;
/** A valid object subfolder: the first 3 hex characters. */
export const PREFIX_RE = /^[0-9a-f]{3}$/;

export function isHash(name: string): boolean {
  return HASH_RE.test(name);
}

/** `<disk>/distbackup-objects/<first 3 hex>/<64 hex>`. */
export function objectPath(diskRoot: string, hash: string): string {
  return path.join(diskRoot, OBJECTS_DIR, hash.slice(0, 3), hash);
}

/** `<disk>/distbackup-objects/<first 3 hex>`. */
export function objectDir(diskRoot: string, hash: string): string {
  return path.join(diskRoot, OBJECTS_DIR, hash.slice(0, 3));
}

export function objectsRoot(diskRoot: string): string {
  return path.join(diskRoot, OBJECTS_DIR);
}

export function tmpDir(diskRoot: string): string {
  return path.join(diskRoot, OBJECTS_DIR, TMP_DIR);
}

export function quarantineDir(diskRoot: string): string {
  return path.join(diskRoot, OBJECTS_DIR, QUARANTINE_DIR);
}
