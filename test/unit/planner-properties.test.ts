/**
 * Properties of the planner (issue 6) over random small instances, checked against a
 * brute-force search and against the rules of SPEC §5. Seeded: set PLANNER_SEED to replay.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { allocatedSize } from '../../src/core/units.js';
import { inputFromRows, type ObjectRow } from '../../src/planner/fixture.js';
import { type Plan, type PlannerInput, plan, UNCAPPED } from '../../src/planner/index.js';

const SEED = Number(process.env.PLANNER_SEED ?? Date.now() % 2 ** 31);
const RUNS = Number(process.env.PLANNER_RUNS ?? 200);
console.log(`planner properties: seed ${SEED} (PLANNER_SEED=${SEED} to replay), ${RUNS} runs each`);
const params = { seed: SEED, numRuns: RUNS };

const KiB4 = 4096;
interface Shape {
  readonly targets?: boolean;
  readonly caps?: boolean;
  readonly priorityZero?: boolean;
  readonly options?: boolean;
  readonly maxObjects?: number;
}

/** A random instance: up to 12 objects held by random subsets of 5 other disks. */
function instance(shape: Shape): fc.Arbitrary<PlannerInput> {
  const row = fc.record({
    blocks: fc.integer({ min: 1, max: 8 }),
    extraBytes: fc.integer({ min: 0, max: KiB4 - 1 }),
    holders: fc.integer({ min: 0, max: 31 }),
    on: fc.boolean(),
    priority: fc.integer({ min: shape.priorityZero === true ? 0 : 1, max: 3 }),
    minCopies: shape.targets === true ? fc.integer({ min: 1, max: 4 }) : fc.constant(1),
    maxCopies:
      shape.caps === true ? fc.oneof(fc.constant(UNCAPPED), fc.integer({ min: 1, max: 4 })) : fc.constant(UNCAPPED),
  });
  const options =
    shape.options === true
      ? fc.record(
          {
            maxCopies: fc.integer({ min: 1, max: 5 }),
            noEvict: fc.boolean(),
            noBalance: fc.boolean(),
          },
          { requiredKeys: [] },
        )
      : fc.constant(undefined);
  return fc
    .record({
      rows: fc.array(row, { maxLength: shape.maxObjects ?? 12 }),
      capBlocks: fc.integer({ min: 0, max: 50 }),
      orphans: fc.array(fc.integer({ min: 0, max: 5 * KiB4 }), { maxLength: 2 }),
      options,
    })
    .map(({ rows, capBlocks, orphans, options }) => {
      const objects: ObjectRow[] = rows.map((r) => ({
        // blocks − 1 whole blocks plus a partial one: allocatedSize rounds it up.
        sizeBytes: Math.max(0, (r.blocks - 2) * KiB4 + (r.blocks >= 2 ? r.extraBytes + 1 : 0)),
        holders: [0, 1, 2, 3, 4].filter((d) => (r.holders & (1 << d)) !== 0),
        onThisDisk: r.on,
        priority: r.priority,
        minCopies: r.minCopies,
        maxCopies: r.maxCopies,
      }));
      return inputFromRows(objects, {
        capacityBytes: capBlocks * KiB4,
        orphans: orphans.map((sizeBytes, k) => ({ id: 1000 + k, sizeBytes })),
        ...(options === undefined ? {} : { options }),
      });
    });
}

const alloc = (inp: PlannerInput, i: number): number => allocatedSize(inp.sizeBytes[i] as number);
const c = (inp: PlannerInput, i: number): number => inp.copiesElsewhere[i] as number;
const pr = (inp: PlannerInput, i: number): number => inp.priority[i] as number;
const onDiskBytes = (inp: PlannerInput): number => {
  let s = 0;
  for (let i = 0; i < inp.count; i++) if (inp.onThisDisk[i] === 1) s += alloc(inp, i);
  return s;
};
/** The eviction rule's "ranks strictly ahead": fewer copies elsewhere, or as many and a higher
 * priority; an object that is not backed up is behind every one that is. */
const strictlyAhead = (inp: PlannerInput, n: number, e: number): boolean =>
  (pr(inp, e) === 0 && pr(inp, n) > 0) || c(inp, n) < c(inp, e) || (c(inp, n) === c(inp, e) && pr(inp, n) > pr(inp, e));

