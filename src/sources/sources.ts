/** Use-cases of `source map`, `source unmap` and `source list`. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Catalog } from '../catalog/db.js';
import { listDisks } from '../catalog/disks.js';
import { deleteSource, getSource, insertSource, listSources, type SourceRow } from '../catalog/sources.js';
import { describeError, UsageError } from '../core/errors.js';
import { normalizeVpath, vpathContains } from '../core/vpath.js';

/** What `source list --json` prints per mapping (SPEC §3a). */
export interface SourceDoc {
  vpath: string;
  path: string;
  include: string[];
  exclude: string[];
  followSymlinks: boolean;
  minCopies: number;
}

export interface MapOptions {
  include?: string[];
  exclude?: string[];
  followSymlinks?: boolean;
  minCopies?: number;
}

/**
 * Map `realPath` at `vpathText`. Refuses (UsageError, exit 1) a real path that does not exist or
 * is not a folder, a virtual path that is not absolute or is already mapped, and a source that
 * contains the home data folder (distbackup would back up its own catalogue while writing it).
 */
export function mapSource(cat: Catalog, vpathText: string, realPath: string, opts: MapOptions = {}): SourceDoc {
  const vpath = normalizeVpath(vpathText);
  const abs = path.resolve(realPath);
  let real: string;
  try {
    real = fs.realpathSync(abs);
    if (!fs.statSync(real).isDirectory()) throw new UsageError(`${abs}: not a folder`, { path: abs });
  } catch (err) {
    if (err instanceof UsageError) throw err;
    // `source map /home/me/photos /photos`: the virtual path comes first.
    const swapped = fs.statSync(vpathText, { throwIfNoEntry: false })?.isDirectory() === true;
    const hint = swapped ? ` (the virtual path comes first: source map VPATH ${vpathText})` : '';
    throw new UsageError(`${abs}: cannot map it: ${describeError(err)}${hint}`, { path: abs });
  }
  if (getSource(cat.db, vpath) !== undefined) {
    throw new UsageError(`${vpath} is already mapped (use 'distbackup source unmap ${vpath}' first)`);
  }
  const dataReal = fs.existsSync(cat.dataDir) ? fs.realpathSync(cat.dataDir) : cat.dataDir;
  if (vpathContains(real, dataReal)) {
    throw new UsageError(
      `${abs}: contains the distbackup data folder ${cat.dataDir}; exclude it by mapping a subfolder or move the data folder with -d`,
      { path: abs },
    );
  }
  for (const d of listDisks(cat.db)) {
    if (d.mountPath !== null && (vpathContains(real, d.mountPath) || vpathContains(d.mountPath, real))) {
      throw new UsageError(
        `${abs}: overlaps the folder of disk '${d.name}' (${d.mountPath}); a source never holds a disk, nor lies inside one`,
        { path: abs },
      );
    }
  }
  const minCopies = opts.minCopies ?? 1;
  if (!Number.isInteger(minCopies) || minCopies < 0) throw new UsageError(`--min-copies must be a whole number ≥ 0`);
  const row: Omit<SourceRow, 'id'> = {
    vpath,
    realpath: Buffer.from(real),
    include: opts.include ?? [],
    exclude: opts.exclude ?? [],
    followSymlinks: opts.followSymlinks ?? false,
    minCopies,
  };
  insertSource(cat.db, row);
  return toDoc({ id: 0, ...row });
}

/** Remove the mapping at `vpathText`; its catalogued files go with it. Returns files dropped. */
export function unmapSource(cat: Catalog, vpathText: string): number {
  const vpath = normalizeVpath(vpathText);
  const src = getSource(cat.db, vpath);
  if (src === undefined) throw new UsageError(`${vpath} is not mapped (see 'distbackup source list')`);
  return deleteSource(cat.db, src.id);
}

/** All mappings as `source list --json` documents. */
export function listSourceDocs(cat: Catalog): SourceDoc[] {
  return listSources(cat.db).map(toDoc);
}

function toDoc(s: SourceRow): SourceDoc {
  return {
    vpath: s.vpath,
    path: s.realpath.toString(),
    include: s.include,
    exclude: s.exclude,
    followSymlinks: s.followSymlinks,
    minCopies: s.minCopies,
  };
}
