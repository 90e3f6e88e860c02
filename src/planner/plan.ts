/**
 * The planner (SPEC §5): given the pool's copies of every referenced object and one connected
 * disk, choose what that disk keeps, deletes and receives. Pure and deterministic: no I/O, no
 * clock, no randomness; equal inputs give equal plans. Works over the typed-array columns of
 * `PlannerInput` without a JS object per object, so 10 million objects plan in seconds.
 *
 * How it decides (the reasoning behind each rule is in docs/README-planner.md):
 *
 * 1. Classify every object: a copy on this disk is *pinned* when no other disk holds it (the
 *    last copy; also every copy under `noEvict`), *surplus* when the other disks already hold
 *    its own cap (the run's `maxCopies` only stops copies), otherwise an eviction *candidate*;
 *    an object not on this disk is a *copy candidate* when it is backed up (priority > 0) and
 *    below its cap.
 * 2. Sort candidates into the order of need: level (no copy anywhere; below the copy target,
 *    fewest copies first; the rest, fewest copies first; not backed up last), then priority
 *    (highest first), then already on this disk, then (within one group) the balancing
 *    tie-break, then size (smallest first), then input index (= hash order).
 * 3. Fill an empty disk greedily in that order, with the pinned copies' room reserved: an
 *    object that fits is chosen, one that does not is passed over and smaller ones after it
 *    still go in. Room freed by a candidate that was not chosen went to objects ahead of it.
 * 4. Execute: delete orphans and surplus copies, then make the copies in the same order,
 *    evicting not-chosen candidates (lowest in the order first) just before the copy that needs
 *    their room; a candidate whose room is never needed stays.
 *
 * An eviction only ever makes room for an object that is strictly ahead of it (fewer copies
 * elsewhere, or as many and a higher priority; an object that is not backed up is behind every
 * one that is), and never for one below it; a candidate has another copy elsewhere, so no
 * eviction takes an object to 0 copies.
 */

import prettyBytes from 'pretty-bytes';
import { DistbackupError, RefusedError } from '../core/errors.js';
import { allocatedSize } from '../core/units.js';
import { counted } from '../ui/format.js';
import { blocksOf, type SortKey, sortIndices } from './radix.js';
import { type HistogramRow, type Plan, type PlannerInput, type PlanStep, type SafeDelete, UNCAPPED } from './types.js';

// ---------------------------------------------------------------------------------------------
// SafeDelete: the last-copy rule as a type. Only this module can mint one (the constructor
// checks a module-private symbol, and the class is not exported); `isSafeDelete` checks the
// private brand, which a structural look-alike or a cast object does not carry.

const MINT = Symbol('distbackup planner mint');

class SafeDeleteProof {
  readonly objectId: number;
  readonly sizeBytes: number;
  readonly kind: SafeDelete['kind'];
  readonly #planner = true;

  constructor(mint: symbol, objectId: number, sizeBytes: number, kind: SafeDelete['kind']) {
    if (mint !== MINT) {
      throw new DistbackupError('a SafeDelete can only be made by the planner', { code: 'unsafe-delete' });
    }
    this.objectId = objectId;
    this.sizeBytes = sizeBytes;
    this.kind = kind;
    Object.freeze(this);
  }

  static holds(v: unknown): boolean {
    return typeof v === 'object' && v !== null && #planner in v && (v as SafeDeleteProof).#planner;
  }
}

function mintDelete(objectId: number, sizeBytes: number, kind: SafeDelete['kind']): SafeDelete {
  return new SafeDeleteProof(MINT, objectId, sizeBytes, kind) as unknown as SafeDelete;
}

/** True when `v` is a SafeDelete made by the planner (not a cast or a copy). Thread-safe, pure. */
export function isSafeDelete(v: unknown): v is SafeDelete {
  return SafeDeleteProof.holds(v);
}

/**
 * Throws a RefusedError (exit 2) unless `v` was made by the planner. The executor calls this
 * before every unlink, so a deletion that did not come out of a plan cannot happen.
 */
export function assertSafeDelete(v: unknown): asserts v is SafeDelete {
  if (!SafeDeleteProof.holds(v)) {
    throw new RefusedError('refusing to delete an object without the planner’s proof that another copy exists', {
      code: 'unsafe-delete',
    });
  }
}

// ---------------------------------------------------------------------------------------------

/** Object states after classification (one byte per object). */
const NONE = 0; // not on this disk and not to be copied (not backed up, or at its cap)
const PINNED = 1; // on this disk and kept whatever happens (last copy, noEvict or keepCopies)
/** The orphans of a plan that deletes none (keepCopies). */
const NO_ORPHANS = { objectId: new Float64Array(0), sizeBytes: new Float64Array(0) } as const;
const CAND = 2; // on this disk, may be evicted for an object strictly ahead of it
const SURPLUS = 3; // on this disk, the other disks already hold its cap: deleted
const COPY = 4; // not on this disk, may be copied

