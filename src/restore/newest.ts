/**
 * With no home catalogue, a guided restore reads each disk's own catalogue copy, and disks are
 * synced one at a time, so their copies are of different ages. An older copy lists older
 * versions of files a newer one restored, and does not know files the newer one added: used in
 * a later run into the same DEST, it would put the older versions back (the files are still
 * "ours") and end "complete" while files only the newer copy knows are missing. So the newest
 * copy a restore into DEST has used is kept in its state folder, and each run uses whichever is
 * newer, that one or the connected disk's (objects are found by hash, on any disk).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Catalog, openUntrustedCatalogue } from '../catalog/db.js';
import { removedDisks } from '../catalog/removed-disks.js';
import { snapshotCatalogue } from '../catalog/snapshot.js';
import { DistbackupError, describeError, errnoCode, RefusedError } from '../core/errors.js';
import { STATE_DIR } from './paths.js';

/** The copy kept in DEST's state folder. */
export const SAVED_CATALOGUE = 'catalogue.sqlite';

/** How far a catalogue has seen each disk: its generation of every disk, removed ones too, by uuid. */
function generationsOf(cat: Catalog): Map<string, number> {
  const out = removedDisks(cat.db);
  const rows = cat.db.prepare('SELECT uuid, generation FROM disks').all() as { uuid: unknown; generation: unknown }[];
  for (const r of rows) {
    // A copy is untrusted: a row that is not a uuid and a whole number says nothing.
    if (typeof r.uuid !== 'string' || !Number.isSafeInteger(r.generation)) continue;
    out.set(r.uuid, Math.max(r.generation as number, out.get(r.uuid) ?? 0));
  }
  return out;
}

/**
 * Whether catalogue `a` is newer than `b`: over the disks both have seen (removed ones too:
 * catalog/removed-disks.ts), it saw each at least as far and one further; or it saw them all as
 * far and knows a disk `b` does not while `b` knows none it does not. A removal that left no
 * record (an older build, a damaged record) only makes a disk known to one side, which decides
 * nothing by itself. Generations, not times: a clock set wrong on the machine that synced would
 * make an older copy look newer. Copies that each saw some disk further are neither.
 */
function newerThan(a: Map<string, number>, b: Map<string, number>): boolean {
  let further = false;
  let common = 0;
  for (const [uuid, gb] of b) {
    const ga = a.get(uuid);
    if (ga === undefined) continue;
    common += 1;
    if (ga < gb) return false;
    if (ga > gb) further = true;
  }
  if (further) return true;
  return a.size > common && b.size === common;
}

/**
 * Create DEST (0700) and its state folder when missing; returns DEST resolved, the state folder
 * and its lstat (a folder, never a link: refused otherwise).
 */
export function ensureStateDir(destText: string): { real: string; stateDir: string; st: fs.Stats } {
  try {
    fs.mkdirSync(destText, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new DistbackupError(`${destText}: cannot create the restore folder: ${describeError(err)}`, {
      path: destText,
      cause: err,
    });
  }
  const real = fs.realpathSync(destText);
  if (!fs.statSync(real).isDirectory()) throw new RefusedError(`${destText}: not a folder`, { path: destText });
  const stateDir = path.join(real, STATE_DIR);
  try {
    fs.mkdirSync(stateDir, { mode: 0o700 });
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw err;
  }
  const st = fs.lstatSync(stateDir);
  if (!st.isDirectory() || st.isSymbolicLink()) {
    throw new RefusedError(`${stateDir}: is not a folder; refusing to restore here`, { path: stateDir });
  }
  return { real, stateDir, st };
}

/**
 * The catalogue a run from a disk's copy `diskCat` uses: the copy kept in `stateDir` when it is
 * of the same catalogue and newer (`diskCat` is then closed), else `diskCat`, which is kept in
 * `stateDir` (when `save`) if it is the newer one. `note` says which, when it matters.
 */
export function newestCatalogue(
  diskCat: Catalog,
  stateDir: string | undefined,
  save: boolean,
  diskUuid: string | undefined,
): { cat: Catalog; note?: string; keepRestored?: true } {
  if (stateDir === undefined) return { cat: diskCat };
  const file = path.join(stateDir, SAVED_CATALOGUE);
  let saved: Catalog | undefined;
  let unusable: string | undefined;
  try {
    if (fs.lstatSync(file).isFile()) saved = openUntrustedCatalogue(file);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') unusable = describeError(err);
  }
  if (saved !== undefined && saved.id !== diskCat.id) {
    saved.close();
    return {
      cat: diskCat,
      note: `${stateDir} holds a restore from another catalogue than this disk's: this disk's copy is used, and the other is kept`,
    };
  }
  let savedNewer = false;
  let apart = false;
  let removedSince = false;
  let sameAsKept = false;
  if (saved !== undefined) {
    try {
      const g = generationsOf(saved);
      const d = generationsOf(diskCat);
      // The kept copy must know the connected disk (a disk added or registered again since).
      const knows =
        diskUuid === undefined || saved.db.prepare('SELECT 1 FROM disks WHERE uuid = ?').get(diskUuid) !== undefined;
      const keptNewer = newerThan(g, d);
      savedNewer = keptNewer && knows;
      // Newer, but the connected disk was removed from the pool since: its own copy is the only
      // one that lists what it holds, and it is the older one.
      removedSince = keptNewer && !knows;
      // Copies of one catalogue only move forward; neither newer nor the same: it forked.
      sameAsKept = g.size === d.size && [...g].every(([u, n]) => d.get(u) === n);
      apart = !keptNewer && !newerThan(d, g) && !sameAsKept;
    } catch (err) {
      unusable = describeError(err);
    }
  }
  if (saved !== undefined && savedNewer) {
    diskCat.close();
    return {
      cat: saved,
      note: `this disk's catalogue copy is older than the one an earlier run of this restore used: that one (kept in ${stateDir}) is used, so newer files are never replaced by older versions`,
    };
  }
  saved?.close();
  if (removedSince) {
    return {
      cat: diskCat,
      keepRestored: true,
      note: `this disk was removed from the pool after the catalogue copy an earlier run of this restore used (kept in ${stateDir}) was written: this disk's own, older copy is used for what it holds, and every file an earlier run restored is kept as it is, never replaced by an older version`,
    };
  }
  if (apart) {
    // Each saw some disk further (a catalogue put back from a backup in between): this disk's
    // copy is used, the kept one stays.
    return {
      cat: diskCat,
      note: `this disk's catalogue copy and the one kept in ${stateDir} each know a sync the other does not (the catalogue was put back in between?): this disk's copy is used, and where it lists an older version of a file an earlier run restored, that version is put back`,
    };
  }
  // Kept again only when newer: the same generations are the same copy (a VACUUM INTO of the
  // whole catalogue into DEST on every run otherwise).
  if (save && !sameAsKept) {
    try {
      snapshotCatalogue(diskCat.db, file);
    } catch (err) {
      // The restore goes on (a filesystem of DEST may refuse it: fusefat, full): only the
      // protection against a later older copy is lost, and said.
      return {
        cat: diskCat,
        note: `${file}: cannot keep this disk's catalogue copy in DEST (${describeError(err)}); a later run from a disk with an older copy could put older versions back`,
      };
    }
  }
  return unusable === undefined
    ? { cat: diskCat }
    : { cat: diskCat, note: `${file}: unusable (${unusable}); this disk's catalogue copy is used` };
}
