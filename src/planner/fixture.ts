/**
 * Build a PlannerInput from a few plain rows, and apply a plan to them: for tests, the benchmark
 * and the pool simulation, where objects are few or generated. Pure; not for 10 million rows
 * (the catalogue builds real inputs column by column).
 */
import { type PlannerInput, UNCAPPED } from './types.js';

/** One referenced object, as a test or a simulation states it. */
export interface ObjectRow {
  readonly id?: number;
  readonly sizeBytes: number;
  /** Disks other than this one holding it (ids), or just their number when `holders` is absent. */
  readonly holders?: readonly number[];
  readonly copiesElsewhere?: number;
  readonly onThisDisk?: boolean;
  readonly priority?: number;
  readonly minCopies?: number;
  readonly maxCopies?: number;
}

/** Inputs of `inputFromRows` beyond the objects. */
export interface FixtureOptions {
  readonly capacityBytes: number;
  readonly orphans?: readonly { readonly id: number; readonly sizeBytes: number }[];
  readonly options?: PlannerInput['options'];
}

/** Columns for `rows` (row k = object index k; ids default to k). */
export function inputFromRows(rows: readonly ObjectRow[], o: FixtureOptions): PlannerInput {
  const n = rows.length;
  const objectId = new Float64Array(n);
  const sizeBytes = new Float64Array(n);
  const copiesElsewhere = new Uint16Array(n);
  const onThisDisk = new Uint8Array(n);
  const priority = new Uint32Array(n);
  const minCopies = new Uint16Array(n);
  const maxCopies = new Uint32Array(n);
  const holderSet = new Uint32Array(n);
  const sets: number[][] = [];
  const setIndex = new Map<string, number>();
  rows.forEach((r, k) => {
    objectId[k] = r.id ?? k;
    sizeBytes[k] = r.sizeBytes;
    const holders = [...(r.holders ?? [])].sort((a, b) => a - b);
    copiesElsewhere[k] = r.holders === undefined ? (r.copiesElsewhere ?? 0) : holders.length;
    onThisDisk[k] = r.onThisDisk === true ? 1 : 0;
    priority[k] = r.priority ?? 1;
    minCopies[k] = r.minCopies ?? 1;
    maxCopies[k] = r.maxCopies ?? UNCAPPED;
    const key = holders.join(',');
    let h = setIndex.get(key);
    if (h === undefined) {
      h = sets.length;
      sets.push(holders);
      setIndex.set(key, h);
    }
    holderSet[k] = h;
  });
  const orphans = o.orphans ?? [];
  return {
    count: n,
    objectId,
    sizeBytes,
    copiesElsewhere,
    onThisDisk,
    priority,
    minCopies,
    maxCopies,
    holderSet,
    holderSets: sets,
    orphans: {
      objectId: Float64Array.from(orphans.map((x) => x.id)),
      sizeBytes: Float64Array.from(orphans.map((x) => x.sizeBytes)),
    },
    capacityBytes: o.capacityBytes,
    ...(o.options === undefined ? {} : { options: o.options }),
  };
}