/**
 * Levels of the order of need (lower = more needed), for copy counts 0 … maxCopies: c for no
 * copy or below the copy target, tier + c at or above it, 2 × tier + c for priority 0, where
 * tier = maxCopies + 1 (so that levels stay dense and small).
 */

/** Histogram rows: copies 0 … HIST_MAX, the last row meaning "that many or more". */
const HIST_MIN_ROWS = 3;
const HIST_MAX = 32;

/** Priorities below this pack with the level into one sort key (13 bits). */
const PACKED_PRIORITIES = 1 << 13;

/** Kinds of fill events (low bit of `FillState.events`). */
const EV_COPY = 0;
const EV_EVICTABLE = 1;

/**
 * Plan what the connected disk keeps, deletes and receives (SPEC §5). Pure and deterministic;
 * the input is only read. Throws DistbackupError on inconsistent input (columns shorter than
 * `count`, a negative capacity or size, a run cap below 1).
 */
export function plan(input: PlannerInput): Plan {
  checkInput(input);
  const n = input.count;
  const opts = input.options ?? {};
  const capacity = input.capacityBytes;
  const runCap = opts.maxCopies ?? UNCAPPED;
  const keepCopies = opts.keepCopies === true;
  const noEvict = opts.noEvict === true || keepCopies;
  const balance = opts.noBalance !== true && input.holderSets.length > 1;
  const { sizeBytes, copiesElsewhere, freshElsewhere, onThisDisk, priority, minCopies, maxCopies, holderSet } = input;

  // 1. Classify, and find the highest copy count (then the lowest priority at that count) among
  // objects below their copy target: a copy on this disk that such an object would otherwise
  // push out is ordered before it, since it may not be evicted for it (see levelOf).
  const state = new Uint8Array(n);
  let pinnedBytes = 0;
  // Orphans kept (keepCopies) take their room like any copy that stays.
  if (keepCopies) for (const size of input.orphans.sizeBytes) pinnedBytes += allocatedSize(size);
  let lastCopyBytes = 0;
  let lastCopies = 0;
  /** Copies here kept because none of their copies elsewhere was verified lately. */
  let staleKept = 0;
  let candidateBytes = 0;
  let considered = 0;
  let tier1MaxCopies = -1;
  let maxElsewhere = 0;
  let tier1MinPriority = 0;
  for (let i = 0; i < n; i++) {
    const c = copiesElsewhere[i] as number;
    const fresh = freshElsewhere === undefined ? c : Math.min(c, freshElsewhere[i] as number);
    if (c > maxElsewhere) maxElsewhere = c;
    const p = priority[i] as number;
    const cap = capOf(maxCopies[i] as number, runCap);
    let s = NONE;
    if (onThisDisk[i] === 1) {
      const a = allocatedSize(sizeBytes[i] as number);
      if (c === 0) {
        s = PINNED;
        pinnedBytes += a;
        lastCopyBytes += a;
        lastCopies++;
      } else if (fresh === 0) {
        // Its other copies were not verified lately: this one is the last known good one.
        s = PINNED;
        pinnedBytes += a;
        staleKept++;
      } else if (fresh >= capOf(maxCopies[i] as number, UNCAPPED) && !keepCopies) {
        // (fresh ≤ c: the copies elsewhere are at the cap, and enough of them recent.)
        // Surplus by the object's own cap only: a cap for one run stops copies, it does not
        // undo copies that the settings allow.
        s = SURPLUS;
      } else if (noEvict) {
        s = PINNED;
        pinnedBytes += a;
      } else {
        s = CAND;
        candidateBytes += a;
        considered++;
      }
    } else if (p > 0 && c < cap) {
      s = COPY;
      considered++;
    }
    state[i] = s;
    if (p > 0 && c >= 1 && c < Math.min(minCopies[i] as number, cap)) {
      if (c > tier1MaxCopies) {
        tier1MaxCopies = c;
        tier1MinPriority = p;
      } else if (c === tier1MaxCopies && p < tier1MinPriority) {
        tier1MinPriority = p;
      }
    }
  }

  // 2. The order of need: a stable radix sort of the candidates' indices (ascending = hash
  // order). Level, priority and "already here" pack into one dense group key (rank of the
  // level, rank of the priority, already here) when priorities are below 2^13 (the usual case:
  // 0–9), so that the most significant key is one small pass; otherwise they are sorted as
  // three columns.
  if (n >= 2 ** 31)
    throw new DistbackupError(`planner input: ${n} objects is more than 2^31`, { code: 'planner-input' });
  let maxPriority = 0;
  for (let i = 0; i < n; i++) {
    const s = state[i] as number;
    if ((s === CAND || s === COPY) && (priority[i] as number) > maxPriority) maxPriority = priority[i] as number;
  }
  const packed = maxPriority < PACKED_PRIORITIES;
  let unprotectedFrom = 0; // packed group keys from here on are priority 0
  let perm: Uint32Array = new Uint32Array(considered);
  const group = new Uint32Array(considered); // aligned with perm as filled here
  const tier = maxElsewhere + 1;
  const levelSeen = new Uint8Array(packed ? 3 * tier : 0);
  const prioritySeen = new Uint8Array(packed ? maxPriority + 1 : 0);
  for (let i = 0, k = 0; i < n; i++) {
    const s = state[i] as number;
    if (s !== CAND && s !== COPY) continue;
    const p = priority[i] as number;
    const level = levelOf(
      s,
      copiesElsewhere[i] as number,
      p,
      Math.min(minCopies[i] as number, capOf(maxCopies[i] as number, runCap)),
      tier1MaxCopies,
      tier1MinPriority,
      tier,
    );
    group[k] = level;
    perm[k++] = i;
    if (packed) {
      levelSeen[level] = 1;
      prioritySeen[p] = 1;
    }
  }
  if (packed) {
    // Dense ranks: levels ascending, priorities descending.
    const levelRank = new Uint32Array(levelSeen.length);
    let levels = 0;
    for (let l = 0; l < levelSeen.length; l++) if (levelSeen[l] === 1) levelRank[l] = levels++;
    const prioRank = new Uint32Array(prioritySeen.length);
    let priorities = 0;
    for (let p = maxPriority; p >= 0; p--) if (prioritySeen[p] === 1) prioRank[p] = priorities++;
    for (let k = 0; k < considered; k++) {
      const i = perm[k] as number;
      const l = levelRank[group[k] as number] as number;
      const slot = state[i] === COPY ? 1 : 0;
      group[k] = ((l * priorities + (prioRank[priority[i] as number] as number)) << 1) | slot;
    }
    unprotectedFrom = levelSeen.subarray(0, 2 * tier).reduce((x, y) => x + y, 0) * priorities * 2;
  }
  const keys: SortKey[] = packed
    ? [{ kind: 'aligned', values: group }]
    : [
        { kind: 'aligned', values: group },
        { kind: 'u32', values: priority, descending: true },
        { kind: 'u32', values: state }, // CAND (already here) before COPY
      ];
  // Holder set then size: one composite column when both ranges fit in 32 bits together (the
  // usual case: a few thousand holder sets, sizes up to terabytes), which saves the sort a
  // column to carry and a pass or two.
  let hsMin = 0xffffffff;
  let hsMax = 0;
  let blkMin = 0xffffffff;
  let blkMax = 0;
  if (balance) {
    for (let k = 0; k < considered; k++) {
      const i = perm[k] as number;
      const h = holderSet[i] as number;
      const b = blocksOf(sizeBytes[i] as number);
      if (h < hsMin) hsMin = h;
      if (h > hsMax) hsMax = h;
      if (b < blkMin) blkMin = b;
      if (b > blkMax) blkMax = b;
    }
  }
  const blkBits = 32 - Math.clz32(blkMax - blkMin);
  const composite = balance && considered > 0 && blkBits + (32 - Math.clz32(hsMax - hsMin)) <= 32;
  const blkScale = 2 ** blkBits;
  if (composite) {
    const values = new Uint32Array(considered);
    for (let k = 0; k < considered; k++) {
      const i = perm[k] as number;
      values[k] = ((holderSet[i] as number) - hsMin) * blkScale + (blocksOf(sizeBytes[i] as number) - blkMin);
    }
    keys.push({ kind: 'aligned', values });
  } else {
    if (balance) keys.push({ kind: 'u32', values: holderSet });
    keys.push({ kind: 'blocks', values: sizeBytes });
  }
  const sorted = sortIndices(perm, keys);
  perm = sorted.perm;

  // The keys come back in sorted order: the fill below walks memory in order.
  const m = perm.length;
  const sortedGroup = sorted.keys[0] as Uint32Array;
  let ordBlocks: Uint32Array;
  let ordHolderSet: Uint32Array;
  if (composite) {
    const c = sorted.keys[keys.length - 1] as Uint32Array;
    ordBlocks = new Uint32Array(m);
    ordHolderSet = new Uint32Array(m);
    for (let j = 0; j < m; j++) {
      const x = c[j] as number;
      const h = Math.floor(x / blkScale);
      ordHolderSet[j] = h + hsMin;
      ordBlocks[j] = x - h * blkScale + blkMin;
    }
  } else {
    ordBlocks = sorted.keys[keys.length - 1] as Uint32Array;
    ordHolderSet = balance ? (sorted.keys[keys.length - 2] as Uint32Array) : new Uint32Array(0);
  }
  const ord: Ordered = {
    perm,
    blocks: ordBlocks,
    flags: new Uint8Array(m),
    holderSet: ordHolderSet,
    group: packed ? sortedGroup : new Uint32Array(m),
    sizeBytes,
  };
  if (packed) {
    for (let j = 0; j < m; j++) {
      const g = sortedGroup[j] as number;
      ord.flags[j] = (g & 1 ? F_COPY : 0) | (g >= unprotectedFrom ? F_UNPROTECTED : 0);
    }
  } else {
    const prio = sorted.keys[1] as Uint32Array; // flipped: 0xffffffff is priority 0
    const st = sorted.keys[2] as Uint32Array;
    for (let j = 0, g = -1; j < m; j++) {
      if (j === 0 || sortedGroup[j] !== sortedGroup[j - 1] || prio[j] !== prio[j - 1] || st[j] !== st[j - 1]) g++;
      ord.group[j] = g;
      ord.flags[j] = (st[j] === COPY ? F_COPY : 0) | (prio[j] === 0xffffffff ? F_UNPROTECTED : 0);
    }
  }

  // 3. Greedy fill from empty, pinned room reserved. It records, in the order objects were
  // considered (the balancing tie-break interleaves holder sets within a group), the chosen
  // copies and the candidates not chosen: all that execution needs.
  const keep = new Uint8Array(n);
  const fill: FillState = {
    free: capacity - pinnedBytes,
    budget: opts.limitBytes ?? Number.POSITIVE_INFINITY,
    exposed: new Float64Array(balance ? input.holderSets.length : 0),
    events: new Uint32Array(considered),
    eventCount: 0,
    evictable: 0,
  };
  if (balance) {
    // Start with every backed-up object exposed; what stays on this disk is not.
    const exposed = fill.exposed;
    for (let i = 0; i < n; i++) {
      if (priority[i] === 0 || state[i] === PINNED) continue;
      const h = holderSet[i] as number;
      exposed[h] = (exposed[h] as number) + allocatedSize(sizeBytes[i] as number);
    }
  }
  const ctx: FillContext = { ord, keep, fill };
  const ordGroup = ord.group;
  for (let g = 0; g < m; ) {
    const first = ordGroup[g] as number;
    let end = g + 1;
    while (end < m && ordGroup[end] === first) end++;
    if (balance) fillBalanced(ctx, g, end);
    else fillRun(ctx, g, end);
    g = end;
  }
  const events = fill.events;
  const eventCount = fill.eventCount;

  // 4. Execution order. Orphans and surplus copies first (they free room and need no proof
  // beyond "unreferenced" / "the cap is held elsewhere"), then copies in the order of need,
  // each preceded by the evictions that make its room, lowest-ranked candidate first.
  const orphans = keepCopies ? NO_ORPHANS : input.orphans;
  let surplusCount = 0;
  for (let i = 0; i < n; i++) if (state[i] === SURPLUS) surplusCount++;
  const log = new StepLog(input, orphans.objectId.length + surplusCount + fill.evictable, fill.eventCount);
  let bytesToDelete = 0;
  for (let k = 0; k < orphans.objectId.length; k++) {
    const size = orphans.sizeBytes[k] as number;
    log.delete(OP_ORPHAN, orphans.objectId[k] as number, size);
    bytesToDelete += size;
  }
  let surplusDeletes = 0;
  for (let i = 0; i < n; i++) {
    if (state[i] !== SURPLUS) continue;
    const size = sizeBytes[i] as number;
    log.delete(OP_SURPLUS, input.objectId[i] as number, size);
    bytesToDelete += size;
    surplusDeletes++;
  }

  // Candidates not chosen, in the order they were considered, with prefix sums of their room.
  const evCount = fill.evictable;
  const evIndex = new Uint32Array(evCount);
  const evPrefix = new Float64Array(evCount + 1);
  for (let q = 0, k = 0; q < eventCount; q++) {
    const ev = events[q] as number;
    if ((ev & 1) !== EV_EVICTABLE) continue;
    const j = ev >>> 1;
    evIndex[k] = perm[j] as number;
    evPrefix[k + 1] = (evPrefix[k] as number) + allocatedAt(ord, j);
    k++;
  }
  let used = pinnedBytes + candidateBytes;
  let tail = evCount; // evIndex[0..tail) are still on the disk
  let lo = 0; // evIndex[lo..) were considered after the current copy: they rank behind it
  // Copies logged before each candidate was considered: those rank ahead of it (evictionBound).
  const candBound = new Uint32Array(evCount);
  let evictions = 0;
  let copies = 0;
  let bytesToCopy = 0;
  let blockedCopies = 0;
  for (let q = 0; q < eventCount; q++) {
    const ev = events[q] as number;
    if ((ev & 1) === EV_EVICTABLE) {
      candBound[lo] = copies;
      lo++;
      continue;
    }
    const j = ev >>> 1;
    const i = perm[j] as number;
    const a = allocatedAt(ord, j);
    if (used + a > capacity) {
      // Only candidates ranked behind this object may make its room. When the disk started
      // over its size that may not be enough: then the copy waits rather than evicting an
      // object that ranks ahead of it.
      const behind = tail > lo ? (evPrefix[tail] as number) - (evPrefix[lo] as number) : 0;
      if (used - behind + a > capacity) {
        keep[i] = 0;
        blockedCopies++;
        continue;
      }
      while (used + a > capacity) {
        tail--;
        const e = evIndex[tail] as number;
        const eSize = sizeBytes[e] as number;
        used -= allocatedSize(eSize);
        log.delete(OP_EVICT, input.objectId[e] as number, eSize, tail);
        bytesToDelete += eSize;
        evictions++;
      }
    }
    used += a;
    log.copy(i);
    copies++;
  }
  // Candidates whose room no copy needed stay where they are.
  for (let k = 0; k < tail; k++) keep[evIndex[k] as number] = 1;
  for (let i = 0; i < n; i++) {
    const s = state[i] as number;
    if (s === PINNED) keep[i] = 1;
    else if (s === COPY && keep[i] === 1) bytesToCopy += sizeBytes[i] as number; // in index order: sequential
  }

  // 5. Redundancy before and after, over backed-up objects (priority > 0).
  const before = new Float64Array(HIST_MAX + 1);
  const beforeBytes = new Float64Array(HIST_MAX + 1);
  const after = new Float64Array(HIST_MAX + 1);
  const afterBytes = new Float64Array(HIST_MAX + 1);
  let minBefore = Number.POSITIVE_INFINITY;
  let minAfter = Number.POSITIVE_INFINITY;
  let maxSeen = 0;
  let unplaced = 0;
  let unplacedBytes = 0;
  let notBackedUp = 0;
  let notBackedUpBytes = 0;
  // Orphans kept (keepCopies) stay on the disk too.
  let usedAfter = 0;
  if (keepCopies) for (const size of input.orphans.sizeBytes) usedAfter += allocatedSize(size);
  for (let i = 0; i < n; i++) {
    const size = sizeBytes[i] as number;
    if (keep[i] === 1) usedAfter += allocatedSize(size);
    if (priority[i] === 0) {
      notBackedUp++;
      notBackedUpBytes += size;
      continue;
    }
    const c = copiesElsewhere[i] as number;
    const b = c + (onThisDisk[i] as number);
    const k = c + (keep[i] as number);
    if (b < minBefore) minBefore = b;
    if (k < minAfter) minAfter = k;
    if (b > maxSeen) maxSeen = b;
    if (k > maxSeen) maxSeen = k;
    const bb = Math.min(b, HIST_MAX);
    const kk = Math.min(k, HIST_MAX);
    before[bb] = (before[bb] as number) + 1;
    beforeBytes[bb] = (beforeBytes[bb] as number) + size;
    after[kk] = (after[kk] as number) + 1;
    afterBytes[kk] = (afterBytes[kk] as number) + size;
    if (k === 0) {
      unplaced++;
      unplacedBytes += size;
    }
  }
  const rows = Math.min(Math.max(maxSeen, HIST_MIN_ROWS), HIST_MAX);
  const noneBackedUp = minBefore === Number.POSITIVE_INFINITY;

  const warnings: string[] = [];
  if (usedAfter > capacity) {
    const why =
      lastCopies > 0
        ? `${counted(lastCopies, 'object')} (${formatBytes(lastCopyBytes)}) ${lastCopies === 1 ? 'has' : 'have'} no copy on any other disk and ${lastCopies === 1 ? 'is' : 'are'} kept`
        : 'copies already on it are kept: no eviction was allowed to make room';
    warnings.push(`this disk holds ${formatBytes(usedAfter)}, more than its size of ${formatBytes(capacity)}: ${why}`);
  }
  if (unplaced > 0) {
    const one = unplaced === 1;
    const why =
      opts.limitBytes === undefined
        ? `${one ? 'does' : 'do'} not fit on this one`
        : `${one ? 'is' : 'are'} not copied by this run`;
    warnings.push(
      `${counted(unplaced, 'object')} (${formatBytes(unplacedBytes)}) ${unplaced === 1 ? 'has' : 'have'} no copy on any disk and ${why}`,
    );
  }
  if (staleKept > 0 && (unplaced > 0 || blockedCopies > 0 || usedAfter > capacity)) {
    warnings.push(
      `${counted(staleKept, 'copy', 'copies')} on this disk ${staleKept === 1 ? 'is' : 'are'} kept although other disks hold ${staleKept === 1 ? 'that object' : 'those objects'}: none of those copies was verified lately (run 'distbackup verify' with those disks)`,
    );
  }
  if (blockedCopies > 0) {
    warnings.push(
      `${counted(blockedCopies, 'copy', 'copies')} wait${blockedCopies === 1 ? 's' : ''} for room: this disk is over its size and only lower-ranked copies may be evicted`,
    );
  }

  let steps: PlanStep[] | undefined;
  return {
    keep,
    get steps(): PlanStep[] {
      steps ??= Array.from({ length: log.length }, (_, k) => log.at(k));
      return steps;
    },
    stepCount: log.length,
    stepAt: (k: number): PlanStep => log.at(k),
    evictionBound: (k: number): number => candBound[log.candidateOf(k)] as number,
    orphanDeletes: orphans.objectId.length,
    surplusDeletes,
    evictions,
    copies,
    bytesToCopy,
    bytesToDelete,
    unplaced,
    usedAfterBytes: usedAfter,
    minCopiesBefore: noneBackedUp ? 0 : minBefore,
    minCopiesAfter: noneBackedUp ? 0 : minAfter,
    histogramBefore: histogramRows(before, beforeBytes, rows),
    histogramAfter: histogramRows(after, afterBytes, rows),
    warnings,
    notBackedUp: { objects: notBackedUp, bytes: notBackedUpBytes },
    blockedCopies,
  };
}

