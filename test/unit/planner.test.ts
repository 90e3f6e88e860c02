import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DistbackupError, RefusedError } from '../../src/core/errors.js';
import { inputFromRows, type ObjectRow } from '../../src/planner/fixture.js';
import { assertSafeDelete, isSafeDelete, type Plan, plan, type SafeDelete } from '../../src/planner/index.js';

/** Size whose allocated size (rounded up to 4 KiB, plus 4 KiB) is exactly `blocks` × 4 KiB. */
const KiB4 = 4096;
const sz = (blocks: number): number => (blocks - 1) * KiB4;
const cap = (blocks: number): number => blocks * KiB4;

/** Object rows with sizes in 4 KiB blocks. */
function o(blocks: number, r: Omit<ObjectRow, 'sizeBytes'> = {}): ObjectRow {
  return { sizeBytes: sz(blocks), ...r };
}

function run(rows: ObjectRow[], capBlocks: number, extra: Partial<Parameters<typeof inputFromRows>[1]> = {}): Plan {
  return plan(inputFromRows(rows, { capacityBytes: cap(capBlocks), ...extra }));
}

const kept = (p: Plan): number[] => [...p.keep.keys()].filter((i) => p.keep[i] === 1);
const copied = (p: Plan): number[] => p.steps.flatMap((s) => (s.op === 'copy' ? [s.index] : []));
const deleted = (p: Plan, kind?: SafeDelete['kind']): number[] =>
  p.steps.flatMap((s) => (s.op === 'delete' && (kind === undefined || s.del.kind === kind) ? [s.del.objectId] : []));

describe('order of need', () => {
  test('objects with no copy anywhere first, then fewest copies first', () => {
    const p = run([o(2, { copiesElsewhere: 2 }), o(2, { copiesElsewhere: 0 }), o(2, { copiesElsewhere: 1 })], 4);
    assert.deepEqual(copied(p), [1, 2]);
    assert.deepEqual(kept(p), [1, 2]);
    assert.equal(p.minCopiesBefore, 0);
    assert.equal(p.minCopiesAfter, 1);
  });

  test('an object that does not fit is skipped and smaller ones after it still go in', () => {
    const p = run([o(5, { copiesElsewhere: 0 }), o(3, { copiesElsewhere: 0 }), o(2, { copiesElsewhere: 1 })], 6);
    // Same count 0: smaller first (3 blocks), then 5 does not fit (3+5 > 6), then the 2-block one fits.
    assert.deepEqual(copied(p), [1, 2]);
    assert.equal(p.unplaced, 1);
    assert.match(p.warnings.join('\n'), /^1 object \(.*\) has no copy on any disk and does not fit/m);
  });

  test('within a copy count: higher priority first', () => {
    const p = run([o(2, { copiesElsewhere: 1, priority: 1 }), o(2, { copiesElsewhere: 1, priority: 5 })], 2);
    assert.deepEqual(copied(p), [1]);
  });

  test('priority never beats a lower copy count', () => {
    const p = run([o(2, { copiesElsewhere: 1, priority: 1 }), o(2, { copiesElsewhere: 2, priority: 9 })], 2);
    assert.deepEqual(copied(p), [0]);
  });

  test('within a count and priority: the copy already on this disk stays (no bytes to move)', () => {
    const p = run([o(2, { copiesElsewhere: 1 }), o(2, { copiesElsewhere: 1, onThisDisk: true })], 2);
    assert.deepEqual(kept(p), [1]);
    assert.equal(p.steps.length, 0);
  });

  test('then smaller before larger, then input (hash) order', () => {
    const p = run([o(3, { copiesElsewhere: 1 }), o(2, { copiesElsewhere: 1 }), o(2, { copiesElsewhere: 1 })], 4);
    assert.deepEqual(copied(p), [1, 2]);
  });

  test('objects below their copy target come before all others, fewest copies first', () => {
    const rows = [
      o(2, { copiesElsewhere: 1 }), // at target 1
      o(2, { copiesElsewhere: 2, minCopies: 3 }), // below target
      o(2, { copiesElsewhere: 1, minCopies: 3 }), // below target, fewer copies
    ];
    assert.deepEqual(copied(run(rows, 4)), [2, 1]);
  });

  test('plans are deterministic', () => {
    const rows = Array.from({ length: 50 }, (_, k) =>
      o(1 + (k % 7), { holders: k % 3 === 0 ? [] : [k % 4, 4 + (k % 2)], onThisDisk: k % 5 === 0 }),
    );
    const a = run(rows, 60);
    const b = run(rows, 60);
    assert.deepEqual(a.keep, b.keep);
    assert.deepEqual(
      a.steps.map((s) => (s.op === 'copy' ? `c${s.index}` : `d${s.del.objectId}`)),
      b.steps.map((s) => (s.op === 'copy' ? `c${s.index}` : `d${s.del.objectId}`)),
    );
  });
});

