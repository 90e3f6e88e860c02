/**
 * The planner on a synthetic pool of 100,000 objects over 30 disks (the benchmark's pool):
 * the rules checked in one pass over the plan, replanning moves nothing, plans are
 * reproducible. No timing assertions (the benchmark measures time).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { syntheticPool } from '../../bench/planner.js';
import { allocatedSize } from '../../src/core/units.js';
import { isSafeDelete, type Plan, type PlannerInput, plan } from '../../src/planner/index.js';

const N = 100_000;

function checkRules(inp: PlannerInput, p: Plan): void {
  const index = new Map<number, number>();
  for (let i = 0; i < inp.count; i++) index.set(inp.objectId[i] as number, i);
  for (let i = 0; i < inp.count; i++) {
    if (inp.onThisDisk[i] === 1 && inp.copiesElsewhere[i] === 0) assert.equal(p.keep[i], 1, 'last copy deleted');
  }
  let used = 0;
  for (let i = 0; i < inp.count; i++) if (inp.onThisDisk[i] === 1) used += allocatedSize(inp.sizeBytes[i] as number);
  let pendingEvictions: number[] = [];
  for (const s of p.steps) {
    if (s.op === 'delete') {
      assert.ok(isSafeDelete(s.del));
      if (s.del.kind === 'orphan') continue;
      const i = index.get(s.del.objectId) as number;
      assert.ok((inp.copiesElsewhere[i] as number) >= 1);
      used -= allocatedSize(inp.sizeBytes[i] as number);
      if (s.del.kind === 'evict') pendingEvictions.push(i);
    } else {
      used += allocatedSize(s.sizeBytes);
      assert.ok(used <= inp.capacityBytes, 'copy over the size');
      for (const e of pendingEvictions) {
        const n = s.index;
        const cn = inp.copiesElsewhere[n] as number;
        const ce = inp.copiesElsewhere[e] as number;
        const pn = inp.priority[n] as number;
        const pe = inp.priority[e] as number;
        assert.ok((pe === 0 && pn > 0) || cn < ce || (cn === ce && pn > pe), `evicted ${e} for ${n}`);
      }
      pendingEvictions = [];
    }
  }
  assert.equal(pendingEvictions.length, 0, 'eviction with no copy after it');
  assert.equal(used, p.usedAfterBytes);
  assert.ok(p.minCopiesAfter >= p.minCopiesBefore);
}

test('a 100,000-object pool: every rule holds, replanning moves nothing, plans are reproducible', () => {
  for (const fresh of [false, true]) {
    const inp = syntheticPool(N, 30, fresh, 7);
    const p = plan(inp);
    assert.ok(p.copies > 0);
    if (!fresh) assert.ok(p.evictions > 0);
    checkRules(inp, p);
    const again = plan(inp);
    assert.deepEqual(again.keep, p.keep);
    assert.equal(again.steps.length, p.steps.length);
    const applied: PlannerInput = {
      ...inp,
      onThisDisk: Uint8Array.from(p.keep),
      orphans: { objectId: new Float64Array(0), sizeBytes: new Float64Array(0) },
    };
    const replan = plan(applied);
    assert.equal(replan.steps.length, 0, `replanning moved ${replan.copies} copies, ${replan.evictions} evictions`);
    const unbalanced = plan({ ...inp, options: { noBalance: true } });
    checkRules(inp, unbalanced);
    assert.equal(unbalanced.minCopiesAfter, p.minCopiesAfter);
  }
});
