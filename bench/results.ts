/**
 * Regenerates bench/RESULTS.md: runs every benchmark on this machine, one child process each,
 * and writes their figures with the date, the machine, the load and the exact commands.
 *
 *   npx tsx bench/results.ts [--only default,peers,peers-cold,hdd,planner-suite,planner,update,sync,recovery]
 *                            [--part-timeout 15m] [--reuse] [--out bench/RESULTS.md]
 *
 * The parts and their sizes are chosen so that the whole run takes about ten minutes on a
 * 2-core machine, except `peers` and `peers-cold` (the scale users compare backup tools at, about 10 and 20
 * minutes: run them alone with `--only peers,peers-cold --part-timeout 40m`); each part is time-boxed by --part-timeout. The output of the scripts under
 * bench/ is kept as they print it. Raw outputs are kept in $TMPDIR/distbackup-results/ (one file
 * per part); `--reuse` renders from them without running anything, and `--only` runs some parts
 * and renders the others from their last raw output. Build first (`npm run build`): the CLI runs
 * from dist/ as a user runs it.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { AbortedError, execTimed } from '../src/bench/exec.js';
import type { PlannerReport } from '../src/bench/planner-suite.js';
import { type BenchReport, fmtRatio, headline, STAGE_TITLES, STAGES, startupLine } from '../src/bench/report.js';
import { parseDuration } from '../src/core/units.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const CLI = path.join(ROOT, 'bin', 'run.js');
const RAW = path.join(os.tmpdir(), 'distbackup-results');

/** Every part, in the order of the file. */
const PARTS = [
  'default',
  'peers',
  'peers-cold',
  'hdd',
  'planner-suite',
  'planner',
  'update',
  'sync',
  'recovery',
] as const;
type Part = (typeof PARTS)[number];

/**
 * What each part runs: the command as a user types it, and its argv from the repository root.
 * Sizes: big enough that the data, not start-up, is most of each figure, small enough that the
 * whole file regenerates in about ten minutes here (2 cores, shared).
 */
const node = process.execPath;
const tsx = (script: string, ...args: string[]): { shown: string; argv: string[] } => ({
  shown: `npx tsx bench/${script} ${args.join(' ')}`.trim(),
  argv: [node, '--import', 'tsx', path.join('bench', script), ...args],
});
const dsb = (...args: string[]): { shown: string; argv: string[] } => ({
  shown: `distbackup ${args.filter((a) => a !== '--json').join(' ')}`.trim(),
  argv: [node, CLI, ...args],
});
const COMMANDS: Record<Part, { shown: string; argv: string[] }> = {
  default: dsb('bench'),
  // The scale at which users compare backup tools: about 2 GiB of large files and 110,000 small
  // files (the large and small datasets share --size 5:2), each peer time-boxed at 3 minutes.
  peers: dsb('bench', '--size', '3000M', '--datasets', 'large,small', '--peer-timeout', '3m'),
  // The same with the page cache dropped before every run: a disk read as a backup reads it.
  'peers-cold': dsb('bench', '--cold', '--size', '3000M', '--datasets', 'large,small', '--peer-timeout', '3m'),
  // Read order matters most where files are many: small files only, traced (strace is slow).
  hdd: dsb('bench', '--suite', 'hdd', '--size', '16M', '--datasets', 'small', '--json'),
  // 10 million objects: bench/planner.ts below, in a process of its own (its own peak RSS).
  'planner-suite': dsb('bench', '--suite', 'planner', '--objects', '1000000', '--json'),
  planner: tsx('planner.ts', '--objects', '1e6,1e7'),
  update: tsx(
    'update.ts',
    '--large-mib',
    '256',
    '--small-files',
    '5000',
    '--million',
    '50000',
    '--writer-rows',
    '100000',
  ),
  sync: tsx('sync.ts', '--large-mib', '256', '--small-files', '3000'),
  recovery: tsx('recovery.ts', '--mib', '256', '--repeat', '2'),
};

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    'part-timeout': { type: 'string', default: '15m' },
    reuse: { type: 'boolean', default: false },
    out: { type: 'string', default: path.join(ROOT, 'bench', 'RESULTS.md') },
  },
});
// `peers` and `peers-cold` (10 and 20 minutes on this machine) run only when asked for (`--only
// peers,peers-cold`). Without --only every other part runs, and their last figures are kept from
// their raw output.
const AT_SCALE: readonly Part[] = ['peers', 'peers-cold'];
const only = new Set(
  (values.only ?? PARTS.filter((p) => !AT_SCALE.includes(p)).join(',')).split(',').map((s) => s.trim()),
);
for (const p of only) {
  if (!(PARTS as readonly string[]).includes(p)) throw new Error(`--only ${p}: expected some of ${PARTS.join(',')}`);
}
const partTimeoutSeconds = parseDuration(values['part-timeout']) / 1000;

