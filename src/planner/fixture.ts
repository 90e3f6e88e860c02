/**
 * The one builder of planner inputs that do not come from a catalogue: a few plain rows (tests,
 * the pool simulation) or a seeded synthetic pool of any size (the planner benchmarks and the
 * scale tests). Pure and deterministic; the catalogue builds real inputs column by column.
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

/** The per-object columns of a PlannerInput for `n` objects: priorities 1, targets 1, no caps. */
function emptyColumns(n: number) {
  return {
    count: n,
    objectId: new Float64Array(n),
    sizeBytes: new Float64Array(n),
    copiesElsewhere: new Uint16Array(n),
    onThisDisk: new Uint8Array(n),
    priority: new Uint32Array(n).fill(1),
    minCopies: new Uint16Array(n).fill(1),
    maxCopies: new Uint32Array(n).fill(UNCAPPED),
    holderSet: new Uint32Array(n),
    holderSets: [] as number[][],
  };
}

/**
 * Interns sets of holder disks: the index in `sets` of a sorted list of disk ids, added when new.
 * Used for fixtures here and by the catalogue's planner input. Not thread-safe.
 */
export class HolderSets {
  readonly sets: number[][];
  private readonly index = new Map<string, number>();
  constructor(sets: number[][]) {
    this.sets = sets;
  }
  /** The index of `sortedHolders`. */
  of(sortedHolders: number[]): number {
    return this.ofKey(sortedHolders.join(','), sortedHolders);
  }
  /** The index of the set whose ids, sorted and joined with commas, are `key` ('' = none). */
  ofKey(key: string, sortedHolders?: number[]): number {
    let h = this.index.get(key);
    if (h === undefined) {
      h = this.sets.length;
      this.sets.push(sortedHolders ?? (key === '' ? [] : key.split(',').map(Number)));
      this.index.set(key, h);
    }
    return h;
  }
}

/** Columns for `rows` (row k = object index k; ids default to k). */
export function inputFromRows(rows: readonly ObjectRow[], o: FixtureOptions): PlannerInput {
  const col = emptyColumns(rows.length);
  const sets = new HolderSets(col.holderSets);
  rows.forEach((r, k) => {
    col.objectId[k] = r.id ?? k;
    col.sizeBytes[k] = r.sizeBytes;
    const holders = [...(r.holders ?? [])].sort((a, b) => a - b);
    col.copiesElsewhere[k] = r.holders === undefined ? (r.copiesElsewhere ?? 0) : holders.length;
    col.onThisDisk[k] = r.onThisDisk === true ? 1 : 0;
    col.priority[k] = r.priority ?? 1;
    col.minCopies[k] = r.minCopies ?? 1;
    col.maxCopies[k] = r.maxCopies ?? UNCAPPED;
    col.holderSet[k] = sets.of(holders);
  });
  const orphans = o.orphans ?? [];
  return {
    ...col,
    orphans: {
      objectId: Float64Array.from(orphans.map((x) => x.id)),
      sizeBytes: Float64Array.from(orphans.map((x) => x.sizeBytes)),
    },
    capacityBytes: o.capacityBytes,
    ...(o.options === undefined ? {} : { options: o.options }),
  };
}

/** mulberry32: a small, fast seeded generator of floats in [0, 1), so pools can be replayed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A seeded synthetic pool of `count` objects over `disks` disks (at most 31), seen from disk 0:
 * sizes log-uniform between 4 KiB and 64 MiB (photos, documents, short videos); each object held
 * by 0–3 random disks (one in six by none: new files), so the connected disk holds about one in
 * fifteen; 2 % at priority 2, 5 % at priority 0, 10 % with a copy target of 2; 1 % orphans; the
 * disk's size is its equal share of two copies of everything, so the plan evicts, copies and
 * skips. `fresh`: an empty disk (nothing on it, no orphans); `whole`: an empty disk large enough
 * for the whole pool (one copy step per object: the largest plan there is).
 */
export function syntheticPool(count: number, disks: number, fresh = false, seed = 1, whole = false): PlannerInput {
  if (!(disks >= 2 && disks <= 31)) throw new RangeError(`syntheticPool: ${disks} disks, expected 2 to 31`);
  const r = mulberry32(seed);
  const col = emptyColumns(count);
  const sets = new HolderSets(col.holderSets);
  const lnMin = Math.log(4096);
  const lnSpan = Math.log(64 * 1024 * 1024) - lnMin;
  let total = 0;
  for (let i = 0; i < count; i++) {
    col.objectId[i] = i + 1;
    const size = Math.floor(Math.exp(lnMin + r() * lnSpan));
    col.sizeBytes[i] = size;
    total += size;
    const u = r();
    const copies = u < 1 / 6 ? 0 : u < 0.5 ? 1 : u < 0.85 ? 2 : 3;
    let mask = 0;
    for (let k = 0; k < copies; ) {
      const d = Math.floor(r() * disks);
      if ((mask >>> d) & 1) continue;
      mask |= 1 << d;
      k++;
    }
    col.onThisDisk[i] = fresh ? 0 : mask & 1;
    const others: number[] = [];
    for (let d = 1; d < disks; d++) if ((mask >>> d) & 1) others.push(d);
    col.holderSet[i] = sets.of(others);
    col.copiesElsewhere[i] = others.length;
    const p = r();
    col.priority[i] = p < 0.05 ? 0 : p < 0.07 ? 2 : 1;
    col.minCopies[i] = r() < 0.1 ? 2 : 1;
  }
  const orphanCount = fresh ? 0 : Math.floor(count / 100);
  const orphans = { objectId: new Float64Array(orphanCount), sizeBytes: new Float64Array(orphanCount) };
  for (let k = 0; k < orphanCount; k++) {
    orphans.objectId[k] = count + k + 1;
    orphans.sizeBytes[k] = Math.floor(Math.exp(lnMin + r() * lnSpan));
  }
  return { ...col, orphans, capacityBytes: whole ? 2 * total : Math.floor((2 * total) / disks) };
}