/** Op codes of the step log. */
const OP_ORPHAN = 0;
const OP_SURPLUS = 1;
const OP_EVICT = 2;
const OP_COPY = 3;
const DELETE_KIND: readonly SafeDelete['kind'][] = ['orphan', 'surplus', 'evict'];

/**
 * The plan's steps in a few bytes each (one JS object per step would be 1 GB for a disk that
 * takes 10 million copies): an op code and a reference. What a deletion removes is recorded
 * here at planning time, privately, so the SafeDelete minted on demand by `at` cannot be
 * steered by changing the input or any array the plan exposes.
 */
class StepLog {
  private readonly op: Uint8Array;
  private readonly ref: Uint32Array;
  private readonly delId: Float64Array;
  private readonly delSize: Float64Array;
  /** For an eviction: the candidate's position among the evictable candidates (evictionBound). */
  private readonly delCand: Uint32Array;
  private delCount = 0;
  length = 0;

  constructor(
    private readonly input: PlannerInput,
    maxDeletes: number,
    maxCopies: number,
  ) {
    this.op = new Uint8Array(maxDeletes + maxCopies);
    this.ref = new Uint32Array(maxDeletes + maxCopies);
    this.delId = new Float64Array(maxDeletes);
    this.delSize = new Float64Array(maxDeletes);
    this.delCand = new Uint32Array(maxDeletes);
  }