/** One part's run as kept in RAW. */
interface Raw {
  command: string;
  code: number | null;
  timedOut?: boolean;
  seconds: number;
  /** Load average (1 min) when the part started and when it ended. */
  load: [number, number];
  stdout: string;
  stderr: string;
}

const loadAverage = (): number => Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
const rawFile = (part: Part): string => path.join(RAW, `${part}.json`);
const readRaw = (part: Part): Raw | undefined =>
  fs.existsSync(rawFile(part)) ? (JSON.parse(fs.readFileSync(rawFile(part), 'utf8')) as Raw) : undefined;

const ac = new AbortController();
process.once('SIGINT', () => ac.abort());

/** Run one part (or, with --reuse or when not in --only, reload its last run). */
async function run(part: Part): Promise<Raw | undefined> {
  if (values.reuse || !only.has(part)) return readRaw(part);
  const { shown, argv } = COMMANDS[part];
  console.error(`results: ${shown}`);
  const load0 = loadAverage();
  const r = await execTimed(argv[0] ?? node, argv.slice(1), {
    cwd: ROOT,
    env: { ...process.env, OCLIF_SKIP_NEW_VERSION_CHECK: 'true', NO_COLOR: '1' },
    keepStdout: true,
    timeoutSeconds: partTimeoutSeconds,
    signal: ac.signal,
  });
  const raw: Raw = {
    command: shown,
    code: r.code,
    timedOut: r.timedOut,
    seconds: r.seconds,
    load: [load0, loadAverage()],
    stdout: r.stdout,
    stderr: r.stderrTail,
  };
  fs.mkdirSync(RAW, { recursive: true });
  fs.writeFileSync(rawFile(part), JSON.stringify(raw));
  console.error(`results: ${shown}: exit ${raw.code ?? 'none'} in ${raw.seconds.toFixed(0)} s`);
  return raw;
}

function sh(cmd: string): string {
  return (spawnSync('sh', ['-c', cmd], { encoding: 'utf8' }).stdout ?? '').trimEnd();
}

function machineSection(): string[] {
  const file = path.join(RAW, 'machine.json');
  let m: Record<string, string>;
  if (values.reuse && fs.existsSync(file)) {
    m = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, string>;
  } else {
    m = {
      date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      nproc: sh('nproc'),
      cpu: sh("lscpu | sed -n 's/^Model name: *//p' | head -1"),
      sha: sh("grep -qw sha_ni /proc/cpuinfo && echo 'SHA-NI: yes' || echo 'SHA-NI: no'"),
      free: sh('free -h'),
      df: sh('df -h /tmp'),
      rotational: sh('lsblk -d -o NAME,ROTA,SIZE 2>/dev/null | head -5'),
      kernel: sh('uname -sr'),
      node: process.version,
      tools: sh(
        'for t in cp rsync rclone restic borg openssl sha256sum strace; do printf "%s: " $t; ($t --version 2>/dev/null || $t version 2>/dev/null) | head -1; done',
      ),
    };
    fs.mkdirSync(RAW, { recursive: true });
    fs.writeFileSync(file, JSON.stringify(m));
  }
  return [
    `Generated ${m.date} by \`npm run build && npx tsx bench/results.ts\`; each section gives its exact command, its`,
    'wall time and the load average (1 min) when it started and ended: the machine may be shared, so read the',
    'ratios, measured in the same run on the same data, rather than the absolute times.',
    '',
    '## Machine',
    '',
    `- \`nproc\`: ${m.nproc} (${m.cpu}; ${m.sha})`,
    `- kernel: ${m.kernel}; node ${m.node}`,
    '',
    '```',
    '$ free -h',
    m.free ?? '',
    '$ df -h /tmp',
    m.df ?? '',
    '$ lsblk -d -o NAME,ROTA,SIZE',
    m.rotational ?? '',
    '```',
    '',
    'Peers:',
    '',
    '```',
    m.tools ?? '',
    '```',
  ];
}