describe('caps, limits and options', () => {
  test('an object at its cap is not copied, and its surplus copy here is deleted like an orphan', () => {
    const p = run(
      [o(2, { copiesElsewhere: 2, maxCopies: 2 }), o(2, { copiesElsewhere: 2, maxCopies: 2, onThisDisk: true })],
      10,
    );
    assert.deepEqual(copied(p), []);
    assert.deepEqual(deleted(p, 'surplus'), [1]);
    assert.equal(p.surplusDeletes, 1);
    assert.deepEqual(kept(p), []);
  });

  test('a surplus copy is never a last copy: a cap of 0 counts as 1', () => {
    const p = run([o(2, { copiesElsewhere: 0, maxCopies: 0, onThisDisk: true })], 1);
    assert.deepEqual(kept(p), [0]);
    assert.equal(p.surplusDeletes, 0);
  });

  test('options.maxCopies stops copies beyond it in this run, and deletes nothing for it', () => {
    const rows = [o(2, { copiesElsewhere: 1 }), o(2, { copiesElsewhere: 1, onThisDisk: true }), o(2)];
    const p = run(rows, 10, { options: { maxCopies: 1 } });
    assert.deepEqual(copied(p), [2]);
    assert.equal(p.surplusDeletes, 0);
    assert.deepEqual(kept(p), [1, 2]);
  });

  test('options.maxCopies: a copy here above it may still be evicted for an object that needs room', () => {
    const rows = [o(2, { copiesElsewhere: 2, onThisDisk: true }), o(2)];
    const p = run(rows, 2, { options: { maxCopies: 2 } });
    assert.deepEqual(deleted(p, 'evict'), [0]);
    assert.deepEqual(copied(p), [1]);
  });

  test('limitBytes caps the bytes copied; smaller objects still go in', () => {
    const rows = [o(3), o(5), o(2, { copiesElsewhere: 1 })];
    const p = run(rows, 100, { options: { limitBytes: sz(3) + sz(2) } });
    assert.deepEqual(copied(p), [0, 2]);
    assert.equal(p.bytesToCopy, sz(3) + sz(2));
  });

  test('noEvict keeps every copy here and fills only the free room', () => {
    const rows = [o(4, { copiesElsewhere: 3, onThisDisk: true }), o(2), o(2)];
    const p = run(rows, 6, { options: { noEvict: true } });
    assert.equal(p.evictions, 0);
    assert.deepEqual(copied(p), [1]);
    assert.deepEqual(kept(p), [0, 1]);
  });

  test('keepCopies deletes nothing: no orphan, no surplus, no eviction, and the orphans take their room', () => {
    // Here: a surplus copy (cap 2, two elsewhere), an evictable one, an orphan of 3 blocks.
    const rows = [
      o(2, { copiesElsewhere: 2, maxCopies: 2, onThisDisk: true }),
      o(4, { copiesElsewhere: 3, onThisDisk: true }),
      o(2),
      o(2),
    ];
    const extra = { orphans: [{ id: 77, sizeBytes: sz(3) }] };
    const normal = run(rows, 12, extra);
    assert.ok(normal.orphanDeletes + normal.surplusDeletes + normal.evictions > 0);
    const p = run(rows, 12, { ...extra, options: { keepCopies: true } });
    assert.deepEqual(deleted(p), []);
    assert.equal(p.orphanDeletes + p.surplusDeletes + p.evictions, 0);
    // 12 blocks of room, 2 + 4 + 3 held: one of the two new copies of 2 blocks fits, not both.
    assert.equal(copied(p).length, 1);
    assert.equal(p.usedAfterBytes, cap(2 + 4 + 3 + 2), 'the orphan kept is counted as used');
  });

  test('orphans are always deleted first', () => {
    const p = run([o(2)], 2, { orphans: [{ id: 77, sizeBytes: sz(3) }] });
    assert.equal(p.steps[0]?.op, 'delete');
    assert.deepEqual(deleted(p, 'orphan'), [77]);
    assert.equal(p.orphanDeletes, 1);
    assert.equal(p.bytesToDelete, sz(3));
  });
});

