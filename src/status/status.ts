/**
 * The status use-case (SPEC §3, §3a): totals, the redundancy histogram over referenced
 * objects, per-disk figures with what each disk's death would cost, the worst pair of disks,
 * stale disks and copies, and a one-line verdict. Every figure is aggregated in SQL
 * (catalog/reports.ts); the worst pair is computed from objects with at most two copies grouped
 * by their disk set, so it costs one pass however many objects there are. Read-only.
 */

import type { Catalog } from '../catalog/db.js';
import { listDisks } from '../catalog/disks.js';
import { RECENT_COPY_MS } from '../catalog/planner-input.js';
import {
  buildObjectCopies,
  degradedIfDead,
  diskCopyFigures,
  type HistogramRow,
  histogram as histogramOf,
  type Loss,
  lowCopyGroups,
  minCopiesOfReferenced,
  totals,
} from '../catalog/reports.js';
import { type SaturatedTotals, setAsideNotBackedUp, setAsideSaturated } from '../catalog/saturated.js';
import { FUTURE_STAMP_SLACK_MS } from '../catalog/verify-state.js';
import { counted, formatDuration } from '../core/units.js';

/** Default of `--stale`: 90 days. */
export const DEFAULT_STALE_MS = RECENT_COPY_MS;

export interface StatusOptions {
  /** Disks not seen and copies not verified for longer than this are flagged (ms). */
  staleMs?: number;
  /** The clock (ms since the epoch); injectable for tests. */
  nowMs?: number;
  /**
   * `--no-saturated`: objects at their cap are counted apart (`saturated`) and left out of the
   * histogram, the minimum and the verdict; what a dead disk would lose still counts them.
   */
  noSaturated?: boolean;
}

/** One disk in the status document. */
export interface StatusDisk {
  name: string;
  uuid: string;
  size: number;
  used: number;
  objects: number;
  lastSeen: string | null;
  lastSync: string | null;
  lastVerify: string | null;
  dropped: string | null;
  /** What drops to 0 copies if this disk dies. */
  lossIfDead: Loss;
  /** What drops from the minimum number of copies to one less if this disk dies. */
  degradedIfDead: Loss;
  /** Not seen for longer than --stale. */
  notSeenStale: boolean;
  /** Copies on it not verified for longer than --stale. */
  staleCopies: number;
  neverVerified: number;
}