const num = (x: number, d = 2): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(d));

/** The line under a section title: the command, its exit, its time and the load around it. */
function ranLine(raw: Raw): string {
  const end = raw.timedOut === true ? `stopped after ${raw.seconds.toFixed(0)} s` : `exit ${raw.code}`;
  return `\`${raw.command}\` (${end}, ${raw.seconds.toFixed(0)} s, load average ${raw.load[0].toFixed(1)} → ${raw.load[1].toFixed(1)})`;
}

function failure(raw: Raw): string[] {
  return ['```', raw.stderr.trimEnd().split('\n').slice(-30).join('\n'), '```'];
}

/** A `distbackup bench --json` report as Markdown tables. */
function suiteSection(title: string, raw: Raw | undefined): string[] {
  const out = ['', `## ${title}`, ''];
  if (raw === undefined) return [...out, '_not run_'];
  out.push(ranLine(raw), '');
  let r: BenchReport;
  try {
    r = JSON.parse(raw.stdout) as BenchReport;
  } catch {
    return [...out, ...failure(raw)];
  }
  out.push(
    `Data in \`${r.target}\`, ${r.cache} cache (${r.cache === 'cold' ? 'page cache dropped before every run' : 'not dropped'}), hashing peers in ${r.hashProcesses} process${r.hashProcesses > 1 ? 'es' : ''}, seed ${r.seed}.` +
      ' Ratio = distbackup time / that tool time: below 1.00× distbackup is faster; net = the same with each' +
      " tool's start-up taken off both times. Copy and restore peers are followed by `sync -f` (counted in their" +
      ' time), since distbackup makes its own writes durable.',
    '',
    `${startupLine(r).replace(/^start-up/, 'Start-up')}.`,
  );
  if (r.tools.missing.length > 0) out.push('', `Not installed (rows left out): ${r.tools.missing.join(', ')}.`);
  if (r.readOrderMethod !== null) {
    out.push('', `"in order" = share of successive files read in ascending inode order (${r.readOrderMethod}).`);
  }
  for (const ds of r.datasets) {
    out.push(
      '',
      `### ${ds.kind} files: ${ds.files.toLocaleString('en-US')} files, ${(ds.bytes / 1e6).toFixed(0)} MB` +
        (ds.duplicates > 0
          ? ` (${ds.duplicates.toLocaleString('en-US')} duplicates, ${(ds.distinctBytes / 1e6).toFixed(0)} MB distinct)`
          : ''),
      '',
    );
    const order = r.readOrderMethod !== null;
    out.push(
      `| stage | command | seconds | MB/s | files/s | ratio | net | peak RSS |${order ? ' in order |' : ''} note |`,
      `| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |${order ? ' ---: |' : ''} --- |`,
    );
    for (const m of r.results.filter((x) => x.dataset === ds.kind)) {
      const cells = [
        m.stage,
        m.primary ? `**${m.label}**` : m.label,
        m.ok ? num(m.seconds) : 'failed',
        m.ok ? num(m.mbPerSecond) : '',
        m.ok ? num(m.filesPerSecond) : '',
        m.ok ? fmtRatio(m.ratio) : '',
        m.ok ? fmtRatio(m.netRatio ?? null) : '',
        m.peakRssBytes === null ? '' : `${(m.peakRssBytes / 1e6).toFixed(0)} MB`,
        ...(order ? [m.readOrder === null ? '' : `${(m.readOrder.ascendingFraction * 100).toFixed(0)}%`] : []),
        (m.note ?? '').replaceAll('|', '\\|'),
      ];
      out.push(`| ${cells.join(' | ')} |`);
    }
  }
  const head = headline(r);
  if (head.length > 0)
    out.push('', 'Against the fastest peer of each stage:', '', '```', ...head.map((l) => l.trim()), '```');
  for (const n of r.notes) out.push('', `Note: ${n}`);
  return out;
}

