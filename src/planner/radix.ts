/**
 * Stable least-significant-digit radix sort of an index permutation by integer key columns.
 * Pure and single-threaded; O(n) per 16-bit digit, and a digit that is the same for every
 * index is skipped, so a key that is constant (every priority 1) costs one read of the column.
 * Used instead of `Array.prototype.sort` with a comparator, which is about 20× slower at
 * 10 million entries and allocates.
 */

/** One key column, indexed by object index. `f64` columns hold non-negative integers below 2^53. */
export type SortKey =
  | {
      readonly kind: 'u32';
      readonly values: Uint32Array | Uint16Array | Uint8Array;
      /** Largest first (the column is not copied to negate it). */
      readonly descending?: boolean;
    }
  | { readonly kind: 'f64'; readonly values: Float64Array };

const DIGIT_BITS = 16;
const RADIX = 1 << DIGIT_BITS;

/**
 * Sort `perm[0..n)` (object indices) by `keys`, most significant first; equal keys keep their
 * order in `perm` (stable), so a permutation that starts ascending ends with the index as the
 * last tie-break. Returns the sorted permutation (either `perm` or a new array of the same length).
 */
export function sortIndices(perm: Uint32Array, keys: readonly SortKey[]): Uint32Array {
  const n = perm.length;
  if (n < 2 || keys.length === 0) return perm;
  let src: Uint32Array = perm;
  let dst: Uint32Array = new Uint32Array(n);
  const digits = new Uint16Array(n);
  const counts = new Uint32Array(RADIX + 1);
  for (let k = keys.length - 1; k >= 0; k--) {
    const key = keys[k] as SortKey;
    const passes = key.kind === 'u32' ? 2 : 4;
    for (let d = 0; d < passes; d++) {
      if (!fillDigits(key, d, src, digits)) continue;
      countingPass(src, dst, digits, counts);
      const t = src;
      src = dst;
      dst = t;
    }
  }
  return src;
}

/** Fill `digits[j]` with digit `d` of the key of `src[j]`; false when every digit is equal. */
function fillDigits(key: SortKey, d: number, src: Uint32Array, digits: Uint16Array): boolean {
  const n = src.length;
  let differ = false;
  if (key.kind === 'u32') {
    const v = key.values;
    const shift = d * DIGIT_BITS;
    const flip = key.descending === true ? 0xffff : 0;
    const first = (((v[src[0] as number] as number) >>> shift) & 0xffff) ^ flip;
    for (let j = 0; j < n; j++) {
      const x = (((v[src[j] as number] as number) >>> shift) & 0xffff) ^ flip;
      digits[j] = x;
      if (x !== first) differ = true;
    }
  } else {
    const v = key.values;
    const div = 2 ** (d * DIGIT_BITS);
    const first = Math.floor((v[src[0] as number] as number) / div) % RADIX;
    for (let j = 0; j < n; j++) {
      const x = Math.floor((v[src[j] as number] as number) / div) % RADIX;
      digits[j] = x;
      if (x !== first) differ = true;
    }
  }
  return differ;
}

/** One stable counting pass: `dst` = `src` ordered by `digits` (parallel to `src`). */
function countingPass(src: Uint32Array, dst: Uint32Array, digits: Uint16Array, counts: Uint32Array): void {
  const n = src.length;
  counts.fill(0);
  for (let j = 0; j < n; j++) {
    const b = (digits[j] as number) + 1;
    counts[b] = (counts[b] as number) + 1;
  }
  for (let b = 1; b <= RADIX; b++) counts[b] = (counts[b] as number) + (counts[b - 1] as number);
  for (let j = 0; j < n; j++) {
    const b = digits[j] as number;
    const at = counts[b] as number;
    counts[b] = at + 1;
    dst[at] = src[j] as number;
  }
}
