/**
 * Small formatting helpers for human output: counts with thousands separators and the right
 * plural, and sizes shown human first with the exact bytes after. Pure; thread-safe.
 */
import prettyBytes from 'pretty-bytes';
import { counted, formatCount } from '../core/units.js';

export { counted, formatCount };

/** A size human first, then exactly: 3146728 -> "3.15 MB (3,146,728 bytes)". */
export function sizeWithBytes(bytes: number): string {
  return `${prettyBytes(bytes)} (${counted(bytes, 'byte')})`;
}

/** A catalogue timestamp (ISO-8601, UTC) to the minute, as the tables show it; null -> "never". */
export function formatWhen(iso: string | null): string {
  return iso === null ? 'never' : iso.slice(0, 16).replace('T', ' ');
}

/** Rows of cells as lines of left-aligned columns two spaces apart (the first row is the header). */
export function alignColumns(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const r of rows) for (const [i, c] of r.entries()) widths[i] = Math.max(widths[i] ?? 0, c.length);
  return rows.map((r) => alignRow(r, widths));
}

/** One row laid out in columns of the given widths (for callers that measure in a first pass). */
export function alignRow(row: readonly string[], widths: readonly number[]): string {
  return row
    .map((c, i) => c.padEnd(widths[i] ?? 0))
    .join('  ')
    .trimEnd();
}