  delete(op: number, objectId: number, sizeBytes: number, candidate = 0): void {
    const d = this.delCount++;
    this.delId[d] = objectId;
    this.delSize[d] = sizeBytes;
    this.delCand[d] = candidate;
    this.op[this.length] = op;
    this.ref[this.length++] = d;
  }

  /** The evictable candidate of the eviction at step k. */
  candidateOf(k: number): number {
    if (this.op[k] !== OP_EVICT || k >= this.length) {
      throw new DistbackupError(`plan step ${k} is not an eviction`, { code: 'planner-step' });
    }
    return this.delCand[this.ref[k] as number] as number;
  }

  copy(index: number): void {
    this.op[this.length] = OP_COPY;
    this.ref[this.length++] = index;
  }

  at(k: number): PlanStep {
    if (!(Number.isInteger(k) && k >= 0 && k < this.length)) {
      throw new DistbackupError(`plan step ${k} out of range 0..${this.length - 1}`, { code: 'planner-step' });
    }
    const op = this.op[k] as number;
    const r = this.ref[k] as number;
    if (op === OP_COPY) {
      return {
        op: 'copy',
        index: r,
        objectId: this.input.objectId[r] as number,
        sizeBytes: this.input.sizeBytes[r] as number,
      };
    }
    const kind = DELETE_KIND[op] as SafeDelete['kind'];
    return { op: 'delete', del: mintDelete(this.delId[r] as number, this.delSize[r] as number, kind) };
  }
}

