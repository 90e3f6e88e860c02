/**
 * Which disk to connect next: a greedy set cover over what is still missing, grouped by the set
 * of disks holding it (a handful of groups, not one entry per file). Each step takes the disk
 * that adds the most files (then bytes, then by name, so the answer is reproducible), the
 * classic ln(n)-approximation of the fewest disks. Pure functions.
 */

/** Missing files whose objects are held by exactly the disks `disks`. */
export interface MissingGroup {
  disks: number[];
  files: number;
  bytes: number;
}

/** One step of the plan: connect `diskId`, which adds `files` files and `bytes` bytes. */
export interface PlanStep {
  diskId: number;
  files: number;
  bytes: number;
}

/** Accumulates missing files by disk set. */
export class MissingTally {
  private readonly groups = new Map<string, MissingGroup>();
  /** Missing files no disk holds (or only excluded disks). */
  unavailableFiles = 0;
  unavailableBytes = 0;

  /** Add one missing file of `bytes` whose object is on `disks` (already filtered). */
  add(disks: readonly number[], bytes: number): void {
    if (disks.length === 0) {
      this.unavailableFiles += 1;
      this.unavailableBytes += bytes;
      return;
    }
    const sorted = [...disks].sort((a, b) => a - b);
    const key = sorted.join(',');
    const g = this.groups.get(key);
    if (g === undefined) this.groups.set(key, { disks: sorted, files: 1, bytes });
    else {
      g.files += 1;
      g.bytes += bytes;
    }
  }

  get list(): MissingGroup[] {
    return [...this.groups.values()];
  }
}

/** The greedy order of disks that covers every group; `nameOf` breaks ties. */
export function planDisks(groups: readonly MissingGroup[], nameOf: (id: number) => string): PlanStep[] {
  let left = groups.filter((g) => g.files > 0 && g.disks.length > 0);
  const steps: PlanStep[] = [];
  while (left.length > 0) {
    const gain = new Map<number, { files: number; bytes: number }>();
    for (const g of left) {
      for (const d of g.disks) {
        const x = gain.get(d) ?? { files: 0, bytes: 0 };
        x.files += g.files;
        x.bytes += g.bytes;
        gain.set(d, x);
      }
    }
    let best: PlanStep | undefined;
    for (const [diskId, x] of gain) {
      if (
        best === undefined ||
        x.files > best.files ||
        (x.files === best.files && x.bytes > best.bytes) ||
        (x.files === best.files && x.bytes === best.bytes && nameOf(diskId) < nameOf(best.diskId))
      ) {
        best = { diskId, files: x.files, bytes: x.bytes };
      }
    }
    if (best === undefined) break;
    steps.push(best);
    const chosen = best.diskId;
    left = left.filter((g) => !g.disks.includes(chosen));
  }
  return steps;
}
