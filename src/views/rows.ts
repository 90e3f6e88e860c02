/**
 * The rows behind `ls`, `tree` and `ncdu`: catalogued regular files streamed in virtual-path
 * (BLOB byte) order — a depth-first walk, since every folder's subtree is one contiguous byte
 * range — each with the disks holding its object (registered, not dropped) and the filters of
 * the views applied:
 *
 * - `onAll`: only objects held by every one of these disks (`--on`);
 * - `notOn`: only objects held by none of them (`--not-on`);
 * - `simulateLoss`: copies counted as if these disks had died (`--simulate-loss`);
 * - `minCopies` / `maxCopies`: on the copy count after the simulated loss.
 *
 * A file not hashed yet has no object and 0 copies. `charged` is true on one file per object
 * (the first in path order inside the view), so that bytes are counted once per content.
 * Memory: one row at a time (and the disk names). Not thread-safe.
 */
import type { Db } from '../catalog/db.js';
import { FileKind, NO_CAP } from '../catalog/schema.js';
import { UsageError } from '../core/errors.js';
import { subtreeRange } from '../core/vpath.js';

/** The filters of `tree`, `ncdu` and `ls`. Disk names are resolved by `resolveFilter`. */
export interface ViewFilterOptions {
  minCopies?: number | undefined;
  maxCopies?: number | undefined;
  on?: readonly string[] | undefined;
  notOn?: readonly string[] | undefined;
  simulateLoss?: readonly string[] | undefined;
}

/** Filters with disk ids. */
export interface ViewFilter {
  minCopies: number | undefined;
  maxCopies: number | undefined;
  onAll: ReadonlySet<number>;
  notOn: ReadonlySet<number>;
  simulateLoss: ReadonlySet<number>;
}

/** One file as the views see it. */
export interface ViewRow {
  id: number;
  vpath: Buffer;
  sizeBytes: number;
  mtimeNs: bigint;
  priority: number;
  /** Cap, or null for none. */
  maxCopies: number | null;
  objectId: number | null;
  hash: string | null;
  /** Disk ids holding the object after the simulated loss, ascending. */
  holders: number[];
  /** Files (anywhere) referencing the same object. */
  refs: number;
  /** True on the one file per object that carries its bytes in this view. */
  charged: boolean;
}

/** The registered disks that are not dropped: id → name. */
export function liveDisks(db: Db): Map<number, string> {
  const rows = db.prepare('SELECT id, name FROM disks WHERE dropped_ms IS NULL ORDER BY name').all() as {
    id: number;
    name: string;
  }[];
  return new Map(rows.map((r) => [r.id, r.name]));
}

/** Resolve disk names to ids; an unknown name is a UsageError listing the known ones. */
export function resolveFilter(db: Db, opts: ViewFilterOptions): ViewFilter {
  const disks = liveDisks(db);
  const byName = new Map([...disks].map(([id, name]) => [name, id]));
  const ids = (names: readonly string[] | undefined, flag: string): Set<number> => {
    const out = new Set<number>();
    for (const n of names ?? []) {
      const id = byName.get(n);
      if (id === undefined) {
        throw new UsageError(`${flag} ${n}: no such disk (known: ${[...byName.keys()].join(', ') || 'none'})`);
      }
      out.add(id);
    }
    return out;
  };
  const count = (v: number | undefined, flag: string): number | undefined => {
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw new UsageError(`${flag} must be a whole number ≥ 0`);
    return v;
  };
  return {
    minCopies: count(opts.minCopies, '--min-copies'),
    maxCopies: count(opts.maxCopies, '--max-copies'),
    onAll: ids(opts.on, '--on'),
    notOn: ids(opts.notOn, '--not-on'),
    simulateLoss: ids(opts.simulateLoss, '--simulate-loss'),
  };
}

/** True when the filter lets everything through (then ncdu/tree need not say "filtered"). */
export function isNoFilter(f: ViewFilter): boolean {
  return (
    f.minCopies === undefined &&
    f.maxCopies === undefined &&
    f.onAll.size === 0 &&
    f.notOn.size === 0 &&
    f.simulateLoss.size === 0
  );
}

type Raw = [
  bigint,
  Buffer,
  bigint,
  bigint,
  bigint,
  bigint,
  bigint | null,
  string | null,
  string | null,
  bigint,
  bigint | null,
];

/**
 * Stream the regular files at or below `prefix` (`/` for all) that pass `filter`, ordered by
 * virtual path.
 */
export function* viewRows(db: Db, prefix: string, filter: ViewFilter): Generator<ViewRow> {
  const all = prefix === '/';
  const { lo, hi } = subtreeRange(prefix);
  const exact = Buffer.from(prefix, 'utf8');
  const inRange = (col: string): string => (all ? '1' : `(${col} = @exact OR (${col} >= @lo AND ${col} < @hi))`);
  const stmt = db
    .prepare(
      // The files sharing an object are counted once per object (refs: over the whole catalogue,
      // for the objects in range only) and the first of them in the range is charged (a window
      // over the range): a subquery per row over its object's files was quadratic in duplicates
      // (60,000 empty files: minutes). `+f.object_id`: not an index to drive the query by (the
      // catalogue is never ANALYZEd, and SQLite then scanned every file by object to partition).
      `WITH refs AS (SELECT object_id, count(*) AS n FROM files
                     WHERE kind = ${FileKind.file} AND ${
                       all
                         ? 'object_id IS NOT NULL'
                         : `object_id IN (SELECT object_id FROM files WHERE kind = ${FileKind.file} AND ${inRange('vpath')})`
                     }
                     GROUP BY object_id)
       SELECT f.id, f.vpath, f.size, f.mtime_ns, f.priority, f.max_copies, f.object_id, o.hash,
              (SELECT group_concat(c.disk_id) FROM copies c JOIN disks d ON d.id = c.disk_id
               WHERE c.object_id = f.object_id AND d.dropped_ms IS NULL) AS holders,
              coalesce(r.n, 0) AS refs,
              f.vpath = min(f.vpath) OVER (PARTITION BY +f.object_id) AS charged
       FROM files f LEFT JOIN objects o ON o.id = f.object_id LEFT JOIN refs r ON r.object_id = f.object_id
       WHERE f.kind = ${FileKind.file} AND ${inRange('f.vpath')}
       ORDER BY f.vpath`,
    )
    .raw(true)
    .safeIntegers(true);
  const args = all ? {} : { exact, lo, hi };
  for (const r of stmt.iterate(args) as IterableIterator<Raw>) {
    const held = r[8] === null ? [] : r[8].split(',').map(Number);
    if (filter.onAll.size > 0 && ![...filter.onAll].every((d) => held.includes(d))) continue;
    if (filter.notOn.size > 0 && held.some((d) => filter.notOn.has(d))) continue;
    const holders = (filter.simulateLoss.size === 0 ? held : held.filter((d) => !filter.simulateLoss.has(d))).sort(
      (a, b) => a - b,
    );
    if (filter.minCopies !== undefined && holders.length < filter.minCopies) continue;
    if (filter.maxCopies !== undefined && holders.length > filter.maxCopies) continue;
    const maxCopies = Number(r[5]);
    yield {
      id: Number(r[0]),
      vpath: r[1],
      sizeBytes: Number(r[2]),
      mtimeNs: r[3],
      priority: Number(r[4]),
      maxCopies: maxCopies >= NO_CAP ? null : maxCopies,
      objectId: r[6] === null ? null : Number(r[6]),
      hash: r[7],
      holders,
      refs: Number(r[9]),
      charged: r[6] === null ? true : Number(r[10]) === 1,
    };
  }
}