/** The effective cap of one object: its own, this run's, and never below 1. */
function capOf(objectCap: number, runCap: number): number {
  return Math.max(Math.min(objectCap, runCap), 1);
}

/**
 * Level in the order of need. A copy already on this disk that is at its copy target would
 * normally come after every object below its target; but it may only be evicted for an object
 * with fewer copies (or as many and a higher priority), so when some object below its target
 * has as many copies or more, the copy here is ordered as if it were below its target too.
 * Otherwise the greedy fill would give its room to an object that may not take it.
 */
function levelOf(
  s: number,
  c: number,
  p: number,
  target: number,
  tier1MaxCopies: number,
  tier1MinPriority: number,
  tier: number,
): number {
  if (p === 0) return 2 * tier + c;
  if (c === 0) return 0;
  if (c < target) return c;
  if (s === CAND && (c < tier1MaxCopies || (c === tier1MaxCopies && p >= tier1MinPriority))) return c;
  return tier + c;
}

interface FillState {
  /** Allocated bytes still free on the disk being filled from empty (may start negative). */
  free: number;
  /** Real bytes that copies may still add (`limitBytes`). */
  budget: number;
  /**
   * Per holder set H: allocated bytes of backed-up objects held by exactly H and not (yet)
   * chosen for this disk, i.e. lost if the disks of H die. The balancing tie-break takes from
   * the most exposed holder set first, which evens out what each combination of disks holds
   * alone, and so what losing any two disks costs.
   */
  exposed: Float64Array;
  /**
   * In the order considered: `j * 2 + EV_COPY` for a copy chosen, `j * 2 + EV_EVICTABLE` for an
   * object already here that was not chosen (evicted if a copy needs its room); j is the
   * position in the sorted order.
   */
  events: Uint32Array;
  eventCount: number;
  /** How many EV_EVICTABLE events. */
  evictable: number;
}

