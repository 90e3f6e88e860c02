/** Parsing of the sizes, rates and durations that flags accept (SPEC §3). Pure functions. */
import { UsageError } from './errors.js';

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  kib: 1024,
  m: 1e6,
  mb: 1e6,
  mib: 1024 ** 2,
  g: 1e9,
  gb: 1e9,
  gib: 1024 ** 3,
  t: 1e12,
  tb: 1e12,
  tib: 1024 ** 4,
  p: 1e15,
  pb: 1e15,
  pib: 1024 ** 5,
};

/**
 * Parse a size: `123456` (bytes), `500G`, `7.4T` (decimal, as disk makers count),
 * `1.5TiB` (binary). Returns whole bytes (rounded down). Throws UsageError on bad input.
 */
export function parseSize(text: string, what = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m?.[2]?.toLowerCase() ?? '';
  const mult = SIZE_UNITS[unit];
  if (m === null || mult === undefined) {
    throw new UsageError(
      `invalid ${what} '${text}': expected a number with an optional unit (500G, 7.4T, 1.5TiB, 123456)`,
    );
  }
  const bytes = Math.floor(Number(m[1]) * mult);
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`invalid ${what} '${text}': too large`);
  return bytes;
}

/** Parse a rate in bytes per second: `50M`, `20MB`, `1.5MiB`, optionally ending in `/s`. */
export function parseRate(text: string): number {
  const bytes = parseSize(text.replace(/\/s$/i, ''), 'rate');
  if (bytes <= 0) throw new UsageError(`invalid rate '${text}': must be above 0`);
  return bytes;
}

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
  y: 365 * 86_400_000,
};

/** Parse a duration (`30d`, `12h`, `90m`, `45s`, `1h30m`) into milliseconds. */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  const re = /(\d+(?:\.\d+)?)\s*(ms|s|min|m|h|d|w|y)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(trimmed); m !== null; m = re.exec(trimmed)) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] ?? ''] ?? Number.NaN);
    consumed = re.lastIndex;
  }
  if (consumed === 0 || consumed !== trimmed.length || !Number.isFinite(total)) {
    throw new UsageError(`invalid duration '${text}': expected e.g. 30d, 12h, 90m, 1h30m`);
  }
  return Math.round(total);
}

/** Size as the planner and the Python distbackup count it: rounded up to 4 KiB, plus 4 KiB. */
export function allocatedSize(sizeBytes: number): number {
  return Math.ceil(sizeBytes / 4096) * 4096 + 4096;
}

/** Human-readable duration for progress lines: `3d04h`, `1h02m`, `3m05s`, `12s`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '--';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

/**
 * A count with thousands separators, as `toLocaleString('en-US')` writes it: 12345 -> "12,345".
 * Whole numbers are grouped by hand: the first Intl number format of a process costs ~13 ms
 * (ICU set-up), more than the rest of a `status` run. Other numbers still go through Intl.
 */
export function formatCount(n: number): string {
  if (!Number.isSafeInteger(n) || Object.is(n, -0)) return n.toLocaleString('en-US');
  const digits = String(Math.abs(n));
  let out = digits.slice(0, ((digits.length - 1) % 3) + 1);
  for (let i = out.length; i < digits.length; i += 3) out += `,${digits.slice(i, i + 3)}`;
  return n < 0 ? `-${out}` : out;
}

/** A count and its noun, singular for exactly 1: `counted(1, 'file')` -> "1 file", 2 -> "2 files". */
export function counted(n: number, singular: string, plural = `${singular}s`): string {
  return `${formatCount(n)} ${n === 1 ? singular : plural}`;
}
