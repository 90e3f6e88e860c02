/**
 * Human rendering of the status document: the redundancy histogram as a bar chart (objects and
 * bytes per copy count), the disk table, the worst pair and the verdict. Pure: returns lines.
 */
import prettyBytes from 'pretty-bytes';
import { alignColumns, counted, formatCount, formatWhen } from '../ui/format.js';
import { type StatusDoc, staleText } from './status.js';

const BAR_WIDTH = 30;

function bar(value: number, max: number): string {
  if (max <= 0 || value <= 0) return '';
  const cells = (value / max) * BAR_WIDTH;
  const full = Math.floor(cells);
  const part = cells - full;
  // Eighth blocks keep small values visible: any non-zero count gets at least one sliver.
  const eighths = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
  const tail = eighths[Math.round(part * 7)] ?? '';
  const s = '█'.repeat(full) + tail;
  return s === '' ? '▏' : s;
}

const n = formatCount;
const day = formatWhen;

/** The lines `status` prints; `detail` (`-v`) adds a line per disk on verification and degradation. */
export function renderStatus(doc: StatusDoc, opts: { detail?: boolean } = {}): string[] {
  const out: string[] = [];
  out.push(
    `${counted(doc.files, 'file')}, ${counted(doc.objects, 'object')}, ${prettyBytes(doc.bytes)}; minimum copies: ${doc.minCopies ?? '-'}` +
      (doc.saturated === null ? '' : ' (objects at their cap left out)'),
  );
  out.push('');
  out.push('copies   objects                                  bytes');
  const maxObj = Math.max(0, ...doc.histogram.map((h) => h.objects));
  const maxBytes = Math.max(0, ...doc.histogram.map((h) => h.bytes));
  for (const h of doc.histogram) {
    const label = h.copies === doc.histogram.length - 1 ? `${h.copies}+` : `${h.copies} `;
    const objCol = `${bar(h.objects, maxObj).padEnd(BAR_WIDTH)} ${n(h.objects).padStart(9)}`;
    const byteCol = `${bar(h.bytes, maxBytes).padEnd(BAR_WIDTH)} ${prettyBytes(h.bytes).padStart(9)}`;
    out.push(`  ${label.padEnd(5)} ${objCol}  ${byteCol}`);
  }
  if (doc.notBackedUp.objects > 0) {
    const s = doc.notBackedUp;
    out.push(
      `  not backed up (priority 0), not counted above: ${counted(s.objects, 'object')}, ${prettyBytes(s.bytes)} (${counted(s.files, 'file')})`,
    );
  }
  if (doc.saturated !== null) {
    const s = doc.saturated;
    out.push(
      `  at their cap, not counted above: ${counted(s.objects, 'object')}, ${prettyBytes(s.bytes)} (${counted(s.files, 'file')})`,
    );
  }
  out.push('');
  if (doc.disks.length === 0) out.push('no disks registered yet: distbackup disk add NAME PATH');
  else {
    const rows = [
      ['disk', 'size', 'used', 'objects', 'last seen', 'last sync', 'last verify', 'lost if it dies'],
      ...doc.disks.map((d) => [
        d.name + (d.dropped !== null ? ' (dropped)' : '') + (d.notSeenStale ? ' (stale)' : ''),
        prettyBytes(d.size),
        prettyBytes(d.used),
        n(d.objects),
        day(d.lastSeen),
        day(d.lastSync),
        day(d.lastVerify) + (d.staleCopies > 0 ? ` (${n(d.staleCopies)} stale)` : ''),
        d.lossIfDead.objects === 0
          ? 'nothing'
          : `${counted(d.lossIfDead.files, 'file')}, ${prettyBytes(d.lossIfDead.bytes)}`,
      ]),
    ];
    out.push(...alignColumns(rows));
  }
  if (opts.detail === true && doc.disks.length > 0) {
    out.push('');
    const min = doc.minCopies;
    for (const d of doc.disks) {
      const parts = [
        `${counted(d.neverVerified, 'copy', 'copies')} never verified`,
        `${formatCount(d.staleCopies)} not verified for over ${staleText(doc.staleMs)}`,
      ];
      if (min !== null && min >= 1) {
        const left = min - 1;
        parts.push(
          `losing it leaves ${counted(d.degradedIfDead.files, 'file')} with ${left === 1 ? '1 copy' : `${left} copies`}`,
        );
      }
      out.push(`${d.name}: ${parts.join(', ')}`);
    }
  }
  if (doc.worstPair !== null) {
    const w = doc.worstPair;
    out.push('');
    out.push(
      w.objects === 0
        ? `losing any two disks together loses nothing`
        : `worst pair: losing ${w.disks[0]} and ${w.disks[1]} together loses ${counted(w.files, 'file')} (${prettyBytes(w.bytes)})`,
    );
  }
  out.push('');
  out.push(doc.verdict);
  return out;
}