describe('last copies and evictions', () => {
  test('a referenced object no other disk holds is never deleted, even over the size: keep and warn', () => {
    const rows = [
      o(4, { onThisDisk: true }),
      o(4, { onThisDisk: true }),
      o(1, { copiesElsewhere: 1, onThisDisk: true }),
    ];
    const p = run(rows, 5);
    assert.deepEqual(kept(p), [0, 1, 2]);
    assert.equal(p.steps.length, 0);
    assert.equal(p.usedAfterBytes, cap(9));
    assert.match(p.warnings.join('\n'), /more than its size .* 2 objects .* no copy on any other disk/);
  });

  test('eviction makes room for an object with fewer copies, placed just before that copy', () => {
    const rows = [o(2, { copiesElsewhere: 3, onThisDisk: true }), o(2, { copiesElsewhere: 1, onThisDisk: true }), o(2)];
    const p = run(rows, 4);
    assert.deepEqual(
      p.steps.map((s) => (s.op === 'copy' ? `copy ${s.index}` : `${s.del.kind} ${s.del.objectId}`)),
      ['evict 0', 'copy 2'],
    );
    assert.equal(p.evictions, 1);
    assert.deepEqual(kept(p), [1, 2]);
  });

  test('no eviction for an object with as many copies and no higher priority', () => {
    const rows = [o(2, { copiesElsewhere: 1, onThisDisk: true }), o(2, { copiesElsewhere: 1 })];
    assert.equal(run(rows, 2).steps.length, 0);
  });

  test('as many copies and a higher priority: the copy here is traded', () => {
    const rows = [o(2, { copiesElsewhere: 1, onThisDisk: true }), o(2, { copiesElsewhere: 1, priority: 2 })];
    const p = run(rows, 2);
    assert.deepEqual(deleted(p, 'evict'), [0]);
    assert.deepEqual(copied(p), [1]);
  });

  test('an object below its copy target does not evict one with fewer copies', () => {
    const rows = [o(2, { copiesElsewhere: 1, onThisDisk: true }), o(2, { copiesElsewhere: 2, minCopies: 3 })];
    const p = run(rows, 2);
    assert.equal(p.steps.length, 0);
    assert.deepEqual(kept(p), [0]);
  });

  test('but it does take free room before objects at their target', () => {
    const rows = [o(2, { copiesElsewhere: 1 }), o(2, { copiesElsewhere: 2, minCopies: 3 })];
    assert.deepEqual(copied(run(rows, 2)), [1]);
  });

  test('only what is needed is evicted, lowest-ranked first', () => {
    const rows = [
      o(2, { copiesElsewhere: 2, onThisDisk: true }),
      o(2, { copiesElsewhere: 4, onThisDisk: true }),
      o(2, { copiesElsewhere: 3, onThisDisk: true }),
      o(2),
    ];
    const p = run(rows, 6);
    assert.deepEqual(deleted(p, 'evict'), [1]);
    assert.deepEqual(kept(p), [0, 2, 3]);
  });

  test('a disk over its size evicts only for objects ranked ahead, and waits otherwise', () => {
    const rows = [
      o(8, { onThisDisk: true }), // last copy
      o(5, { copiesElsewhere: 2, onThisDisk: true }),
      o(2, { copiesElsewhere: 4 }),
    ];
    const p = run(rows, 10);
    assert.equal(p.evictions, 0);
    assert.equal(p.copies, 0);
    assert.equal(p.blockedCopies, 1);
    assert.deepEqual(kept(p), [0, 1]);
  });
});