/** The candidates in sorted order: position j holds object perm[j]. */
interface Ordered {
  readonly perm: Uint32Array;
  /** Allocated 4 KiB blocks of perm[j] (see blocksOf). */
  readonly blocks: Uint32Array;
  /** The input's sizeBytes (by object index: read only where the real size matters). */
  readonly sizeBytes: Float64Array;
  /** F_COPY, F_UNPROTECTED. */
  readonly flags: Uint8Array;
  /** holderSet of perm[j] (empty without balancing). */
  readonly holderSet: Uint32Array;
  /** Equal for positions in one group (same level, priority, already here). */
  readonly group: Uint32Array;
}

const F_COPY = 1;
const F_UNPROTECTED = 2;

interface FillContext {
  readonly ord: Ordered;
  readonly keep: Uint8Array;
  readonly fill: FillState;
}

/** Outcomes of `consider`. */
const CHOSEN = 0;
const NO_ROOM = 1; // larger objects after it do not fit either
const NO_BUDGET = 2; // over the byte limit of this run; a smaller one may still be within it

/** Allocated bytes of the object at sorted position j (allocatedSize() of its size). */
function allocatedAt(ord: Ordered, j: number): number {
  const b = ord.blocks[j] as number;
  return b < 0xffffffff ? b * 4096 : allocatedSize(ord.sizeBytes[ord.perm[j] as number] as number);
}