/** The `status --json` document (SPEC §3a, with additions). */
export interface StatusDoc {
  files: number;
  objects: number;
  bytes: number;
  /** Smallest copy count over referenced objects (null when there are none). */
  minCopies: number | null;
  /** Regular files not hashed yet (run update). */
  unhashed: number;
  histogram: HistogramRow[];
  /**
   * With `--no-saturated`: the referenced objects already at their cap (max copies), left out
   * of `histogram` and `minCopies`; null without it.
   */
  saturated: SaturatedTotals | null;
  /**
   * Objects that no file wants backed up (priority 0): never copied by sync, so left out of the
   * histogram, the minimum and the losses (counted in `objects` and `bytes`).
   */
  notBackedUp: SaturatedTotals;
  disks: StatusDisk[];
  /** The two disks whose loss together costs the most, and what it costs. */
  worstPair: { disks: [string, string]; objects: number; bytes: number; files: number } | null;
  /** `--stale` in whole days (rounded); `staleMs` exactly. */
  staleDays: number;
  staleMs: number;
  verdict: string;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const ZERO: Loss = { objects: 0, bytes: 0, files: 0 };

/** Compute the status of the catalogue `cat`. */
export function runStatus(cat: Catalog, opts: StatusOptions = {}): StatusDoc {
  const now = opts.nowMs ?? Date.now();
  const staleMs = opts.staleMs ?? DEFAULT_STALE_MS;
  const cutoff = now - staleMs;
  const db = cat.db;
  // One read transaction: every figure comes from the same snapshot even while a sync writes.
  return db.transaction(() => {
    buildObjectCopies(db);
    const t = totals(db);
    const notBackedUp = setAsideNotBackedUp(db);
    const rows = listDisks(db);
    const figures = diskCopyFigures(db, cutoff, now + FUTURE_STAMP_SLACK_MS);
    // Losses count every object, saturated or not: a capped file on a dead disk is still lost.
    const groups = lowCopyGroups(db);
    const saturated = opts.noSaturated === true ? setAsideSaturated(db) : null;
    const hist = histogramOf(db, 3);
    const min = minCopiesOfReferenced(db);
    const single = new Map<number, Loss>();
    const pairOnly = new Map<string, Loss>();
    for (const g of groups) {
      const loss = { objects: g.objects, bytes: g.bytes, files: g.files };
      if (g.disks.length === 1) single.set(g.disks[0] as number, add(single.get(g.disks[0] as number) ?? ZERO, loss));
      else pairOnly.set(`${g.disks[0]},${g.disks[1]}`, loss);
    }
    const degraded = min !== null && min >= 2 ? degradedIfDead(db, min) : new Map<number, Loss>();
    const disks: StatusDisk[] = rows.map((d) => {
      const f = figures.get(d.id);
      return {
        name: d.name,
        uuid: d.uuid,
        size: d.size,
        used: f?.bytes ?? 0,
        objects: f?.objects ?? 0,
        lastSeen: iso(d.lastSeenMs),
        lastSync: iso(d.lastSyncMs),
        lastVerify: iso(d.lastVerifyMs),
        dropped: iso(d.droppedMs),
        lossIfDead: single.get(d.id) ?? ZERO,
        degradedIfDead: min === 1 ? (single.get(d.id) ?? ZERO) : (degraded.get(d.id) ?? ZERO),
        notSeenStale: d.droppedMs === null && (d.lastSeenMs ?? 0) < cutoff,
        staleCopies: f?.staleCopies ?? 0,
        neverVerified: f?.neverVerified ?? 0,
      };
    });
    // Worst pair: loss(a, b) = only-on-a + only-on-b + only-on-{a, b}. Disks are few (tens).
    let worstPair: StatusDoc['worstPair'] = null;
    const live = rows.filter((d) => d.droppedMs === null);
    for (let i = 0; i < live.length; i++) {
      for (let j = i + 1; j < live.length; j++) {
        const a = live[i];
        const b = live[j];
        if (a === undefined || b === undefined) continue;
        const key = a.id < b.id ? `${a.id},${b.id}` : `${b.id},${a.id}`;
        const loss = add(add(single.get(a.id) ?? ZERO, single.get(b.id) ?? ZERO), pairOnly.get(key) ?? ZERO);
        if (
          worstPair === null ||
          loss.objects > worstPair.objects ||
          (loss.objects === worstPair.objects && loss.bytes > worstPair.bytes)
        ) {
          worstPair = { disks: [a.name, b.name], ...loss };
        }
      }
    }
    const doc: StatusDoc = {
      files: t.files,
      objects: t.objects,
      bytes: t.bytes,
      minCopies: min,
      unhashed: t.unhashed,
      histogram: hist,
      saturated,
      notBackedUp,
      disks,
      worstPair,
      staleDays: Math.round(staleMs / 86_400_000),
      staleMs,
      verdict: '',
    };
    doc.verdict = verdictOf(doc);
    return doc;
  })();
}

function add(a: Loss, b: Loss): Loss {
  return { objects: a.objects + b.objects, bytes: a.bytes + b.bytes, files: a.files + b.files };
}

/** The `--stale` period in words: whole days as days, anything else as a duration (`12h00m`). */
export function staleText(ms: number): string {
  if (ms > 0 && ms % 86_400_000 === 0) return counted(ms / 86_400_000, 'day');
  return formatDuration(ms);
}

/** The one-line verdict: the minimum, and what the worst single disk loss would do to it. */
export function verdictOf(doc: StatusDoc): string {
  const parts: string[] = [];
  if (doc.files === 0) return 'nothing catalogued yet: map a source and run update';
  if (doc.objects > 0 && doc.minCopies === null && doc.notBackedUp.objects === doc.objects) {
    parts.push(`no ${doc.unhashed > 0 ? 'hashed ' : ''}file is to be backed up (every one has priority 0)`);
  } else if (doc.objects > 0 && doc.minCopies === null && doc.saturated !== null) {
    parts.push(`every object is at its cap`);
  } else if (doc.objects === 0 || doc.minCopies === null) {
    parts.push(`no file is hashed yet: run update`);
  } else if (doc.minCopies === 0) {
    const zero = doc.histogram[0] as HistogramRow;
    parts.push(
      `${counted(zero.files, 'file')} (${counted(zero.objects, 'object')}) ${zero.files === 1 ? 'has' : 'have'} no copy on any disk: sync a disk with room`,
    );
  } else {
    const min = doc.minCopies;
    const worst = [...doc.disks]
      .filter((d) => d.dropped === null)
      .sort((a, b) => b.degradedIfDead.files - a.degradedIfDead.files || (a.name < b.name ? -1 : 1))[0];
    const below = doc.saturated !== null && doc.saturated.objects > 0 ? ' below its cap' : '';
    // Files not hashed yet have no object, and no copy: the claim is about the others.
    const hashed = doc.unhashed > 0 ? ' hashed' : '';
    const toBackUp = doc.notBackedUp.objects > 0 ? ' to back up' : '';
    const head = `every${hashed} file${toBackUp}${below} has at least ${min} ${min === 1 ? 'copy' : 'copies'}`;
    if (worst === undefined || worst.degradedIfDead.files === 0) parts.push(head);
    else if (min === 1)
      parts.push(`${head}; losing ${worst.name} would lose ${counted(worst.degradedIfDead.files, 'file')}`);
    else {
      const left = min - 1;
      parts.push(
        `${head}; losing ${worst.name} would leave ${counted(worst.degradedIfDead.files, 'file')} with ${left === 1 ? 'one copy' : `${left} copies`}`,
      );
    }
  }
  if (doc.unhashed > 0) parts.push(`${counted(doc.unhashed, 'file')} not hashed yet (run update)`);
  if (doc.notBackedUp.files > 0 && doc.notBackedUp.objects < doc.objects) {
    parts.push(`${counted(doc.notBackedUp.files, 'file')} not backed up (priority 0)`);
  }
  const away = doc.disks.filter((d) => d.notSeenStale).map((d) => d.name);
  if (away.length > 0) parts.push(`not seen for over ${staleText(doc.staleMs)}: ${away.join(', ')}`);
  const stale = doc.disks.reduce((s, d) => s + d.staleCopies, 0);
  if (stale > 0)
    parts.push(`${counted(stale, 'copy', 'copies')} not verified for over ${staleText(doc.staleMs)} (run verify)`);
  return parts.join('; ');
}
