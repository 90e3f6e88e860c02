import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { blocksOf, sortIndices } from '../../src/planner/radix.js';

test('sortIndices equals a stable comparator sort, every key kind and range', () => {
  const column = fc.oneof(
    fc.constant('small' as const),
    fc.constant('wide' as const),
    fc.constant('constant' as const),
    fc.constant('sizes' as const),
  );
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 3000 }),
      fc.array(fc.record({ kind: column, descending: fc.boolean() }), { minLength: 1, maxLength: 4 }),
      fc.integer(),
      (n, spec, seed) => {
        let x = seed >>> 0;
        const rand = (): number => {
          x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
          return x;
        };
        const cols = spec.map((s) => {
          if (s.kind === 'sizes') {
            const v = new Float64Array(n);
            for (let i = 0; i < n; i++) v[i] = (rand() % 5 === 0 ? 2 ** 45 : 1) * (rand() % 100_000);
            return { kind: 'blocks' as const, values: v };
          }
          const v = new Uint32Array(n);
          for (let i = 0; i < n; i++) v[i] = s.kind === 'small' ? rand() % 7 : s.kind === 'wide' ? rand() : 42;
          return { kind: 'u32' as const, values: v, descending: s.descending };
        });
        const keyOf = (c: (typeof cols)[number], i: number): number =>
          c.kind === 'blocks'
            ? blocksOf(c.values[i] as number)
            : c.descending
              ? 0xffffffff - (c.values[i] as number)
              : (c.values[i] as number);
        // Filtered, ascending: as the planner passes it.
        const perm = Uint32Array.from({ length: n }, (_, i) => i).filter((i) => i % 5 !== 3);
        const expected = [...perm].sort((a, b) => {
          for (const c of cols) {
            const d = keyOf(c, a) - keyOf(c, b);
            if (d !== 0) return d;
          }
          return a - b;
        });
        const sorted = sortIndices(Uint32Array.from(perm), cols);
        assert.deepEqual([...sorted.perm], expected);
        cols.forEach((c, k) => {
          assert.deepEqual(
            [...(sorted.keys[k] as Uint32Array)],
            expected.map((i) =>
              c.kind === 'u32' && c.descending === true ? ~(c.values[i] as number) >>> 0 : keyOf(c, i),
            ),
          );
        });
      },
    ),
    { numRuns: 150 },
  );
});

test('an aligned key column is taken in the order of the permutation passed in', () => {
  const perm = Uint32Array.from([5, 6, 7, 8]);
  const sorted = sortIndices(perm, [{ kind: 'aligned', values: Uint32Array.from([3, 1, 2, 1]) }]);
  assert.deepEqual([...sorted.perm], [6, 8, 7, 5]);
  assert.deepEqual([...(sorted.keys[0] as Uint32Array)], [1, 1, 2, 3]);
});