/** Consider the object at sorted position j: choose it if it fits (and, for a copy, the budget). */
function consider(ctx: FillContext, j: number): number {
  const f = ctx.fill;
  const ord = ctx.ord;
  const a = allocatedAt(ord, j);
  const flags = ord.flags[j] as number;
  const isCopy = (flags & F_COPY) !== 0;
  let outcome = CHOSEN;
  let size = 0;
  if (a > f.free) outcome = NO_ROOM;
  else if (isCopy && f.budget !== Number.POSITIVE_INFINITY) {
    size = ord.sizeBytes[ord.perm[j] as number] as number;
    if (size > f.budget) outcome = NO_BUDGET;
  }
  if (outcome !== CHOSEN) {
    if (!isCopy) {
      f.events[f.eventCount++] = j * 2 + EV_EVICTABLE;
      f.evictable++;
    }
    return outcome;
  }
  if (isCopy) {
    f.budget -= size;
    f.events[f.eventCount++] = j * 2 + EV_COPY;
  }
  f.free -= a;
  ctx.keep[ord.perm[j] as number] = 1;
  if (f.exposed.length > 0 && (flags & F_UNPROTECTED) === 0) {
    const h = ord.holderSet[j] as number;
    f.exposed[h] = (f.exposed[h] as number) - a;
  }
  return CHOSEN;
}

/** Consider positions [from, to) in order (sorted by size within the run). */
function fillRun(ctx: FillContext, from: number, to: number): void {
  for (let j = from; j < to; j++) consider(ctx, j);
}

/**
 * Consider one group (same level, priority, already-here) holder set by holder set: each step
 * takes the smallest remaining object of the most exposed holder set (the one whose disks hold
 * the most bytes that no other disk holds), so that what losing any combination of disks
 * costs evens out.
 * Within a holder set objects come smallest first, so once one does not fit none after it
 * does, and the rest of that holder set is passed over at once.
 */
