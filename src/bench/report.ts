/**
 * The benchmark's result document (`distbackup bench --json`: exact numbers, seconds as
 * floats, bytes as integers) and its rendering as the human table. Pure.
 */
import prettyBytes from 'pretty-bytes';
import { formatCount } from '../core/units.js';
import type { DatasetKind } from './dataset.js';
import type { ReadOrder } from './read-order.js';

/** The timed stages, in the order a backup goes through them. */
export type Stage = 'hash' | 'scan' | 'sync' | 'resync' | 'verify' | 'restore';
export const STAGES: readonly Stage[] = ['hash', 'scan', 'sync', 'resync', 'verify', 'restore'];

/** What each stage means, for the table's headings and the docs. */
export const STAGE_TITLES: Record<Stage, string> = {
  hash: 'hash: first update (scan + SHA-256 of every file)',
  scan: 'scan: update with nothing changed',
  sync: 'sync: copy into an empty backup folder, durable',
  resync: 'resync: sync again with nothing to do',
  verify: 'verify: re-read and check every stored copy',
  restore: 'restore: rebuild the files from the backup, durable',
};

/** One timed run of one tool. */
export interface Measurement {
  readonly dataset: DatasetKind;
  readonly stage: Stage;
  /** `distbackup` for ours, else the peer's name (`cp`, `rsync`, `openssl`, …). */
  readonly tool: string;
  /** The distbackup row that the peers' ratios of this stage refer to. */
  readonly primary: boolean;
  /** The command line as a user would type it (shortened). */
  readonly label: string;
  /** Wall time including the flush (`sync`) where there is one, seconds. */
  readonly seconds: number;
  /** Part of `seconds` spent in the trailing `sync -f` (peers that do not fsync themselves). */
  readonly flushSeconds: number;
  /** Data bytes this stage covers (the dataset's bytes; distinct bytes for verify). */
  readonly bytes: number;
  readonly files: number;
  readonly mbPerSecond: number;
  readonly filesPerSecond: number;
  /** distbackup's time for this stage divided by this run's time (below 1: distbackup faster). */
  readonly ratio: number | null;
  /** The same with each tool's start-up (`BenchReport.startup`) taken off both times. */
  readonly netRatio: number | null;
  readonly peakRssBytes: number | null;
  readonly readOrder: ReadOrder | null;
  readonly ok: boolean;
  /** Why it failed, or a remark (e.g. "reads source and copy"). */
  readonly note: string | null;
}

/** A generated dataset as the report describes it. */
export interface DatasetDoc {
  readonly kind: DatasetKind;
  readonly files: number;
  readonly bytes: number;
  readonly distinctFiles: number;
  readonly distinctBytes: number;
  readonly duplicates: number;
  readonly generateSeconds: number;
}

/** The whole `--json` document. */
export interface BenchReport {
  readonly suite: 'ssd' | 'hdd';
  readonly date: string;
  readonly target: string;
  readonly sizeBytes: number;
  readonly seed: number;
  /** `cold`: page cache dropped before every run; `warm`: not (no permission or --cache warm). */
  readonly cache: 'cold' | 'warm';
  /** Parallel processes given to the hashing peers (1 in the hdd suite, else the core count). */
  readonly hashProcesses: number;
  readonly machine: {
    readonly cpus: number;
    readonly cpuModel: string;
    readonly memoryBytes: number;
    readonly node: string;
    readonly platform: string;
  };
  readonly tools: { readonly found: Record<string, string>; readonly missing: readonly string[] };
  /** Whether the hdd suite could record read order (strace), and how. */
  readonly readOrderMethod: string | null;
  /**
   * Start-up cost, timed once per bench run: what every row of that tool pays before touching
   * any data. `seconds.distbackup` is the fastest of `runs` of `command`; restic's, borg's and
   * rclone's the fastest of two listings of an empty repository (restic derives its key there);
   * the other peers' the fastest of two runs of their version command.
   */
  readonly startup: {
    readonly command: string;
    readonly runs: readonly number[];
    readonly seconds: Readonly<Record<string, number>>;
  };
  /** Time box of each peer run, seconds (null: none). */
  readonly peerTimeoutSeconds: number | null;
  readonly datasets: readonly DatasetDoc[];
  readonly results: readonly Measurement[];
  readonly seconds: number;
  readonly notes: readonly string[];
}

const fmtSeconds = (s: number): string => (s < 10 ? s.toFixed(2) : s < 100 ? s.toFixed(1) : s.toFixed(0));
const fmtRate = (n: number): string => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