describe('priority 0 (not backed up)', () => {
  test('is never copied and is left out of the histogram and the minimum', () => {
    const p = run([o(2, { priority: 0 }), o(2, { copiesElsewhere: 1 })], 10);
    assert.deepEqual(copied(p), [1]);
    assert.equal(p.minCopiesBefore, 1);
    assert.equal(p.minCopiesAfter, 2);
    assert.deepEqual(p.notBackedUp, { objects: 1, bytes: sz(2) });
    assert.equal(p.unplaced, 0);
  });

  test('a copy already here stays while its room is not needed, and goes for any backed-up object', () => {
    const stays = run([o(2, { priority: 0, copiesElsewhere: 1, onThisDisk: true })], 10);
    assert.deepEqual(kept(stays), [0]);
    const goes = run([o(2, { priority: 0, copiesElsewhere: 1, onThisDisk: true }), o(2, { copiesElsewhere: 5 })], 2);
    assert.deepEqual(deleted(goes, 'evict'), [0]);
    assert.deepEqual(copied(goes), [1]);
  });

  test('its last copy is never deleted', () => {
    const p = run([o(2, { priority: 0, onThisDisk: true }), o(2)], 2);
    assert.deepEqual(kept(p), [0]);
    assert.equal(p.steps.length, 0);
  });
});

describe('redundancy figures', () => {
  test('histogram before and after, the last row meaning n or more', () => {
    const rows = [o(2), o(2, { copiesElsewhere: 1 }), o(2, { copiesElsewhere: 5, onThisDisk: true })];
    const p = run(rows, 10);
    assert.deepEqual(
      p.histogramBefore.map((r) => [r.copies, r.objects]),
      [
        [0, 1],
        [1, 1],
        [2, 0],
        [3, 0],
        [4, 0],
        [5, 0],
        [6, 1],
      ],
    );
    assert.deepEqual(
      p.histogramAfter.map((r) => r.objects),
      [0, 1, 1, 0, 0, 0, 1],
    );
    assert.equal(p.histogramAfter[1]?.bytes, sz(2));
    assert.equal(p.usedAfterBytes, cap(6));
  });
});

describe('balancing between combinations of disks', () => {
  test('copies alternate between holder sets so each pair of disks holds about the same bytes', () => {
    const rows: ObjectRow[] = [];
    for (let k = 0; k < 6; k++) rows.push(o(2, { holders: [1] }));
    for (let k = 0; k < 6; k++) rows.push(o(2, { holders: [2] }));
    const p = run(rows, 12);
    // Without balancing the six smallest-index objects (all held by disk 1) would be chosen.
    assert.equal(copied(p).filter((i) => i < 6).length, 3);
    const unbalanced = run(rows, 12, { options: { noBalance: true } });
    assert.deepEqual(copied(unbalanced), [0, 1, 2, 3, 4, 5]);
  });
});

describe('SafeDelete', () => {
  test('only the planner makes one', () => {
    const p = run([o(2, { copiesElsewhere: 2, maxCopies: 1, onThisDisk: true })], 2);
    const step = p.steps[0];
    assert.ok(step?.op === 'delete');
    assert.ok(isSafeDelete(step.del));
    assertSafeDelete(step.del);
    assert.ok(Object.isFrozen(step.del));
    const forged = { objectId: 1, sizeBytes: 1, kind: 'orphan' } as unknown as SafeDelete;
    assert.equal(isSafeDelete(forged), false);
    assert.equal(isSafeDelete({ ...step.del }), false);
    assert.equal(isSafeDelete(Object.create(step.del)), false);
    assert.throws(() => assertSafeDelete(forged), RefusedError);
    const Ctor = Object.getPrototypeOf(step.del).constructor as new (...a: unknown[]) => unknown;
    assert.throws(() => new Ctor(Symbol('distbackup planner mint'), 1, 1, 'orphan'), DistbackupError);
  });
});