function evicted(p: Plan, inp: PlannerInput): number[] {
  const out: number[] = [];
  for (let i = 0; i < inp.count; i++) if (inp.onThisDisk[i] === 1 && p.keep[i] === 0) out.push(i);
  return out;
}
function copiedSet(p: Plan): number[] {
  return p.steps.flatMap((s) => (s.op === 'copy' ? [s.index] : []));
}

/**
 * Best minimum copy count over every set this disk could hold after a sync: last copies always
 * kept; within the size, or over it only by what is already there (nothing is deleted just to
 * shrink a disk, and nothing is copied onto a disk over its size).
 */
function bruteForceMin(inp: PlannerInput): number {
  const n = inp.count;
  let best = -1;
  for (let mask = 0; mask < 1 << n; mask++) {
    let used = 0;
    let ok = true;
    let copies = false;
    let min = Number.POSITIVE_INFINITY;
    for (let i = 0; i < n && ok; i++) {
      const k = (mask >> i) & 1;
      const here = inp.onThisDisk[i] === 1;
      if (here && c(inp, i) === 0 && k === 0) ok = false;
      if (!here && k === 1) copies = true;
      used += k * alloc(inp, i);
      min = Math.min(min, c(inp, i) + k);
    }
    if (!ok || (used > inp.capacityBytes && (copies || used > onDiskBytes(inp)))) continue;
    best = Math.max(best, n === 0 ? 0 : min);
  }
  return best;
}

test('(a) min copies after the plan equals the brute-force optimum (≤ 12 objects, all subsets)', () => {
  fc.assert(
    fc.property(instance({}), (inp) => {
      const p = plan(inp);
      assert.equal(p.minCopiesAfter, bruteForceMin(inp));
    }),
    params,
  );
});

test('(b) the last copy is never deleted, and deletions carry the planner’s proof', () => {
  fc.assert(
    fc.property(instance({ targets: true, caps: true, priorityZero: true, options: true }), (inp) => {
      const p = plan(inp);
      for (let i = 0; i < inp.count; i++) {
        if (inp.onThisDisk[i] === 1 && c(inp, i) === 0) assert.equal(p.keep[i], 1, `last copy ${i} deleted`);
      }
      const refIds = new Set<number>(Array.from(inp.objectId));
      for (const s of p.steps) {
        if (s.op !== 'delete') continue;
        if (s.del.kind === 'orphan') assert.ok(!refIds.has(s.del.objectId));
        else {
          const i = s.del.objectId; // fixture ids are the row index
          assert.ok(c(inp, i) >= 1, `deleted ${s.del.kind} ${i} has no other copy`);
          assert.equal(inp.onThisDisk[i], 1);
        }
      }
      // Bytes never go over the size because of a copy.
      let used = onDiskBytes(inp);
      for (const s of p.steps) {
        if (s.op === 'copy') {
          used += alloc(inp, s.index);
          assert.ok(used <= inp.capacityBytes, 'a copy overfills the disk');
        } else if (s.del.kind !== 'orphan') used -= allocatedSize(s.del.sizeBytes);
      }
      assert.equal(used, p.usedAfterBytes);
    }),
    params,
  );
});

test('(c) evictions only trade for objects ranked strictly ahead, and none is wasted', () => {
  fc.assert(
    fc.property(instance({ targets: true, caps: true, priorityZero: true, options: true }), (inp) => {
      const p = plan(inp);
      const ev = evicted(p, inp).filter((i) =>
        p.steps.some((s) => s.op === 'delete' && s.del.objectId === i && s.del.kind === 'evict'),
      );
      const cp = copiedSet(p);
      if (inp.options?.noEvict === true) assert.equal(ev.length, 0);
      // Each eviction comes before a copy of an object strictly ahead of it.
      for (let k = 0; k < p.steps.length; k++) {
        const s = p.steps[k];
        if (s?.op !== 'delete' || s.del.kind !== 'evict') continue;
        const e = s.del.objectId;
        const next = p.steps.slice(k + 1).find((t) => t.op === 'copy');
        assert.ok(next?.op === 'copy', `eviction of ${e} is not followed by a copy`);
        assert.ok(strictlyAhead(inp, next.index, e), `${e} evicted for ${next.index}, not ranked ahead`);
      }
      // No wasted eviction: keeping E instead of any copied N that is not strictly ahead of it
      // would not fit (N with as many or more copies, and no higher priority at equal count).
      for (const e of ev) {
        for (const n of cp) {
          if (strictlyAhead(inp, n, e)) continue;
          assert.ok(
            p.usedAfterBytes - alloc(inp, n) + alloc(inp, e) > inp.capacityBytes,
            `evicting ${e} was wasted: it fits in place of ${n}`,
          );
        }
        assert.ok(p.usedAfterBytes + alloc(inp, e) > inp.capacityBytes, `evicting ${e} was not needed`);
      }
      // The minimum never drops unless a cap asked for it.
      if (p.surplusDeletes === 0) assert.ok(p.minCopiesAfter >= p.minCopiesBefore);
    }),
    params,
  );
});