/** Lay out rows as a left-aligned table with two spaces between columns; numbers right-aligned. */
export function table(header: readonly string[], rows: readonly (readonly string[])[], rightAlign: number[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (rightAlign.includes(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

/** Format a ratio: `0.84×`; `—` for distbackup's own row or when unknown. */
export function fmtRatio(r: number | null): string {
  return r === null || !Number.isFinite(r) ? '—' : `${r.toFixed(2)}×`;
}

/** The human rendering: one table per dataset, then the headline per stage. */
export function renderReport(report: BenchReport): string[] {
  const out: string[] = [];
  out.push(
    `distbackup bench, ${report.suite} suite, ${prettyBytes(report.sizeBytes)} in ${report.target} (seed ${report.seed}, ${report.cache} cache)`,
  );
  out.push(
    `machine: ${report.machine.cpus} × ${report.machine.cpuModel}, ${prettyBytes(report.machine.memoryBytes, { binary: true })} memory, node ${report.machine.node}`,
  );
  const found = Object.keys(report.tools.found);
  out.push(`peers found: ${found.length > 0 ? found.join(', ') : 'none'}`);
  if (report.tools.missing.length > 0) out.push(`peers not found (rows left out): ${report.tools.missing.join(', ')}`);
  out.push(startupLine(report));
  out.push('ratio = distbackup time / that tool time: below 1.00× distbackup is faster.');
  out.push("net = the same ratio with each tool's start-up taken off both times: what the data itself costs.");
  for (const ds of report.datasets) {
    out.push('');
    out.push(
      `${ds.kind} files: ${formatCount(ds.files)} files, ${prettyBytes(ds.bytes)}` +
        (ds.duplicates > 0
          ? ` (${formatCount(ds.duplicates)} duplicates; ${prettyBytes(ds.distinctBytes)} distinct)`
          : ''),
    );
    const rows: string[][] = [];
    for (const m of report.results.filter((r) => r.dataset === ds.kind)) {
      rows.push([
        m.stage,
        m.label,
        m.ok ? fmtSeconds(m.seconds) : 'failed',
        m.ok ? fmtRate(m.mbPerSecond) : '',
        m.ok ? fmtRate(m.filesPerSecond) : '',
        m.ok ? fmtRatio(m.ratio) : '',
        m.ok ? fmtRatio(m.netRatio ?? null) : '',
        m.peakRssBytes === null ? '' : prettyBytes(m.peakRssBytes),
        m.readOrder === null ? '' : `${(m.readOrder.ascendingFraction * 100).toFixed(0)}%`,
        m.note ?? '',
      ]);
    }
    const header = ['stage', 'command', 'seconds', 'MB/s', 'files/s', 'ratio', 'net', 'peak RSS', 'in order', 'note'];
    const hasOrder = report.results.some((r) => r.readOrder !== null);
    const cols = hasOrder ? header : header.filter((h) => h !== 'in order');
    const trimmed = hasOrder ? rows : rows.map((r) => r.filter((_c, i) => i !== 8));
    out.push(...table(cols, trimmed, [2, 3, 4, 5, 6, 7, ...(hasOrder ? [8] : [])]));
  }
  const head = headline(report);
  if (head.length > 0) {
    out.push('', 'headline (distbackup against the fastest peer of each stage):');
    out.push(...head);
  }
  if (report.readOrderMethod !== null) {
    out.push(
      '',
      `in order = share of successive files read in ascending inode order (${report.readOrderMethod}); 100% = one sequential pass.`,
    );
  }
  for (const n of report.notes) out.push(`note: ${n}`);
  out.push(`total ${fmtSeconds(report.seconds)} s`);
  return out;
}

/** The start-up line: distbackup's, then the peers' that take 10 ms or more. */
export function startupLine(report: BenchReport): string {
  const s = report.startup.seconds;
  const ours = s.distbackup;
  const slow = Object.entries(s)
    .filter(([t, v]) => t !== 'distbackup' && v >= 0.01)
    .sort((a, b) => b[1] - a[1])
    .map(([t, v]) => `${t} ${fmtSeconds(v)} s`);
  const fast = Object.keys(s).filter((t) => t !== 'distbackup' && (s[t] ?? 0) < 0.01);
  const parts = [
    ours === undefined
      ? 'distbackup not measured'
      : `distbackup ${fmtSeconds(ours)} s (\`${report.startup.command}\`, fastest of ${report.startup.runs.length})`,
    ...slow,
    ...(fast.length > 0 ? [`${fast.join(', ')} under 0.01 s`] : []),
  ];
  return `start-up, paid by every run before it reads any data: ${parts.join(', ')}`;
}

/** One line per dataset and stage: distbackup's time against the fastest successful peer. */
export function headline(report: BenchReport): string[] {
  const lines: string[] = [];
  for (const ds of report.datasets) {
    for (const stage of STAGES) {
      const rows = report.results.filter((r) => r.dataset === ds.kind && r.stage === stage && r.ok);
      const ours = rows.find((r) => r.primary);
      const peers = rows.filter((r) => r.tool !== 'distbackup');
      if (ours === undefined || peers.length === 0) continue;
      const best = peers.reduce((a, b) => (b.seconds < a.seconds ? b : a));
      const net = best.netRatio ?? null;
      lines.push(
        `  ${ds.kind.padEnd(5)} ${stage.padEnd(7)} distbackup ${fmtSeconds(ours.seconds)} s, fastest peer ${best.label} ${fmtSeconds(best.seconds)} s: ${fmtRatio(ours.seconds / best.seconds)}${net === null ? '' : ` (net ${fmtRatio(net)})`}`,
      );
    }
  }
  return lines;
}
