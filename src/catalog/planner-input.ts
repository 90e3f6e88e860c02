/**
 * Building the planner's input (src/planner/types.ts) from the catalogue for one disk, streamed
 * row by row into typed-array columns (never one JS object per object), sorted by hash so that
 * the input position is the planner's reproducible tie-break. Copies of dropped disks are gone
 * from `copies`, so every row there counts.
 */
import { HolderSets } from '../planner/fixture.js';
import { type PlannerInput, UNCAPPED } from '../planner/types.js';
import type { Db } from './db.js';
import { NO_CAP } from './schema.js';
import { FUTURE_STAMP_SLACK_MS } from './verify-state.js';

export interface PlannerInputOptions {
  readonly maxCopies?: number;
  readonly limitBytes?: number;
  readonly noEvict?: boolean;
  /** Delete nothing on the disk (PlannerInput's keepCopies). */
  readonly keepCopies?: boolean;
  readonly noBalance?: boolean;
  /**
   * Copies elsewhere verified (or, never verified, written) at or after this time, and not
   * stamped after `futureMs`, are recent (PlannerInput's freshElsewhere). Default: the last 90
   * days (status's --stale), up to an hour ahead of now.
   */
  readonly recentSinceMs?: number;
  readonly futureMs?: number;
}

/** How long a copy's last verification (or its writing) keeps it recent: status's default --stale. */
export const RECENT_COPY_MS = 90 * 86_400_000;

/**
 * The planner input for disk `diskId` with declared capacity `capacityBytes`. Referenced objects
 * are those of regular files with a hash; an object takes the highest priority, copy target and
 * cap of the files referencing it.
 */
export function buildPlannerInput(
  db: Db,
  diskId: number,
  capacityBytes: number,
  options: PlannerInputOptions = {},
): PlannerInput {
  const count = db
    .prepare('SELECT count(DISTINCT object_id) FROM files WHERE kind = 0 AND object_id IS NOT NULL')
    .pluck()
    .get() as number;
  const objectId = new Float64Array(count);
  const sizeBytes = new Float64Array(count);
  const copiesElsewhere = new Uint16Array(count);
  const freshElsewhere = new Uint16Array(count);
  const now = Date.now();
  const since = options.recentSinceMs ?? now - RECENT_COPY_MS;
  const future = options.futureMs ?? now + FUTURE_STAMP_SLACK_MS;
  const onThisDisk = new Uint8Array(count);
  const priority = new Uint32Array(count);
  const minCopies = new Uint16Array(count);
  const maxCopies = new Uint32Array(count);
  const holderSet = new Uint32Array(count);
  const holderSets: number[][] = [];
  const sets = new HolderSets(holderSets);
  sets.ofKey(''); // set 0: held by no other disk

  // One pass, ordered by hash. holders is the sorted list of disks holding the object, each
  // followed by 's' when its copy is not recent (as status counts a stale copy).
  const stmt = db
    .prepare(
      `WITH ref AS (
         SELECT object_id, max(priority) AS p, max(min_copies) AS mn, max(max_copies) AS mx
         FROM files WHERE kind = 0 AND object_id IS NOT NULL GROUP BY object_id)
       SELECT o.id, o.size, ref.p, ref.mn, ref.mx,
              (SELECT group_concat(disk_id || CASE WHEN stamp >= @since AND stamp <= @future THEN '' ELSE 's' END)
               FROM (SELECT disk_id, coalesce(verified_ms, written_ms, 0) AS stamp
                     FROM copies WHERE object_id = o.id ORDER BY disk_id))
       FROM ref JOIN objects o ON o.id = ref.object_id
       ORDER BY o.hash`,
    )
    .raw(true);
  let i = 0;
  for (const row of stmt.iterate({ since, future }) as IterableIterator<
    [number, number, number, number, number, string | null]
  >) {
    if (i >= count) break; // files changed under us: the count query and this one disagree
    const [id, size, p, mn, mx, holders] = row;
    objectId[i] = id;
    sizeBytes[i] = size;
    priority[i] = Math.max(0, p);
    minCopies[i] = Math.min(0xffff, Math.max(0, mn));
    maxCopies[i] = mx >= NO_CAP ? UNCAPPED : Math.max(0, mx);
    let elsewhere = 0;
    let fresh = 0;
    let key = '';
    if (holders !== null) {
      const others: string[] = [];
      for (const h of holders.split(',')) {
        const stale = h.endsWith('s');
        const disk = stale ? h.slice(0, -1) : h;
        if (Number(disk) === diskId) onThisDisk[i] = 1;
        else {
          others.push(disk);
          if (!stale) fresh += 1;
        }
      }
      elsewhere = others.length;
      key = others.join(',');
    }
    copiesElsewhere[i] = Math.min(0xffff, elsewhere);
    freshElsewhere[i] = Math.min(0xffff, fresh);
    holderSet[i] = sets.ofKey(key);
    i += 1;
  }

  const orphanRows = db
    .prepare(
      `SELECT o.id, o.size FROM copies c JOIN objects o ON o.id = c.object_id
       WHERE c.disk_id = ? AND NOT EXISTS (SELECT 1 FROM files f WHERE f.object_id = o.id AND f.kind = 0)
       ORDER BY o.hash`,
    )
    .raw(true)
    .all(diskId) as [number, number][];
  const orphans = {
    objectId: Float64Array.from(orphanRows, (r) => r[0]),
    sizeBytes: Float64Array.from(orphanRows, (r) => r[1]),
  };

  const opts: {
    maxCopies?: number;
    limitBytes?: number;
    noEvict?: boolean;
    keepCopies?: boolean;
    noBalance?: boolean;
  } = {};
  if (options.maxCopies !== undefined) opts.maxCopies = options.maxCopies;
  if (options.limitBytes !== undefined) opts.limitBytes = options.limitBytes;
  if (options.noEvict !== undefined) opts.noEvict = options.noEvict;
  if (options.keepCopies !== undefined) opts.keepCopies = options.keepCopies;
  if (options.noBalance !== undefined) opts.noBalance = options.noBalance;
  const n = i;
  return {
    count: n,
    objectId: objectId.subarray(0, n),
    sizeBytes: sizeBytes.subarray(0, n),
    copiesElsewhere: copiesElsewhere.subarray(0, n),
    freshElsewhere: freshElsewhere.subarray(0, n),
    onThisDisk: onThisDisk.subarray(0, n),
    priority: priority.subarray(0, n),
    minCopies: minCopies.subarray(0, n),
    maxCopies: maxCopies.subarray(0, n),
    holderSet: holderSet.subarray(0, n),
    holderSets,
    orphans,
    capacityBytes,
    options: opts,
  };
}