function fillBalanced(ctx: FillContext, from: number, to: number): void {
  // When the whole group fits, every object in it is chosen whatever the order: skip the heap.
  let groupBytes = 0;
  let groupCopyBytes = 0;
  const f = ctx.fill;
  for (let j = from; j < to && groupBytes <= f.free; j++) {
    groupBytes += allocatedAt(ctx.ord, j);
    if (f.budget !== Number.POSITIVE_INFINITY && ((ctx.ord.flags[j] as number) & F_COPY) !== 0) {
      groupCopyBytes += ctx.ord.sizeBytes[ctx.ord.perm[j] as number] as number;
    }
  }
  if (groupBytes <= f.free && groupCopyBytes <= f.budget) {
    fillRun(ctx, from, to);
    return;
  }
  const hs = ctx.ord.holderSet;
  // Buckets: runs of one holder set (the sort put them together, smallest first inside).
  let buckets = 1;
  for (let j = from + 1; j < to; j++) if (hs[j] !== hs[j - 1]) buckets++;
  if (buckets === 1) {
    fillRun(ctx, from, to);
    return;
  }
  const head = new Uint32Array(buckets);
  const end = new Uint32Array(buckets);
  for (let j = from, b = -1; j < to; j++) {
    if (j === from || hs[j] !== hs[j - 1]) {
      b++;
      head[b] = j;
    }
    end[b] = j + 1;
  }
  const exposed = ctx.fill.exposed;
  const blocks = ctx.ord.blocks;
  const perm = ctx.ord.perm;
  // Each bucket's heap key, cached (only the bucket just taken from changes):
  // most exposed holder set first, then smaller head, then lower index.
  const keyExposed = new Float64Array(buckets);
  const keyBlocks = new Uint32Array(buckets);
  const keyIndex = new Uint32Array(buckets);
  const setKey = (b: number): void => {
    const j = head[b] as number;
    keyExposed[b] = exposed[hs[j] as number] as number;
    keyBlocks[b] = blocks[j] as number;
    keyIndex[b] = perm[j] as number;
  };
  for (let b = 0; b < buckets; b++) setKey(b);
  const heap = new Uint32Array(buckets);
  let len = 0;
  const less = (x: number, y: number): boolean => {
    const ex = keyExposed[x] as number;
    const ey = keyExposed[y] as number;
    if (ex !== ey) return ex > ey;
    const sx = keyBlocks[x] as number;
    const sy = keyBlocks[y] as number;
    if (sx !== sy) return sx < sy;
    return (keyIndex[x] as number) < (keyIndex[y] as number);
  };
  const siftDown = (at: number): void => {
    let k = at;
    const v = heap[k] as number;
    for (;;) {
      const l = 2 * k + 1;
      if (l >= len) break;
      const r = l + 1;
      const c = r < len && less(heap[r] as number, heap[l] as number) ? r : l;
      if (!less(heap[c] as number, v)) break;
      heap[k] = heap[c] as number;
      k = c;
    }
    heap[k] = v;
  };
  for (let b = 0; b < buckets; b++) heap[len++] = b;
  for (let k = (len >> 1) - 1; k >= 0; k--) siftDown(k);
  while (len > 0) {
    const b = heap[0] as number;
    const j = head[b] as number;
    const outcome = consider(ctx, j);
    if (outcome === NO_ROOM) {
      // Its smallest remaining object does not fit: neither will the rest of this holder set.
      for (let r = j + 1; r < (end[b] as number); r++) consider(ctx, r);
      heap[0] = heap[--len] as number;
    } else if (j + 1 < (end[b] as number)) {
      head[b] = j + 1;
      setKey(b);
    } else {
      heap[0] = heap[--len] as number;
    }
    if (len > 0) siftDown(0);
  }
}

function histogramRows(objects: Float64Array, bytes: Float64Array, rows: number): HistogramRow[] {
  const out: HistogramRow[] = [];
  for (let c = 0; c <= rows; c++) {
    let o = objects[c] as number;
    let b = bytes[c] as number;
    if (c === rows) {
      for (let d = c + 1; d <= HIST_MAX; d++) {
        o += objects[d] as number;
        b += bytes[d] as number;
      }
    }
    out.push({ copies: c, objects: o, bytes: b });
  }
  return out;
}

/** Bytes for a warning line, as every other line shows them (pretty-bytes, decimal units). */
function formatBytes(bytes: number): string {
  return prettyBytes(bytes);
}

function checkInput(input: PlannerInput): void {
  const n = input.count;
  const bad = (what: string): never => {
    throw new DistbackupError(`planner input: ${what}`, { code: 'planner-input' });
  };
  if (!Number.isInteger(n) || n < 0) bad(`count ${n} is not a non-negative integer`);
  const columns: [string, ArrayLike<number>][] = [
    ['objectId', input.objectId],
    ['sizeBytes', input.sizeBytes],
    ['copiesElsewhere', input.copiesElsewhere],
    ['onThisDisk', input.onThisDisk],
    ['priority', input.priority],
    ['minCopies', input.minCopies],
    ['maxCopies', input.maxCopies],
    ['holderSet', input.holderSet],
  ];
  if (input.freshElsewhere !== undefined) columns.push(['freshElsewhere', input.freshElsewhere]);
  for (const [name, col] of columns) if (col.length < n) bad(`${name} has ${col.length} rows, fewer than ${n}`);
  if (input.orphans.objectId.length !== input.orphans.sizeBytes.length) bad('orphan columns differ in length');
  if (!(Number.isFinite(input.capacityBytes) && input.capacityBytes >= 0)) {
    bad(`capacity ${input.capacityBytes} is not a size`);
  }
  const o = input.options;
  if (o?.maxCopies !== undefined && !(Number.isInteger(o.maxCopies) && o.maxCopies >= 1)) {
    bad(`maxCopies ${o.maxCopies} is not an integer of at least 1`);
  }
  if (o?.limitBytes !== undefined && !(o.limitBytes >= 0)) bad(`limitBytes ${o.limitBytes} is negative`);
  if (o?.noBalance !== true && input.holderSets.length > 1) {
    const sets = input.holderSets.length;
    for (let i = 0; i < n; i++)
      if ((input.holderSet[i] as number) >= sets) bad(`holderSet of row ${i} is out of range`);
  }
  for (let i = 0; i < n; i++) {
    const d = input.onThisDisk[i] as number;
    if (d > 1) bad(`onThisDisk of row ${i} is ${d}`);
    const size = input.sizeBytes[i] as number;
    if (!(size >= 0 && size <= Number.MAX_SAFE_INTEGER)) bad(`sizeBytes of row ${i} is ${size}`);
  }
}