/** The input after `p` was carried out on this disk (other disks unchanged). */
function applied(inp: PlannerInput, p: Plan): PlannerInput {
  return {
    ...inp,
    onThisDisk: Uint8Array.from(p.keep),
    orphans: { objectId: new Float64Array(0), sizeBytes: new Float64Array(0) },
  };
}

test('(d) planning again after applying a plan moves nothing', () => {
  fc.assert(
    fc.property(instance({ targets: true, caps: true, priorityZero: true, options: true }), (inp) => {
      const p1 = plan(inp);
      const p2 = plan(applied(inp, p1));
      const moves = p2.steps.map((s) => (s.op === 'copy' ? `copy ${s.index}` : `${s.del.kind} ${s.del.objectId}`));
      // A disk that stays over its size may still be waiting for room; otherwise nothing moves.
      if (p1.blockedCopies === 0) assert.deepEqual(moves, []);
      // And a plan that moves nothing keeps exactly what is there.
      if (moves.length === 0) assert.deepEqual(p2.keep, p1.keep);
    }),
    params,
  );
});

test('large priorities (sorted as separate columns) plan exactly like small ones', () => {
  fc.assert(
    fc.property(instance({ targets: true, caps: true, priorityZero: true, options: true }), (inp) => {
      const big = { ...inp, priority: inp.priority.map((p) => (p === 0 ? 0 : p * 100_000)) };
      const a = plan(inp);
      const b = plan(big);
      assert.deepEqual(b.keep, a.keep);
      const trace = (p: Plan): string[] =>
        p.steps.map((s) => (s.op === 'copy' ? `copy ${s.index}` : `${s.del.kind} ${s.del.objectId}`));
      assert.deepEqual(trace(b), trace(a));
    }),
    params,
  );
});

test('a huge object (holder set and size sorted as two columns) changes nothing else', () => {
  fc.assert(
    fc.property(instance({ targets: true, caps: true, priorityZero: true, options: true }), (inp) => {
      const n = inp.count;
      const grow = <T extends Float64Array | Uint16Array | Uint8Array | Uint32Array>(col: T, v: number): T => {
        const out = new (col.constructor as new (len: number) => T)(n + 1);
        out.set(col.subarray(0, n));
        out[n] = v;
        return out;
      };
      const big: PlannerInput = {
        ...inp,
        count: n + 1,
        objectId: grow(inp.objectId, 999_999),
        sizeBytes: grow(inp.sizeBytes, 2 ** 52), // 2^40 blocks: never fits, and no composite key
        copiesElsewhere: grow(inp.copiesElsewhere, 0),
        onThisDisk: grow(inp.onThisDisk, 0),
        priority: grow(inp.priority, 1),
        minCopies: grow(inp.minCopies, 1),
        maxCopies: grow(inp.maxCopies, UNCAPPED),
        holderSet: grow(inp.holderSet, inp.holderSets.length), // a set of its own: nobody else's exposure
        holderSets: [...inp.holderSets, []],
      };
      const a = plan(inp);
      const b = plan(big);
      assert.deepEqual(b.keep.subarray(0, n), a.keep);
      const moves = (p: Plan): string[] =>
        p.steps.map((s) => (s.op === 'copy' ? `copy ${s.index}` : `${s.del.kind} ${s.del.objectId}`)).sort();
      assert.deepEqual(moves(b), moves(a));
    }),
    params,
  );
});
