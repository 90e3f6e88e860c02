/**
 * Pool simulation (issue 6, property e): random pools of 3–8 disks, synced one at a time in
 * random order, with files added and removed between rounds, as a user would run distbackup.
 * Seeded: set PLANNER_SEED to replay.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allocatedSize } from '../../src/core/units.js';
import { inputFromRows, type ObjectRow, mulberry32 as rng } from '../../src/planner/fixture.js';
import { plan } from '../../src/planner/index.js';

const SEED = Number(process.env.PLANNER_SEED ?? Date.now() % 2 ** 31);
console.log(`planner pool simulation: seed ${SEED} (PLANNER_SEED=${SEED} to replay)`);

const int = (r: () => number, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));

interface PoolObject {
  readonly id: number;
  readonly sizeBytes: number;
  /** Bit d set when disk d holds a copy. */
  mask: number;
}

class Pool {
  readonly objects: PoolObject[] = [];
  /** Per disk: objects no file references any more, still on that disk. */
  readonly orphans: Map<number, number>[];
  private nextId = 0;
  constructor(
    readonly capacities: readonly number[],
    readonly balance: boolean,
  ) {
    this.orphans = capacities.map(() => new Map());
  }

  add(sizeBytes: number): void {
    this.objects.push({ id: this.nextId++, sizeBytes, mask: 0 });
  }

  remove(k: number): void {
    const [o] = this.objects.splice(k, 1);
    if (o === undefined) return;
    this.capacities.forEach((_, d) => {
      if ((o.mask >> d) & 1) this.orphans[d]?.set(o.id, o.sizeBytes);
    });
  }

  /** Connect disk d: plan, check the plan against the disk, apply it. */
  /** Plan disk `d` and carry the plan out; returns how many steps it took. */
  sync(d: number): number {
    const bit = 1 << d;
    const rows: ObjectRow[] = this.objects.map((o) => ({
      id: o.id,
      sizeBytes: o.sizeBytes,
      holders: this.capacities.map((_, e) => e).filter((e) => e !== d && ((o.mask >> e) & 1) === 1),
      onThisDisk: (o.mask & bit) !== 0,
    }));
    const orphans = [...(this.orphans[d] ?? new Map()).entries()].map(([id, sizeBytes]) => ({ id, sizeBytes }));
    const capacityBytes = this.capacities[d] as number;
    const p = plan(
      inputFromRows(rows, { capacityBytes, orphans, ...(this.balance ? {} : { options: { noBalance: true } }) }),
    );
    // Carry the steps out in order, as the executor would, checking the room at every copy.
    let used = 0;
    for (const o of this.objects) if (o.mask & bit) used += allocatedSize(o.sizeBytes);
    for (const size of this.orphans[d]?.values() ?? []) used += allocatedSize(size);
    const byId = new Map(this.objects.map((o) => [o.id, o]));
    for (const s of p.steps) {
      if (s.op === 'copy') {
        used += allocatedSize(s.sizeBytes);
        assert.ok(used <= capacityBytes, `disk ${d} overfilled by a copy`);
        const o = this.objects[s.index] as PoolObject;
        o.mask |= bit;
      } else {
        used -= allocatedSize(s.del.sizeBytes);
        if (s.del.kind === 'orphan') continue;
        const o = byId.get(s.del.objectId) as PoolObject;
        assert.ok((o.mask & ~bit) !== 0, `disk ${d} deleted the last copy of ${o.id}`);
        o.mask &= ~bit;
      }
    }
    this.orphans[d]?.clear();
    this.objects.forEach((o, i) => {
      assert.equal((o.mask & bit) !== 0, p.keep[i] === 1);
    });
    return p.stepCount;
  }

  minCopies(): number {
    let min = Number.POSITIVE_INFINITY;
    for (const o of this.objects) min = Math.min(min, popcount(o.mask));
    return this.objects.length === 0 ? 0 : min;
  }

  /** Bytes that drop to 0 copies if the worst pair of disks dies. */
  worstPairLoss(): number {
    let worst = 0;
    const n = this.capacities.length;
    for (let a = 0; a < n; a++) {
      for (let b = a + 1; b < n; b++) {
        const pair = (1 << a) | (1 << b);
        let lost = 0;
        for (const o of this.objects) if (o.mask !== 0 && (o.mask & ~pair) === 0) lost += o.sizeBytes;
        worst = Math.max(worst, lost);
      }
    }
    return worst;
  }
}

function popcount(m: number): number {
  let c = 0;
  for (let x = m; x !== 0; x &= x - 1) c++;
  return c;
}

function shuffled(n: number, r: () => number): number[] {
  const a = Array.from({ length: n }, (_, k) => k);
  for (let k = n - 1; k > 0; k--) {
    const j = Math.floor(r() * (k + 1));
    [a[k], a[j]] = [a[j] as number, a[k] as number];
  }
  return a;
}

