/** Human-readable lines of a sync or plan document (the commands print them). Pure. */
import prettyBytes from 'pretty-bytes';
import type { HistogramRow } from '../planner/types.js';
import { counted } from '../ui/format.js';
import { SKIPPED_LIST_CAP, type SyncDoc } from './sync.js';

function histogram(rows: readonly HistogramRow[]): string {
  return rows
    .map((r, i) => `${r.copies}${i === rows.length - 1 ? '+' : ''}:${r.objects} (${prettyBytes(r.bytes)})`)
    .join('  ');
}

/** The plan part: deletions, evictions, copies, bytes, redundancy before and after. */
export function planLines(doc: SyncDoc): string[] {
  const p = doc.plan;
  const lines = [
    `disk ${doc.disk} at ${doc.path} (${doc.profile} profile): ${prettyBytes(p.capacityBytes)} declared, ${prettyBytes(p.usedAfterBytes)} used after the plan`,
    `  delete   ${p.orphanDeletes} orphans, ${p.surplusDeletes} surplus copies (${prettyBytes(p.bytesToDelete)} freed, evictions included)`,
    `  evict    ${counted(p.evictions, 'copy', 'copies')} of objects that have others`,
    `  copy     ${counted(p.copies, 'object')}, ${prettyBytes(p.bytesToCopy)}`,
  ];
  // Why they are not placed (no room, --limit, a disk over its size) is the plan's warning's to say.
  if (p.unplaced > 0)
    lines.push(`  unplaced ${counted(p.unplaced, 'object')} with no copy anywhere are not copied here`);
  lines.push(`  copies before  ${histogram(p.histogramBefore)}`);
  lines.push(`  copies after   ${histogram(p.histogramAfter)}`);
  lines.push(
    `  min copies ${doc.minCopiesBefore} -> ${doc.plan.histogramAfter.find((r) => r.objects > 0)?.copies ?? 0}`,
  );
  return lines;
}

/** The result of a sync that ran. */
export function resultLines(doc: SyncDoc): string[] {
  const secs = Math.max(doc.elapsedMs / 1000, 0.001);
  const lines = [
    `synced ${doc.disk}: ${counted(doc.copied, 'object')} copied (${prettyBytes(doc.bytesCopied)}, ${prettyBytes(doc.bytesCopied / secs)}/s), ${doc.deleted} deleted, ${doc.evicted} evicted in ${secs.toFixed(1)} s`,
    `min copies ${doc.minCopiesBefore} -> ${doc.minCopiesAfter}`,
  ];
  if (doc.skippedCount > 0) {
    // Only a source that changed since the scan is cured by update; a file too large for the
    // disk's filesystem, or unreadable, is not.
    const stale = doc.skipped.filter((s) => s.error.includes("'distbackup update'")).length;
    const shown =
      doc.skippedCount > SKIPPED_LIST_CAP ? ` (the first ${SKIPPED_LIST_CAP.toLocaleString('en-US')} on stderr)` : '';
    lines.push(
      `${counted(doc.skippedCount, 'object')} skipped, each named with its cause in --json 'skipped'${shown}` +
        (stale > 0 ? `; ${stale} changed since the last update: run 'distbackup update'` : ''),
    );
  }
  return lines;
}
