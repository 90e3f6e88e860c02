/**
 * The planner's contract (SPEC §5). Input and output are columns of typed arrays so that
 * 10 million objects fit in memory; everything is indexed by the object's position `i` in the
 * input, and the input is sorted by hash, so `i` is also the final tie-break (plans are
 * reproducible). Pure data: no I/O, no clock.
 */

/** No cap on the number of copies. */
export const UNCAPPED = 0xffffffff;

/** What the planner needs to know about the pool when one disk is connected. */
export interface PlannerInput {
  /** Number of referenced objects (rows of every column below). */
  readonly count: number;
  /** Catalogue id of each object (opaque to the planner, carried into the output). */
  readonly objectId: Float64Array;
  /** Real size in bytes (the planner charges allocatedSize(): round up to 4 KiB, plus 4 KiB). */
  readonly sizeBytes: Float64Array;
  /** Counted copies on the *other* registered disks (not this one). */
  readonly copiesElsewhere: Uint16Array;
  /**
   * Of those, the copies verified (or, never verified, written) recently: an offline disk's
   * copy may have rotted or died since. A copy on this disk is evicted, or deleted as surplus,
   * only on the strength of these (RELIABILITY.md §3: never evict the last verified copy).
   * Absent: every copy elsewhere counts as recent.
   */
  readonly freshElsewhere?: Uint16Array;
  /** 1 when this disk holds a counted copy now. */
  readonly onThisDisk: Uint8Array;
  /** Highest priority of the files referencing it; 0 = not backed up. */
  readonly priority: Uint32Array;
  /** Highest copy target of the files referencing it (default 1). */
  readonly minCopies: Uint16Array;
  /** Highest cap of the files referencing it; UNCAPPED = none. */
  readonly maxCopies: Uint32Array;
  /**
   * Which other disks hold it: an index into `holderSets` (the distinct sets, each a sorted list
   * of disk ids other than this one). Used only by the balancing tie-break.
   */
  readonly holderSet: Uint32Array;
  readonly holderSets: ReadonlyArray<ReadonlyArray<number>>;
  /** Unreferenced objects on this disk (always deleted first). */
  readonly orphans: { readonly objectId: Float64Array; readonly sizeBytes: Float64Array };
  /** Bytes this disk may hold (its declared size), counted in allocatedSize() units. */
  readonly capacityBytes: number;
  /** Options of this run only. */
  readonly options?: {
    /**
     * Cap every object at this many copies for this run (`sync --max-copies`): no copy beyond
     * it is made; copies already on the disk are not deleted for it (only an object's own cap
     * makes a copy surplus). At least 1.
     */
    readonly maxCopies?: number;
    /** Copy at most this many bytes (`sync --limit`). */
    readonly limitBytes?: number;
    /** Never evict (`sync --no-evict`). */
    readonly noEvict?: boolean;
    /**
     * Delete nothing on this disk: no eviction, no surplus copy, no orphan (whose room then
     * counts as used). For a disk the home catalogue may not know well enough to delete from.
     */
    readonly keepCopies?: boolean;
    /** Turn off the balancing tie-break (for measuring what it buys). */
    readonly noBalance?: boolean;
  };
}

declare const safeDeleteBrand: unique symbol;

/**
 * Proof that deleting this object from this disk loses no last copy: only the planner
 * constructs it (`kind` says why it is safe). The executor's delete takes nothing else.
 */
export interface SafeDelete {
  readonly [safeDeleteBrand]: true;
  readonly objectId: number;
  readonly sizeBytes: number;
  readonly kind: 'orphan' | 'surplus' | 'evict';
}

/** One step of execution, in order. */
export type PlanStep =
  | { readonly op: 'delete'; readonly del: SafeDelete }
  | { readonly op: 'copy'; readonly index: number; readonly objectId: number; readonly sizeBytes: number };

/** Objects and bytes at one copy count (the last row, `copies` = n, means n or more). */
export interface HistogramRow {
  readonly copies: number;
  readonly objects: number;
  readonly bytes: number;
}

export interface Plan {
  /** 1 when object i is on this disk after the plan. */
  readonly keep: Uint8Array;
  /** Every deletion and copy, in execution order: orphans and surplus first, then copies with
   * each eviction placed just before the copy that needs its room. */
  readonly steps: readonly PlanStep[];
  /**
   * `steps.length`, without building the steps: `steps` is built at its first access (one
   * object per step), so for plans of millions of steps iterate `stepAt(0 … stepCount − 1)`.
   */
  readonly stepCount: number;
  /** Step k of `steps`, built on demand (a SafeDelete for a deletion). Throws when out of range. */
  stepAt(k: number): PlanStep;
  /**
   * For an eviction at step k: how many of the plan's copies rank ahead of the evicted object.
   * A copy may take its room only if its index is below this: copies run in another order than
   * the plan's (the sources' inode order), and an object is only evicted for one that needs a
   * copy more. Throws for another step.
   */
  evictionBound(k: number): number;
  readonly orphanDeletes: number;
  readonly surplusDeletes: number;
  readonly evictions: number;
  readonly copies: number;
  readonly bytesToCopy: number;
  readonly bytesToDelete: number;
  /** Referenced objects at 0 copies that do not fit anywhere on this disk. */
  readonly unplaced: number;
  /** Bytes (allocated) on this disk after the plan; may exceed capacity only by kept last copies. */
  readonly usedAfterBytes: number;
  readonly minCopiesBefore: number;
  readonly minCopiesAfter: number;
  readonly histogramBefore: readonly HistogramRow[];
  readonly histogramAfter: readonly HistogramRow[];
  /** Human-readable warnings (e.g. disk over its size, last copies kept anyway). */
  readonly warnings: readonly string[];
  /**
   * Referenced objects whose priority is 0 (not backed up): never copied, left out of the
   * histograms and of minCopies; a copy of one already on this disk stays until its room is
   * needed, and is never deleted while no other disk holds it. `bytes` are real bytes.
   */
  readonly notBackedUp: { readonly objects: number; readonly bytes: number };
  /**
   * Copies not made because the disk started over its size and only objects ranked behind
   * them could be evicted (they are made once room exists). 0 on a disk within its size.
   */
  readonly blockedCopies: number;
}