test('(e) equal-sized objects: one round over all disks reaches floor(total capacity / total size)', () => {
  const POOLS = Number(process.env.PLANNER_POOLS ?? 60);
  const extraRounds: number[] = [0, 0, 0, 0];
  for (let t = 0; t < POOLS; t++) {
    const r = rng(SEED + t);
    const disks = int(r, 3, 8);
    const blocks = int(r, 1, 64); // every object has the same allocated size
    const size = (blocks - 1) * 4096;
    const a = allocatedSize(size);
    const n0 = int(r, 5, 120);
    // Disks no larger than the whole set, of any size in between (not only whole objects).
    const caps = Array.from({ length: disks }, () => int(r, 0, n0) * a + int(r, 0, a - 1));
    const pool = new Pool(caps, r() < 0.5);
    for (let k = 0; k < n0; k++) pool.add(size);
    const bound = (): number => {
      const slots = caps.reduce((s, c) => s + Math.min(Math.floor(c / a), pool.objects.length), 0);
      return pool.objects.length === 0 ? 0 : Math.floor(slots / pool.objects.length);
    };
    // From an empty pool, one round over all disks in any order reaches the bound.
    for (const d of shuffled(disks, r)) pool.sync(d);
    assert.equal(pool.minCopies(), bound(), `pool ${t} (seed ${SEED + t}): min ${pool.minCopies()} after one round`);
    // After files come and go, a disk synced early cannot see what later disks will free, so
    // the bound may take more rounds; it must come, and stay once reached.
    for (let change = 0; change < 3; change++) {
      for (let k = int(r, 0, Math.floor(pool.objects.length / 4)); k > 0; k--) {
        pool.remove(int(r, 0, pool.objects.length - 1));
      }
      for (let k = int(r, 0, Math.max(0, n0 - pool.objects.length)); k > 0; k--) pool.add(size);
      let rounds = 0;
      do {
        for (const d of shuffled(disks, r)) pool.sync(d);
        rounds++;
        assert.ok(rounds <= extraRounds.length, `pool ${t} (seed ${SEED + t}): no convergence in ${rounds} rounds`);
      } while (pool.minCopies() < bound());
      extraRounds[rounds - 1] = (extraRounds[rounds - 1] as number) + 1;
      assert.equal(pool.minCopies(), bound());
    }
  }
  console.log(
    `equal sizes: ${POOLS} pools, each at floor(total capacity / total size) after one round from empty; ` +
      `after files came and went, rounds to get back: ${extraRounds.map((c, k) => `${k + 1}: ${c}`).join(', ')}`,
  );
});

test('(e) random sizes: achieved minimum against the bound, worst two-disk loss with and without balancing', () => {
  const POOLS = Number(process.env.PLANNER_POOLS ?? 30);
  const rows: string[] = [];
  let sumBal = 0;
  let sumNoBal = 0;
  let belowBound = 0;
  for (let t = 0; t < POOLS; t++) {
    const result = [true, false].map((balance) => {
      const r = rng(SEED * 7 + t); // the same pool and history for both runs
      const disks = int(r, 3, 8);
      const pool = new Pool(
        Array.from({ length: disks }, () => 0),
        balance,
      );
      const sizeOf = (): number => Math.floor(4096 * 2 ** (r() * 12)); // 4 KiB … 16 MiB, log-uniform
      for (let k = 0, n = int(r, 50, 300); k < n; k++) pool.add(sizeOf());
      const total = pool.objects.reduce((s, o) => s + allocatedSize(o.sizeBytes), 0);
      const caps = Array.from({ length: disks }, () => Math.floor(total * (0.2 + 0.8 * r())));
      (pool.capacities as number[]).splice(0, disks, ...caps);
      for (let round = 0; round < 3; round++) {
        if (round > 0) {
          for (let k = int(r, 0, 20); k > 0; k--) pool.remove(int(r, 0, pool.objects.length - 1));
          for (let k = int(r, 0, 20); k > 0; k--) pool.add(sizeOf());
        }
        for (const d of shuffled(disks, r)) pool.sync(d);
      }
      const totalNow = pool.objects.reduce((s, o) => s + allocatedSize(o.sizeBytes), 0);
      const bound = Math.floor(caps.reduce((s, c) => s + c, 0) / totalNow);
      // Nothing left to change: within a few more rounds a whole round moves nothing, and the
      // minimum does not move meanwhile (disks never keep evicting each other's copies).
      const settledMin = pool.minCopies();
      let quiet = false;
      for (let extra = 0; extra < 4 && !quiet; extra++) {
        let moved = 0;
        for (let d = 0; d < disks; d++) moved += pool.sync(d);
        quiet = moved === 0;
        assert.ok(pool.minCopies() >= settledMin, `pool ${t}: the minimum dropped in a round with nothing new`);
      }
      assert.ok(quiet, `pool ${t} (balance ${balance}): still moving copies after 4 rounds with nothing new`);
      return { disks, min: pool.minCopies(), bound, loss: pool.worstPairLoss(), bytes: totalNow };
    });
    const [bal, nobal] = result as [(typeof result)[0], (typeof result)[0]];
    if (bal.min < bal.bound) belowBound++;
    sumBal += bal.loss / bal.bytes;
    sumNoBal += nobal.loss / nobal.bytes;
    rows.push(
      `${String(t).padStart(3)} ${bal.disks} disks  min ${bal.min} (bound ${bal.bound})  ` +
        `worst pair loss ${pct(bal.loss, bal.bytes)} balanced, ${pct(nobal.loss, nobal.bytes)} without`,
    );
  }
  console.log(rows.join('\n'));
  console.log(
    `random sizes: ${POOLS} pools, ${belowBound} below floor(total capacity / total size); ` +
      `mean worst two-disk loss ${pct(sumBal, POOLS)} balanced, ${pct(sumNoBal, POOLS)} without`,
  );
});

function pct(part: number, whole: number): string {
  return `${((100 * part) / Math.max(whole, 1)).toFixed(1)} %`;
}
