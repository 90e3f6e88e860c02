/**
 * Regenerates bench/RESULTS.md: runs every benchmark on this machine and writes the figures
 * with the date, the machine and the commands.
 *
 *   npx tsx bench/results.ts [--size 1G] [--hdd-size 512M] [--objects 1000000,10000000]
 *                            [--only update,sync,planner,recovery,ssd,hdd,default,planner-suite]
 *                            [--reuse] [--out bench/RESULTS.md]
 *
 * Raw outputs are kept in $TMPDIR/distbackup-results/ (one file per run); `--reuse` renders from
 * them without running anything again, for when only the layout changes. Build first
 * (`npm run build`): the CLI runs from dist/ as a user runs it.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { PlannerReport } from '../src/bench/planner-suite.js';
import { type BenchReport, fmtRatio, headline, STAGE_TITLES, STAGES } from '../src/bench/report.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const CLI = path.join(ROOT, 'bin', 'run.js');
const RAW = path.join(os.tmpdir(), 'distbackup-results');

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1G' },
    'hdd-size': { type: 'string', default: '512M' },
    objects: { type: 'string', default: '1000000,10000000' },
    only: { type: 'string' },
    reuse: { type: 'boolean', default: false },
    out: { type: 'string', default: path.join(ROOT, 'bench', 'RESULTS.md') },
  },
});
const ALL = ['update', 'sync', 'planner', 'recovery', 'ssd', 'hdd', 'planner-suite', 'default'] as const;
type Part = (typeof ALL)[number];
const only = new Set((values.only ?? ALL.join(',')).split(',').map((s) => s.trim()));

interface Raw {
  command: string;
  code: number | null;
  seconds: number;
  stdout: string;
  stderr: string;
}

/** Run (or, with --reuse, reload) one benchmark command; its raw output is kept in RAW. */
function run(part: Part, command: string, argv: string[], env: NodeJS.ProcessEnv = {}): Raw | undefined {
  const file = path.join(RAW, `${part}.json`);
  if (values.reuse) {
    return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as Raw) : undefined;
  }
  if (!only.has(part)) return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as Raw) : undefined;
  console.error(`results: ${command}`);
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0] ?? '', argv.slice(1), {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, OCLIF_SKIP_NEW_VERSION_CHECK: 'true', ...env },
    maxBuffer: 256 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const raw: Raw = {
    command,
    code: r.status,
    seconds: Number(process.hrtime.bigint() - t0) / 1e9,
    stdout: r.stdout ?? '',
    stderr: r.stderr ?? '',
  };
  fs.mkdirSync(RAW, { recursive: true });
  fs.writeFileSync(file, JSON.stringify(raw));
  console.error(`results: ${command}: exit ${raw.code} in ${raw.seconds.toFixed(0)} s`);
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
    `Generated ${m.date} by \`npx tsx bench/results.ts\` (see the commands with each table).`,
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

function suiteSection(title: string, raw: Raw | undefined): string[] {
  const out = ['', `## ${title}`, ''];
  if (raw === undefined) return [...out, '_not run_'];
  out.push(`\`${raw.command}\` (exit ${raw.code}, ${raw.seconds.toFixed(0)} s)`, '');
  let r: BenchReport;
  try {
    r = JSON.parse(raw.stdout) as BenchReport;
  } catch {
    return [...out, '```', raw.stderr.slice(-3000), '```'];
  }
  out.push(
    `Data in \`${r.target}\`, ${r.cache} cache (${r.cache === 'cold' ? 'page cache dropped before every run' : 'not dropped'}), hashing peers in ${r.hashProcesses} process${r.hashProcesses > 1 ? 'es' : ''}, seed ${r.seed}.` +
      ' Ratio = distbackup time / that tool time: below 1.00× distbackup is faster. Copy and restore peers are followed by `sync -f` (counted in their time), since distbackup makes its own writes durable.',
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
      `| stage | command | seconds | MB/s | files/s | ratio | peak RSS |${order ? ' in order |' : ''} note |`,
      `| --- | --- | ---: | ---: | ---: | ---: | ---: |${order ? ' ---: |' : ''} --- |`,
    );
    for (const m of r.results.filter((x) => x.dataset === ds.kind)) {
      const cells = [
        m.stage,
        m.primary ? `**${m.label}**` : m.label,
        m.ok ? num(m.seconds) : 'failed',
        m.ok ? num(m.mbPerSecond) : '',
        m.ok ? num(m.filesPerSecond) : '',
        m.ok ? fmtRatio(m.ratio) : '',
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
  out.push(`\`${raw.command}\` (exit ${raw.code})`, '');
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
    out.push('```', raw.stderr.slice(-3000), '```');
  }
  return out;
}

function textSection(title: string, raw: Raw | undefined): string[] {
  const out = ['', `## ${title}`, ''];
  if (raw === undefined) return [...out, '_not run_'];
  out.push(`\`${raw.command}\` (exit ${raw.code}, ${raw.seconds.toFixed(0)} s)`, '', '```');
  out.push(raw.stdout.trimEnd() || raw.stderr.trimEnd().split('\n').slice(-20).join('\n'));
  out.push('```');
  return out;
}

const tsx = [process.execPath, '--import', 'tsx', 'bench/run.ts'];
const node = process.execPath;
const header: string[] = ['# Benchmark results', '', ...machineSection()];
header.push(
  '',
  '## What is measured',
  '',
  'Each stage of `distbackup bench`, against the tools a user would otherwise run on the same data in the same folder:',
  '',
  ...STAGES.map((s) => `- ${STAGE_TITLES[s]}`),
);
const sections = new Map<Part, string[]>();
const ORDER: readonly Part[] = ['default', 'ssd', 'hdd', 'planner-suite', 'update', 'sync', 'planner', 'recovery'];
/** Rewrite the file after every part, so that an interrupted session still leaves the figures so far. */
function write(): void {
  const body = ORDER.flatMap((p) => sections.get(p) ?? []);
  fs.writeFileSync(values.out, `${[...header, ...body].join('\n')}\n`);
}
const bench = (...args: string[]): string[] => [node, CLI, 'bench', ...args];
for (const part of ORDER) {
  let section: string[];
  if (part === 'default') {
    section = textSection('`distbackup bench` with its defaults', run(part, 'distbackup bench', bench()));
  } else if (part === 'ssd' || part === 'hdd') {
    const size = part === 'ssd' ? values.size : values['hdd-size'];
    const cmd = `distbackup bench --suite ${part} --size ${size}`;
    const raw = run(part, `${cmd} --json`, bench('--suite', part, '--size', size, '--json'));
    section = suiteSection(`\`${(raw?.command ?? cmd).replace(/ --json$/, '')}\``, raw);
  } else if (part === 'planner-suite') {
    const cmd = `distbackup bench --suite planner --objects ${values.objects} --json`;
    section = plannerSection(run(part, cmd, bench('--suite', 'planner', '--objects', values.objects, '--json')));
  } else {
    section = textSection(`\`npm run bench -- ${part}\``, run(part, `npm run bench -- ${part}`, [...tsx, part]));
  }
  sections.set(part, section);
  write();
}
console.error(`results: wrote ${values.out}`);
