/**
 * How sequential a tool's reads were: the files it opened, in order, mapped to inode numbers.
 * On ext4 and most Unix filesystems inode order follows allocation order, so reading in
 * ascending inode order is the cheap proxy for reading a spinning disk front to back.
 */
import * as fs from 'node:fs';

/** The read-order figure of one run. */
export interface ReadOrder {
  /** Files opened for reading (each counted once, at its first open). */
  readonly files: number;
  /** Of the consecutive pairs of those files, the fraction whose inode went up (1 = sorted). */
  readonly ascendingFraction: number;
  /** Pairs whose inode went down: each is a seek back on a spinning disk. */
  readonly backwardJumps: number;
}

/** Compute the read order of `openedPaths` (first open of each path counts); pure but for lstat. */
export function readOrder(openedPaths: readonly string[]): ReadOrder {
  const seen = new Set<string>();
  const inodes: bigint[] = [];
  for (const p of openedPaths) {
    if (seen.has(p)) continue;
    seen.add(p);
    try {
      const st = fs.lstatSync(p, { bigint: true });
      if (st.isFile()) inodes.push(st.ino);
    } catch {
      // Opened then removed (a temp file): not part of the data read.
    }
  }
  return orderOfInodes(inodes);
}

/** The figure for a sequence of inode numbers (pure). */
export function orderOfInodes(inodes: readonly bigint[]): ReadOrder {
  let up = 0;
  let down = 0;
  for (let i = 1; i < inodes.length; i++) {
    const a = inodes[i - 1] ?? 0n;
    const b = inodes[i] ?? 0n;
    if (b > a) up++;
    else if (b < a) down++;
  }
  const pairs = up + down;
  return { files: inodes.length, ascendingFraction: pairs === 0 ? 1 : up / pairs, backwardJumps: down };
}