describe('compact steps', () => {
  test('stepAt(k) gives the steps one at a time; deletions cannot be steered through the input', () => {
    const rows = [o(2, { copiesElsewhere: 3, onThisDisk: true }), o(2, { copiesElsewhere: 1, onThisDisk: true }), o(2)];
    const input = inputFromRows(rows, { capacityBytes: cap(4), orphans: [{ id: 50, sizeBytes: 10 }] });
    const p = plan(input);
    assert.equal(p.stepCount, 3);
    const seen = Array.from({ length: p.stepCount }, (_, k) => p.stepAt(k));
    assert.deepEqual(
      seen.map((s) =>
        s.op === 'copy' ? `copy ${s.index} ${s.objectId} ${s.sizeBytes}` : `${s.del.kind} ${s.del.objectId}`,
      ),
      ['orphan 50', 'evict 0', `copy 2 2 ${sz(2)}`],
    );
    assert.deepEqual(
      p.steps.map((s) => (s.op === 'copy' ? `copy ${s.index}` : `${s.del.kind} ${s.del.objectId}`)),
      ['orphan 50', 'evict 0', 'copy 2'],
    );
    // A caller that rewrites the input after planning cannot turn a deletion onto another object.
    (input.objectId as Float64Array)[0] = 1;
    const again = p.stepAt(1);
    assert.ok(again.op === 'delete' && again.del.objectId === 0 && again.del.sizeBytes === sz(2));
    assert.throws(() => p.stepAt(3), /out of range/);
    assert.throws(() => p.stepAt(-1), /out of range/);
  });
});

describe('input checks', () => {
  test('inconsistent input is refused with a message naming the column', () => {
    const good = inputFromRows([o(2)], { capacityBytes: cap(1) });
    assert.throws(() => plan({ ...good, count: 2 }), /objectId has 1 rows/);
    assert.throws(() => plan({ ...good, capacityBytes: -1 }), /capacity/);
    assert.throws(() => plan({ ...good, options: { maxCopies: 0 } }), /maxCopies/);
    assert.throws(() => plan({ ...good, sizeBytes: Float64Array.from([-1]) }), /sizeBytes of row 0/);
    assert.throws(() => plan({ ...good, onThisDisk: Uint8Array.from([2]) }), /onThisDisk of row 0/);
  });

  test('an empty pool plans nothing', () => {
    const p = run([], 10);
    assert.equal(p.steps.length, 0);
    assert.equal(p.minCopiesAfter, 0);
  });
});

describe('eviction bounds (the copies that rank ahead of an evicted object)', () => {
  test('the room of an object evicted for the first copy goes to copies ranked ahead of it only', () => {
    // E (8 blocks, here, 1 copy elsewhere), H (5, none), M (5, 1 elsewhere, as E), L (5, 3); room for 12.
    const p = run(
      [
        o(8, { onThisDisk: true, copiesElsewhere: 1 }),
        o(5, { copiesElsewhere: 0 }),
        o(5, { copiesElsewhere: 1 }),
        o(5, { copiesElsewhere: 3 }),
      ],
      12,
    );
    assert.deepEqual(
      p.steps.map((s) => (s.op === 'copy' ? `copy ${s.index}` : `${s.del.kind} ${s.del.objectId}`)),
      ['evict 0', 'copy 1', 'copy 2'],
    );
    // Only H ranks ahead of E: M, which has as many copies as E, fits in what H leaves, but
    // may not take E's room if it comes first.
    assert.equal(p.evictionBound(0), 1);
    assert.throws(() => p.evictionBound(1), /not an eviction/);
  });
});