function plannerSection(raw: Raw | undefined): string[] {
  const out = ['', '## `distbackup bench --suite planner`', ''];
  if (raw === undefined) return [...out, '_not run_'];
  out.push(ranLine(raw), '');
  try {
    const r = JSON.parse(raw.stdout) as PlannerReport;
    out.push(
      '| objects | disks | build input s | plan s | objects/s | copies | evictions | min copies | peak RSS |',
      '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |',
    );
    for (const x of r.runs) {
      out.push(
        `| ${x.objects.toLocaleString('en-US')} | ${x.disks} | ${num(x.buildSeconds)} | ${num(x.planSeconds)} | ${Math.round(x.objectsPerSecond).toLocaleString('en-US')} | ${x.copies.toLocaleString('en-US')} | ${x.evictions.toLocaleString('en-US')} | ${x.minCopiesBefore} → ${x.minCopiesAfter} | ${x.peakRssBytes === null ? '' : `${(x.peakRssBytes / 1e6).toFixed(0)} MB`} |`,
      );
    }
  } catch {
    out.push(...failure(raw));
  }
  return out;
}

/** A part whose output is kept as it printed it. */
function textSection(title: string, raw: Raw | undefined): string[] {
  const out = ['', `## ${title}`, ''];
  if (raw === undefined) return [...out, '_not run_'];
  out.push(ranLine(raw), '', '```');
  out.push(raw.stdout.trimEnd() || '(nothing on stdout)');
  out.push('```');
  if (raw.code !== 0) out.push('', 'Its last lines on stderr:', '', ...failure(raw));
  return out;
}

const TITLES: Record<Part, string> = {
  default: '`distbackup bench` with its defaults',
  peers: '`distbackup bench` at scale: 2 GiB of large files, 110,000 small files',
  'peers-cold': '`distbackup bench --cold` at scale: the same, the page cache dropped before every run',
  hdd: '`distbackup bench --suite hdd` (single reader, read order traced)',
  'planner-suite': '',
  planner: 'Planner, each size in its own process (`bench/planner.ts`)',
  update: 'update (`bench/update.ts`)',
  sync: 'sync (`bench/sync.ts`)',
  recovery: 'verify and restore (`bench/recovery.ts`)',
};

const header: string[] = [
  '# Benchmark results',
  '',
  ...machineSection(),
  '',
  '## What is measured',
  '',
  'Each stage of `distbackup bench`, against the tools a user would otherwise run on the same data in the same folder:',
  '',
  ...STAGES.map((s) => `- ${STAGE_TITLES[s]}`),
  '',
  'Then the planner alone, and the development benchmarks of update, sync, verify and restore',
  '(`bench/*.ts`), whose output is kept as they print it.',
];
const sections = new Map<Part, string[]>();
/** Rewrite the file after every part, so that an interrupted run still leaves the figures so far. */
function write(): void {
  const body = PARTS.flatMap((p) => sections.get(p) ?? []);
  fs.writeFileSync(values.out, `${[...header, ...body].join('\n')}\n`);
}
/**
 * Lay the tables out as the formatter of `npm run lint` wants them (padded columns), so that a
 * regenerated file passes the lint step as it is written.
 */
function formatMarkdown(): void {
  const biome = path.join(ROOT, 'node_modules', '.bin', 'biome');
  const r = spawnSync(biome, ['format', '--write', values.out], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) console.error(`results: could not format ${values.out}: ${String(r.stderr ?? r.error).trim()}`);
}
const started = process.hrtime.bigint();
try {
  for (const part of PARTS) {
    const raw = await run(part);
    const title = `${TITLES[part]}`;
    sections.set(
      part,
      part === 'hdd'
        ? suiteSection(title, raw)
        : part === 'planner-suite'
          ? plannerSection(raw)
          : textSection(title, raw),
    );
    write();
  }
} catch (err) {
  if (!(err instanceof AbortedError)) throw err;
  console.error('results: interrupted; the file holds the parts done so far');
  process.exitCode = 130;
}
formatMarkdown();
console.error(`results: wrote ${values.out} in ${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(0)} s`);
