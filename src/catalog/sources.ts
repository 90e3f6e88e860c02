/** Statements on the `sources` table (mappings of real folders into the virtual tree). */
import type { Db } from './db.js';

/** A mapping as stored. `realpath` is bytes; globs and flags as given to `source map`. */
export interface SourceRow {
  id: number;
  vpath: string;
  realpath: Buffer;
  include: string[];
  exclude: string[];
  followSymlinks: boolean;
  minCopies: number;
}

interface RawSource {
  id: number;
  vpath: string;
  realpath: Buffer;
  include_json: string;
  exclude_json: string;
  follow_symlinks: number;
  min_copies: number;
}

function toRow(r: RawSource): SourceRow {
  return {
    id: r.id,
    vpath: r.vpath,
    realpath: r.realpath,
    include: JSON.parse(r.include_json) as string[],
    exclude: JSON.parse(r.exclude_json) as string[],
    followSymlinks: r.follow_symlinks !== 0,
    minCopies: r.min_copies,
  };
}

/** All mappings, ordered by virtual path (so a parent comes before what is nested in it). */
export function listSources(db: Db): SourceRow[] {
  return (db.prepare('SELECT * FROM sources ORDER BY vpath').all() as RawSource[]).map(toRow);
}

/** The mapping at exactly `vpath`, if any. */
export function getSource(db: Db, vpath: string): SourceRow | undefined {
  const r = db.prepare('SELECT * FROM sources WHERE vpath = ?').get(vpath) as RawSource | undefined;
  return r === undefined ? undefined : toRow(r);
}

/** Insert a mapping; returns its id. */
export function insertSource(db: Db, s: Omit<SourceRow, 'id'>): number {
  const info = db
    .prepare(
      `INSERT INTO sources (vpath, realpath, include_json, exclude_json, follow_symlinks, min_copies, created_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    )
    .run(
      s.vpath,
      s.realpath,
      JSON.stringify(s.include),
      JSON.stringify(s.exclude),
      s.followSymlinks ? 1 : 0,
      s.minCopies,
      Date.now(),
    );
  return Number(info.lastInsertRowid);
}

/** Delete a mapping and (by cascade) its catalogued files. Returns the number of files dropped. */
export function deleteSource(db: Db, id: number): number {
  return db.transaction(() => {
    const n = db.prepare('SELECT count(*) FROM files WHERE source_id = ?').pluck().get(id) as number;
    db.prepare('DELETE FROM sources WHERE id = ?').run(id);
    return n;
  })();
}
