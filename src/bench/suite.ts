/**
 * The ssd and hdd suites of `distbackup bench`: generate the datasets in a fresh folder under
 * the target, then time distbackup's stages (the built CLI, spawned as a user runs it) and, on
 * the same data and the same folder, the peers a user would otherwise use. Every run is
 * preceded by a `sync` (and a page-cache drop when the cache is cold), so no run pays for the
 * previous run's writes. Each tool's start-up (a run that loads it and does no work) is timed
 * once, so that ratios can also be read net of it. Removes everything it made unless `keep`.
 * Not re-entrant.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openCatalog } from '../catalog/db.js';
import { OBJECTS_DIR } from '../disk/layout.js';
import { addDisk } from '../disks/disks.js';
import { mapSource } from '../sources/sources.js';
import {
  contentSha256,
  DATASET_KINDS,
  type DatasetKind,
  type DatasetPlan,
  planDataset,
  writeDataset,
} from './dataset.js';
import {
  AbortedError,
  canDropCaches,
  dropCaches,
  type ExecResult,
  execTimed,
  parseTracedOpens,
  probeTool,
  straceWorks,
  warmTree,
  which,
} from './exec.js';
import { type ReadOrder, readOrder } from './read-order.js';
import type { BenchReport, DatasetDoc, Measurement, Stage } from './report.js';

export interface SuiteOptions {
  readonly suite: 'ssd' | 'hdd';
  /** Folder to put the data in; a fresh `distbackup-bench-*` folder is made inside it. */
  readonly target: string;
  /** Total data size over the datasets (split 50 % large, 20 % small, 30 % mixed). */
  readonly sizeBytes: number;
  readonly seed: number;
  readonly datasets?: readonly DatasetKind[];
  /** `cold`: drop the page cache before every run (root on Linux; warm with a note otherwise). */
  readonly cache: 'cold' | 'warm';
  /** Time box of each peer run, seconds: a slower run is stopped and reported as such. */
  readonly peerTimeoutSeconds?: number;
  /** Keep the generated data and every output (for inspection). */
  readonly keep?: boolean;
  readonly signal?: AbortSignal;
  /** Progress lines (one per run). */
  readonly log?: (line: string) => void;
  /** The CLI entry to time (default: this package's bin/run.js). */
  readonly cliPath?: string;
}

/** Share of the size given to each dataset. */
const SHARES: Record<DatasetKind, number> = { large: 0.5, small: 0.2, mixed: 0.3 };
/** The virtual path the data is mapped at. */
const VPATH = '/bench';
/** Peers whose start-up is timed on an empty repository of theirs (`probeRepoStartup`). */
const REPO_PEERS: readonly string[] = ['restic', 'borg', 'rclone'];
/** Runs of the start-up probe; the fastest counts (a busy machine only ever adds to it). */
const STARTUP_RUNS = 3;
/** The distbackup command timed as its start-up: loads oclif, opens the catalogue, prints a list. */
const STARTUP_ARGS = ['source', 'list', '--json'];

/** Peers looked for on PATH; any missing one is named in the report and its rows left out. */
export const PEER_TOOLS = ['cp', 'rsync', 'rclone', 'restic', 'borg', 'openssl', 'sha256sum', 'find', 'xargs'] as const;

/** The default CLI: `bin/run.js` of this package (two levels above src/bench or dist/bench). */
export function defaultCliPath(): string {
  return path.resolve(import.meta.dirname, '..', '..', 'bin', 'run.js');
}

interface Step {
  readonly stage: Stage;
  readonly tool: string;
  readonly label: string;
  readonly primary?: boolean;
  readonly cmd: string;
  readonly args: readonly string[];
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly input?: Buffer;
  /** A folder to `sync -f` after the command (the tool does not make its writes durable). */
  readonly flush?: string;
  /** Folders whose reads count for the read-order figure. */
  readonly readRoots?: readonly string[];
  /** Extra check of the outcome; returns an error text, or undefined when correct. */
  readonly check?: (r: ExecResult) => string | undefined;
  readonly note?: string;
  /** The tool whose sync-stage run must have succeeded first (verify and restore read its output). */
  readonly dependsOn?: string;
  /** Bytes and files this stage covers. */
  readonly bytes: number;
  readonly files: number;
}

/** Run the ssd or hdd suite; see the module comment. */
export async function runSuite(opts: SuiteOptions): Promise<BenchReport> {
  const started = process.hrtime.bigint();
  const log = opts.log ?? (() => {});
  const signal = opts.signal;
  const cli = opts.cliPath ?? defaultCliPath();
  const kinds = opts.datasets ?? DATASET_KINDS;
  const notes: string[] = [];
  const found: Record<string, string> = {};
  const missing: string[] = [];
  const startup: Record<string, number> = {};
  for (const t of PEER_TOOLS) {
    // restic, borg and rclone: one run for the version; their start-up is timed on a repository.
    const runs = REPO_PEERS.includes(t) ? 1 : 2;
    const probe = which(t) === undefined ? undefined : await probeTool(t, runs, signal);
    if (probe === undefined) {
      missing.push(t);
      continue;
    }
    found[t] = probe.version;
    startup[t] = probe.startupSeconds;
  }
  const has = (t: string): boolean => found[t] !== undefined;
  const hdd = opts.suite === 'hdd';
  const hashProcesses = hdd ? 1 : Math.max(1, os.availableParallelism());
  let cache: 'cold' | 'warm' = opts.cache;
  if (cache === 'cold' && !canDropCaches()) {
    cache = 'warm';
    notes.push('could not drop the page cache (needs root on Linux): every run read from a warm cache');
  }
  const trace = hdd && straceWorks();
  const readOrderMethod = hdd
    ? trace
      ? 'file opens traced with strace --seccomp-bpf in every run of this suite'
      : null
    : null;
  if (hdd && !trace) notes.push('read order not measured: strace is not installed or not allowed here');

  fs.mkdirSync(opts.target, { recursive: true });
  const work = fs.mkdtempSync(path.join(path.resolve(opts.target), 'distbackup-bench-'));
  const datasets: DatasetDoc[] = [];
  const results: Measurement[] = [];
  let dsbStartup: number[] = [];
  try {
    dsbStartup = await measureStartup(cli, path.join(work, 'startup-home'), signal);
    // The fastest run: a busy machine only ever adds to a start-up.
    if (dsbStartup.length > 0) startup.distbackup = Math.min(...dsbStartup);
    log(`bench: start-up: distbackup ${STARTUP_ARGS.join(' ')}: ${startup.distbackup?.toFixed(2) ?? '?'} s`);
    const totalShare = kinds.reduce((s, k) => s + SHARES[k], 0);
    const plans = kinds.map((k) => planDataset(k, Math.floor((opts.sizeBytes * SHARES[k]) / totalShare), opts.seed));
    const need = plans.reduce((s, p) => s + p.bytes, 0) * 14;
    const free = freeBytes(work);
    const tight = free !== undefined && free < need;
    if (tight) {
      notes.push(
        `only ${Math.round((free ?? 0) / 1e6)} MB free for about ${Math.round(need / 1e6)} MB of outputs: each output was deleted right after its run`,
      );
    }
    const env = toolEnv(work);
    for (const [i, plan] of plans.entries()) {
      const { doc, measurements } = await runDataset(plan, {
        probeStartup: i === 0,
        work,
        cli,
        env,
        hdd,
        cache,
        trace,
        tight,
        hashProcesses,
        has,
        log,
        signal,
        startup,
        peerTimeoutSeconds: opts.peerTimeoutSeconds,
        readOnce: new Set(),
      });
      datasets.push(doc);
      results.push(...measurements);
    }
  } finally {
    if (opts.keep !== true) {
      log('bench: removing the generated data and outputs');
      fs.rmSync(work, { recursive: true, force: true });
    } else {
      log(`bench: kept ${work}`);
    }
  }
  return {
    suite: opts.suite,
    date: new Date().toISOString(),
    target: path.resolve(opts.target),
    sizeBytes: opts.sizeBytes,
    seed: opts.seed,
    cache,
    hashProcesses,
    machine: machineDoc(),
    tools: { found, missing },
    readOrderMethod,
    startup: {
      command: `distbackup ${STARTUP_ARGS.join(' ')}`,
      runs: dsbStartup,
      seconds: startup,
    },
    peerTimeoutSeconds: opts.peerTimeoutSeconds ?? null,
    datasets,
    results,
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
    notes,
  };
}

interface DatasetContext {
  readonly work: string;
  readonly cli: string;
  readonly env: NodeJS.ProcessEnv;
  readonly hdd: boolean;
  readonly cache: 'cold' | 'warm';
  readonly trace: boolean;
  readonly tight: boolean;
  readonly hashProcesses: number;
  readonly has: (tool: string) => boolean;
  readonly log: (line: string) => void;
  readonly signal: AbortSignal | undefined;
  /**
   * Start-up seconds of each tool (distbackup and the peers found); the first dataset replaces
   * restic's, borg's and rclone's (`probeStartup`).
   */
  readonly startup: Record<string, number>;
  readonly probeStartup: boolean;
  readonly peerTimeoutSeconds: number | undefined;
  /** Cold runs: the roots read once already (each is written before its first read, never after). */
  readonly readOnce: Set<string>;
}

/**
 * The start-up of restic, borg and rclone as a backup pays it: opening their (empty) repository
 * and listing it (restic derives its key there), fastest of two runs. Their version command
 * loads the program only, and would make their rows look slower on the data than they are.
 */
async function probeRepoStartup(ctx: DatasetContext, out: (name: string) => string): Promise<void> {
  const empty = out('rclone-empty');
  fs.mkdirSync(empty, { recursive: true });
  const probes: [string, string[]][] = [
    ['restic', ['-r', out('restic'), 'snapshots', '--quiet']],
    ['borg', ['list', out('borg')]],
    ['rclone', ['lsf', empty]],
  ];
  for (const [tool, args] of probes) {
    if (!ctx.has(tool)) continue;
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 2; i++) {
      const r = await execTimed(tool, args, { env: ctx.env, timeoutSeconds: 30, ...sig(ctx.signal) });
      if (r.code === 0) best = Math.min(best, r.seconds);
    }
    if (Number.isFinite(best)) ctx.startup[tool] = best;
  }
  fs.rmSync(empty, { recursive: true, force: true });
}

/** Time `distbackup source list --json` on a fresh catalogue STARTUP_RUNS times (seconds each). */
async function measureStartup(cli: string, home: string, signal: AbortSignal | undefined): Promise<number[]> {
  fs.mkdirSync(home, { recursive: true });
  openCatalog(home).close();
  const runs: number[] = [];
  for (let i = 0; i < STARTUP_RUNS; i++) {
    const r = await execTimed(process.execPath, [cli, ...STARTUP_ARGS], {
      env: { ...process.env, DISTBACKUP_PATH: home, NO_COLOR: '1', OCLIF_SKIP_NEW_VERSION_CHECK: 'true' },
      ...sig(signal),
    });
    if (r.code !== 0) return [];
    runs.push(r.seconds);
  }
  return runs;
}

async function runDataset(
  plan: DatasetPlan,
  ctx: DatasetContext,
): Promise<{ doc: DatasetDoc; measurements: Measurement[] }> {
  const { work, has, log } = ctx;
  const kind = plan.kind;
  const dir = (...parts: string[]): string => path.join(work, kind, ...parts);
  const data = dir('data');
  log(`bench: ${kind}: generating ${plan.files.length} files, ${Math.round(plan.bytes / 1e6)} MB`);
  const g0 = process.hrtime.bigint();
  try {
    await writeDataset(data, plan, sig(ctx.signal));
  } catch (err) {
    if (ctx.signal?.aborted === true) throw new AbortedError();
    throw err;
  }
  const generateSeconds = Number(process.hrtime.bigint() - g0) / 1e9;
  const doc: DatasetDoc = {
    kind,
    files: plan.files.length,
    bytes: plan.bytes,
    distinctFiles: plan.distinctFiles,
    distinctBytes: plan.distinctBytes,
    duplicates: plan.duplicates,
    generateSeconds,
  };
  const home = dir('home');
  const disk1 = dir('disk-1');
  const disk2 = dir('disk-2');
  const out = (name: string): string => dir('out', name);
  const restoreTo = (name: string): string => dir('restore', name);
  for (const d of [home, disk1, disk2, dir('out'), dir('restore'), dir('trace')]) fs.mkdirSync(d, { recursive: true });
  const dsbEnv: NodeJS.ProcessEnv = {
    ...process.env,
    DISTBACKUP_PATH: home,
    NO_COLOR: '1',
    OCLIF_SKIP_NEW_VERSION_CHECK: 'true',
  };
  const dsb = (args: string[]): { cmd: string; args: string[]; env: NodeJS.ProcessEnv } => ({
    cmd: process.execPath,
    args: [ctx.cli, ...args, '--json'],
    env: dsbEnv,
  });
  const profile = ctx.hdd ? 'hdd' : 'ssd';
  const measurements: Measurement[] = [];
  const dataFiles = plan.files.map((f) => path.join(data, ...f.rel.split('/')));
  const n = ctx.hashProcesses;
  const perProcess = (count: number): string => String(Math.max(1, Math.ceil(count / n)));
  const nul = (files: readonly string[]): Buffer => Buffer.from(files.map((f) => `${f}\0`).join(''));
  const linesAre = (want: number) => (r: ExecResult) =>
    r.stdoutLines === want ? undefined : `printed ${r.stdoutLines} lines for ${want} files`;
  const all = { bytes: plan.bytes, files: plan.files.length };

  // Set up distbackup (untimed, in this process: three more start-ups would time nothing):
  // map the data, register two empty disks.
  let dsbReady = true;
  let dsbError = '';
  try {
    const cat = openCatalog(home);
    try {
      mapSource(cat, VPATH, data);
      addDisk(cat, `${kind}-1`, disk1);
      addDisk(cat, `${kind}-2`, disk2);
    } finally {
      cat.close();
    }
  } catch (err) {
    dsbReady = false;
    dsbError = `setting up distbackup's catalogue failed: ${(err as Error).message}`;
  }
  const dsbDoc = (r: ExecResult): Record<string, unknown> | undefined => {
    try {
      const v: unknown = JSON.parse(r.stdout);
      return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  };
  const dsbCheck =
    (want: (doc: Record<string, unknown>) => string | undefined) =>
    (r: ExecResult): string | undefined => {
      const d = dsbDoc(r);
      return d === undefined ? 'no JSON document on stdout' : want(d);
    };
  const field = (d: Record<string, unknown>, k: string): unknown => d[k];
  const expect = (d: Record<string, unknown>, k: string, v: number): string | undefined =>
    field(d, k) === v ? undefined : `${k} = ${String(field(d, k))}, expected ${v}`;
  // update counts folders as well as files.
  const atLeast = (d: Record<string, unknown>, k: string, v: number): string | undefined =>
    typeof field(d, k) === 'number' && (field(d, k) as number) >= v
      ? undefined
      : `${k} = ${String(field(d, k))}, expected at least ${v}`;
  const emptyList = (d: Record<string, unknown>, k: string): string | undefined => {
    const v = field(d, k);
    return Array.isArray(v) && v.length > 0 ? `${k}: ${v.length} (${JSON.stringify(v[0]).slice(0, 120)})` : undefined;
  };
  const firstOf = (...checks: (string | undefined)[]): string | undefined => checks.find((c) => c !== undefined);

  const steps: Step[] = [];
  const add = (s: Step, needs: readonly string[] = []): void => {
    if (needs.every(has)) steps.push(s);
  };
  const dsbStep = (s: Omit<Step, 'cmd' | 'args' | 'env' | 'tool'> & { dsbArgs: string[] }): void => {
    const c = dsb(s.dsbArgs);
    steps.push({ ...s, tool: 'distbackup', cmd: c.cmd, args: c.args, env: c.env });
  };

  // hash: the first update against hashing every file with the standard tools.
  dsbStep({
    stage: 'hash',
    label: 'distbackup update',
    primary: true,
    dsbArgs: ['update'],
    readRoots: [data],
    ...all,
    check: dsbCheck((d) => firstOf(atLeast(d, 'new', plan.files.length), emptyList(d, 'errors'))),
  });
  add(
    {
      stage: 'hash',
      tool: 'openssl',
      label: `openssl dgst -sha256 ×${n}`,
      cmd: 'xargs',
      args: ['-0', '-P', String(n), '-n', perProcess(dataFiles.length), 'openssl', 'dgst', '-sha256', '-r'],
      input: nul(dataFiles),
      readRoots: [data],
      check: linesAre(dataFiles.length),
      ...all,
    },
    ['openssl', 'xargs'],
  );
  add(
    {
      stage: 'hash',
      tool: 'sha256sum',
      label: `sha256sum ×${n}`,
      cmd: 'xargs',
      args: ['-0', '-P', String(n), '-n', perProcess(dataFiles.length), 'sha256sum'],
      input: nul(dataFiles),
      readRoots: [data],
      check: linesAre(dataFiles.length),
      ...all,
    },
    ['sha256sum', 'xargs'],
  );
  const noChange = dsbCheck((d) =>
    firstOf(expect(d, 'new', 0), expect(d, 'changed', 0), atLeast(d, 'unchanged', plan.files.length)),
  );
  // scan: an update that finds nothing changed, against listing the tree. The first such run
  // compares every catalogue row and signs each folder (update/dir-sig.ts); the runs after it,
  // the re-scan a user runs day after day, go by the signatures: that one is ours.
  dsbStep({
    stage: 'scan',
    label: 'distbackup update (no change, first: signs folders)',
    dsbArgs: ['update'],
    ...all,
    check: noChange,
  });
  dsbStep({
    stage: 'scan',
    label: 'distbackup update (no change)',
    primary: true,
    dsbArgs: ['update'],
    ...all,
    check: noChange,
  });
  add(
    {
      stage: 'scan',
      tool: 'find',
      label: "find -printf '%s %T@ %p'",
      cmd: 'find',
      args: [data, '-printf', '%s %T@ %p\\n'],
      ...all,
      check: (r) =>
        r.stdoutLines >= plan.files.length ? undefined : `listed ${r.stdoutLines} of ${plan.files.length}`,
    },
    ['find'],
  );
  // sync: into an empty folder, durable.
  const objects = plan.distinctFiles;
  dsbStep({
    stage: 'sync',
    label: `distbackup sync --profile ${profile}`,
    primary: true,
    readRoots: [data],
    dsbArgs: ['sync', '--disk', disk1, '--profile', profile],
    ...all,
    check: dsbCheck((d) => firstOf(expect(d, 'copied', objects), emptyList(d, 'skipped'))),
  });
  dsbStep({
    stage: 'sync',
    label: `distbackup sync --verify readback`,
    readRoots: [data],
    dsbArgs: ['sync', '--disk', disk2, '--profile', profile, '--verify', 'readback'],
    ...all,
    check: dsbCheck((d) => firstOf(expect(d, 'copied', objects), emptyList(d, 'skipped'))),
  });
  add(
    {
      stage: 'sync',
      tool: 'cp',
      label: 'cp -a + sync',
      cmd: 'cp',
      args: ['-a', data, out('cp')],
      flush: dir('out'),
      readRoots: [data],
      ...all,
    },
    ['cp'],
  );
  add(
    {
      stage: 'sync',
      tool: 'rsync',
      label: 'rsync -a + sync',
      cmd: 'rsync',
      args: ['-a', `${data}/`, `${out('rsync')}/`],
      flush: dir('out'),
      readRoots: [data],
      ...all,
    },
    ['rsync'],
  );
  add(
    {
      stage: 'sync',
      tool: 'rclone',
      label: 'rclone copy --checksum + sync',
      cmd: 'rclone',
      args: ['copy', '--checksum', data, out('rclone')],
      env: ctx.env,
      flush: dir('out'),
      readRoots: [data],
      ...all,
    },
    ['rclone'],
  );
  add(
    {
      stage: 'sync',
      tool: 'restic',
      label: 'restic backup + sync',
      cmd: 'restic',
      args: ['-r', out('restic'), 'backup', '--quiet', data],
      env: ctx.env,
      flush: dir('out'),
      readRoots: [data],
      ...all,
    },
    ['restic'],
  );
  add(
    {
      stage: 'sync',
      tool: 'borg',
      label: 'borg create + sync',
      cmd: 'borg',
      args: ['create', `${out('borg')}::bench`, '.'],
      cwd: data,
      env: ctx.env,
      flush: dir('out'),
      readRoots: [data],
      ...all,
    },
    ['borg'],
  );
  // resync: nothing changed since the last run.
  dsbStep({
    stage: 'resync',
    label: 'distbackup sync (nothing to do)',
    primary: true,
    dsbArgs: ['sync', '--disk', disk1, '--profile', profile],
    dependsOn: 'distbackup',
    ...all,
    check: dsbCheck((d) => expect(d, 'copied', 0)),
  });
  add(
    {
      stage: 'resync',
      tool: 'rsync',
      label: 'rsync -a',
      cmd: 'rsync',
      args: ['-a', `${data}/`, `${out('rsync')}/`],
      dependsOn: 'rsync',
      ...all,
    },
    ['rsync'],
  );
  add(
    {
      stage: 'resync',
      tool: 'rclone',
      label: 'rclone copy --checksum',
      cmd: 'rclone',
      args: ['copy', '--checksum', data, out('rclone')],
      env: ctx.env,
      dependsOn: 'rclone',
      ...all,
    },
    ['rclone'],
  );
  add(
    {
      stage: 'resync',
      tool: 'restic',
      label: 'restic backup',
      cmd: 'restic',
      args: ['-r', out('restic'), 'backup', '--quiet', data],
      env: ctx.env,
      dependsOn: 'restic',
      ...all,
    },
    ['restic'],
  );
  add(
    {
      stage: 'resync',
      tool: 'borg',
      label: 'borg create',
      cmd: 'borg',
      args: ['create', `${out('borg')}::bench2`, '.'],
      cwd: data,
      env: ctx.env,
      dependsOn: 'borg',
      ...all,
    },
    ['borg'],
  );
  // verify: re-read every stored copy.
  const distinct = { bytes: plan.distinctBytes, files: plan.distinctFiles };
  const objRoot = path.join(disk1, OBJECTS_DIR);
  dsbStep({
    stage: 'verify',
    // The profile of the suite, as for sync: two checking threads against the two hashing
    // processes of the ssd suite, one reader in inode order against one of the hdd suite.
    label: `distbackup verify --profile ${profile}`,
    primary: true,
    dsbArgs: ['verify', '--disk', disk1, '--profile', profile],
    readRoots: [objRoot],
    dependsOn: 'distbackup',
    ...distinct,
    check: dsbCheck((d) => firstOf(expect(d, 'checked', objects), emptyList(d, 'bad'), emptyList(d, 'missing'))),
  });
  const objectFiles = (): string[] => listObjects(objRoot);
  add(
    {
      stage: 'verify',
      tool: 'openssl',
      label: `openssl dgst -sha256 ×${n} (objects)`,
      cmd: 'xargs',
      args: ['-0', '-P', String(n), '-n', perProcess(objects), 'openssl', 'dgst', '-sha256', '-r'],
      readRoots: [objRoot],
      check: linesAre(objects),
      dependsOn: 'distbackup',
      ...distinct,
    },
    ['openssl', 'xargs'],
  );
  add(
    {
      stage: 'verify',
      tool: 'sha256sum',
      label: `sha256sum ×${n} (objects)`,
      cmd: 'xargs',
      args: ['-0', '-P', String(n), '-n', perProcess(objects), 'sha256sum'],
      readRoots: [objRoot],
      check: linesAre(objects),
      dependsOn: 'distbackup',
      ...distinct,
    },
    ['sha256sum', 'xargs'],
  );
  add(
    {
      stage: 'verify',
      tool: 'restic',
      label: 'restic check --read-data',
      cmd: 'restic',
      args: ['-r', out('restic'), 'check', '--read-data'],
      env: ctx.env,
      readRoots: [out('restic')],
      dependsOn: 'restic',
      ...distinct,
    },
    ['restic'],
  );
  add(
    {
      stage: 'verify',
      tool: 'borg',
      label: 'borg check --verify-data',
      cmd: 'borg',
      args: ['check', '--verify-data', out('borg')],
      env: ctx.env,
      readRoots: [out('borg')],
      dependsOn: 'borg',
      ...distinct,
    },
    ['borg'],
  );
  add(
    {
      stage: 'verify',
      tool: 'rclone',
      label: 'rclone check',
      cmd: 'rclone',
      args: ['check', data, out('rclone')],
      env: ctx.env,
      note: 'hashes source and copy',
      readRoots: [out('rclone')],
      dependsOn: 'rclone',
      ...distinct,
    },
    ['rclone'],
  );
  // restore: rebuild the files from each backup, durable.
  const dsbRestore = restoreTo('distbackup');
  dsbStep({
    stage: 'restore',
    // The profile of the suite, as for sync and verify: small files written on two threads or one.
    label: `distbackup restore --profile ${profile}`,
    primary: true,
    dsbArgs: ['restore', '--disk', disk1, '--to', dsbRestore, '--profile', profile],
    readRoots: [objRoot],
    dependsOn: 'distbackup',
    ...all,
    check: dsbCheck((d) =>
      firstOf(
        expect(d, 'restored', plan.files.length),
        expect(d, 'remaining', 0),
        compareRestore(plan, path.join(dsbRestore, VPATH.slice(1))),
      ),
    ),
  });
  add(
    {
      stage: 'restore',
      tool: 'cp',
      label: 'cp -a + sync',
      cmd: 'cp',
      args: ['-a', out('cp'), restoreTo('cp')],
      flush: dir('restore'),
      readRoots: [out('cp')],
      dependsOn: 'cp',
      ...all,
    },
    ['cp'],
  );
  add(
    {
      stage: 'restore',
      tool: 'rsync',
      label: 'rsync -a + sync',
      cmd: 'rsync',
      args: ['-a', `${out('rsync')}/`, `${restoreTo('rsync')}/`],
      flush: dir('restore'),
      readRoots: [out('rsync')],
      dependsOn: 'rsync',
      ...all,
    },
    ['rsync'],
  );
  add(
    {
      stage: 'restore',
      tool: 'rclone',
      label: 'rclone copy + sync',
      cmd: 'rclone',
      args: ['copy', out('rclone'), restoreTo('rclone')],
      env: ctx.env,
      flush: dir('restore'),
      readRoots: [out('rclone')],
      dependsOn: 'rclone',
      ...all,
    },
    ['rclone'],
  );
  add(
    {
      stage: 'restore',
      tool: 'restic',
      label: 'restic restore + sync',
      cmd: 'restic',
      args: ['-r', out('restic'), 'restore', 'latest', '--target', restoreTo('restic')],
      env: ctx.env,
      flush: dir('restore'),
      readRoots: [out('restic')],
      dependsOn: 'restic',
      ...all,
    },
    ['restic'],
  );
  add(
    {
      stage: 'restore',
      tool: 'borg',
      label: 'borg extract + sync',
      cmd: 'borg',
      args: ['extract', `${out('borg')}::bench`],
      cwd: restoreTo('borg'),
      env: ctx.env,
      flush: dir('restore'),
      readRoots: [out('borg')],
      dependsOn: 'borg',
      ...all,
    },
    ['borg'],
  );

  // Untimed preparation of the repositories the peers need.
  if (has('restic')) await execTimed('restic', ['-r', out('restic'), 'init'], { env: ctx.env, ...sig(ctx.signal) });
  if (has('borg')) {
    await execTimed('borg', ['init', '--encryption=none', out('borg')], { env: ctx.env, ...sig(ctx.signal) });
  }
  fs.mkdirSync(restoreTo('borg'), { recursive: true });
  if (ctx.probeStartup) await probeRepoStartup(ctx, out);

  // A tool whose backup failed has nothing to verify or restore: its later rows say so.
  const failed = new Set<string>();
  for (const step of steps) {
    let m: Measurement;
    if (step.tool === 'distbackup' && !dsbReady) {
      m = measurement(kind, step, undefined, 0, null, dsbError);
    } else if (step.dependsOn !== undefined && failed.has(step.dependsOn)) {
      m = measurement(kind, step, undefined, 0, null, `skipped: ${step.dependsOn}'s backup failed`);
    } else {
      const input = step.stage === 'verify' && step.cmd === 'xargs' ? nul(objectFiles()) : undefined;
      m = await timeStep(step, ctx, kind, input);
    }
    if (!m.ok && m.stage === 'sync' && (m.primary || m.tool !== 'distbackup')) failed.add(m.tool);
    log(`bench: ${kind}: ${m.stage}: ${m.label}: ${m.ok ? `${m.seconds.toFixed(2)} s` : `failed (${m.note ?? ''})`}`);
    measurements.push(m);
    if (ctx.tight && step.stage === 'restore' && step.tool !== 'distbackup') {
      fs.rmSync(restoreTo(step.tool), { recursive: true, force: true });
    }
  }
  // Ratios against distbackup's primary run of each stage, as timed and net of start-ups.
  const ratios = measurements.map((m) => {
    if (m.tool === 'distbackup' || !m.ok) return m;
    const ours = measurements.find((o) => o.stage === m.stage && o.primary && o.ok);
    if (ours === undefined) return m;
    return { ...m, ratio: ours.seconds / m.seconds, netRatio: netRatio(ours, m, ctx.startup) };
  });
  if (ctx.tight) fs.rmSync(path.join(work, kind), { recursive: true, force: true });
  return { doc, measurements: ratios };
}

/**
 * distbackup's time over the peer's, each less its own start-up; null when either is left
 * with nothing measurable (under 10 ms: the run was all start-up).
 */
export function netRatio(
  ours: Measurement,
  peer: Measurement,
  startup: Readonly<Record<string, number>>,
): number | null {
  const oursNet = ours.seconds - (startup.distbackup ?? 0);
  const peerNet = peer.seconds - (startup[peer.tool] ?? 0);
  return oursNet >= 0.01 && peerNet >= 0.01 ? oursNet / peerNet : null;
}

async function timeStep(step: Step, ctx: DatasetContext, kind: DatasetKind, input?: Buffer): Promise<Measurement> {
  await settle(ctx, step);
  const traceFile =
    ctx.trace && step.readRoots !== undefined
      ? path.join(ctx.work, kind, 'trace', `${step.tool}-${step.stage}.txt`)
      : undefined;
  let r: ExecResult;
  try {
    r = await execTimed(step.cmd, step.args, {
      ...(step.cwd === undefined ? {} : { cwd: step.cwd }),
      ...(step.env === undefined ? {} : { env: step.env }),
      ...(input !== undefined ? { input } : step.input === undefined ? {} : { input: step.input }),
      keepStdout: step.tool === 'distbackup',
      ...sig(ctx.signal),
      ...(traceFile === undefined ? {} : { traceFile }),
      ...(step.tool === 'distbackup' || ctx.peerTimeoutSeconds === undefined
        ? {}
        : { timeoutSeconds: ctx.peerTimeoutSeconds }),
    });
  } catch (err) {
    if (err instanceof AbortedError) throw err;
    return measurement(kind, step, undefined, 0, null, `cannot start ${step.cmd}: ${(err as Error).message}`);
  }
  if (r.timedOut) {
    return measurement(kind, step, r, 0, null, `time box: stopped after ${ctx.peerTimeoutSeconds ?? 0} s`);
  }
  if (r.code !== 0) {
    return measurement(kind, step, r, 0, null, `exit ${r.code ?? r.signal}: ${lastLine(r.stderrTail)}`);
  }
  let flushSeconds = 0;
  if (step.flush !== undefined) {
    const f = await execTimed('sync', ['-f', step.flush], sig(ctx.signal));
    flushSeconds = f.seconds;
  }
  const problem = step.check?.(r);
  let order: ReadOrder | null = null;
  if (traceFile !== undefined && step.readRoots !== undefined) {
    try {
      order = readOrder(parseTracedOpens(fs.readFileSync(traceFile, 'utf8'), step.readRoots));
    } catch {
      order = null;
    }
    fs.rmSync(traceFile, { force: true });
  }
  return measurement(kind, step, r, flushSeconds, order, problem ?? step.note ?? null, problem === undefined);
}

function measurement(
  kind: DatasetKind,
  step: Step,
  r: ExecResult | undefined,
  flushSeconds: number,
  order: ReadOrder | null,
  note: string | null,
  ok = false,
): Measurement {
  const seconds = (r?.seconds ?? 0) + flushSeconds;
  return {
    dataset: kind,
    stage: step.stage,
    tool: step.tool,
    primary: step.primary === true,
    label: step.label,
    seconds,
    flushSeconds,
    bytes: step.bytes,
    files: step.files,
    mbPerSecond: ok && seconds > 0 ? step.bytes / 1e6 / seconds : 0,
    filesPerSecond: ok && seconds > 0 ? step.files / seconds : 0,
    ratio: null,
    netRatio: null,
    peakRssBytes: r?.peakRssBytes ?? null,
    readOrder: order,
    ok,
    note,
  };
}

/** Before every timed run: flush what earlier runs wrote, and drop the page cache when cold. */
async function settle(ctx: DatasetContext, step: Step): Promise<void> {
  if (ctx.cache === 'cold' && step.readRoots !== undefined) {
    // Cold runs read each input once, then drop it: the first read of data freshly written
    // costs more than any later cold read on some storage (this machine's virtio disk: openssl
    // ×2 over 4 new files of 536 MB, 3.66 s the first time and 1.65 s after dropping the cache),
    // and it fell on whichever tool read first (distbackup's update and verify). Once a root
    // is enough: a stage writes each root before its first read and never after.
    const first = step.readRoots.filter((r) => !ctx.readOnce.has(r));
    for (const r of first) ctx.readOnce.add(r);
    await warmTree(first, ctx.signal);
  } else if (step.readRoots !== undefined && step.bytes < os.totalmem() / 4) {
    // Warm means warm for every tool, the first of a stage included (before the flush, so that
    // what the reads change is not left for the timed run's). Data too big to stay cached
    // beside the stage's output is left as it is: reading it would only push itself out.
    await warmTree(step.readRoots, ctx.signal);
  }
  await execTimed('sync', [], sig(ctx.signal));
  if (ctx.cache !== 'cold') return;
  dropCaches();
  // Cold data, warm programs: load the tool's own files (node_modules, Python modules, the
  // binary) again, so the run measures reading the data from the disk, not starting the tool.
  const warm = warmUp(step);
  await execTimed(warm[0] ?? 'true', warm.slice(1), {
    ...(step.env === undefined ? {} : { env: step.env }),
    ...sig(ctx.signal),
  });
}

/** A harmless command that loads the same program as `step` (its --help or --version). */
function warmUp(step: Step): string[] {
  if (step.tool === 'distbackup') {
    const words = step.args.slice(1).filter((a) => !a.startsWith('-'));
    return [step.cmd, step.args[0] ?? '', ...words.slice(0, 1), '--help'];
  }
  const cmd = step.cmd === 'xargs' ? (step.tool === 'openssl' ? 'openssl' : 'sha256sum') : step.cmd;
  return cmd === 'openssl' || cmd === 'restic' ? [cmd, 'version'] : [cmd, '--version'];
}

function freeBytes(dir: string): number | undefined {
  try {
    const s = fs.statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

/** Environment for restic, borg and rclone: their caches and config inside the work folder. */
function toolEnv(work: string): NodeJS.ProcessEnv {
  const rcloneConf = path.join(work, 'rclone.conf');
  fs.writeFileSync(rcloneConf, '');
  return {
    ...process.env,
    RESTIC_PASSWORD: 'distbackup-bench',
    RESTIC_CACHE_DIR: path.join(work, 'restic-cache'),
    BORG_BASE_DIR: path.join(work, 'borg-base'),
    BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes',
    BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
    BORG_CHECK_I_KNOW_WHAT_I_AM_DOING: 'YES',
    RCLONE_CONFIG: rcloneConf,
  };
}

/** Every object file of a disk's object folder (not `.tmp`, not `.quarantine`). */
function listObjects(objRoot: string): string[] {
  const out: string[] = [];
  let prefixes: string[];
  try {
    prefixes = fs.readdirSync(objRoot);
  } catch {
    return out;
  }
  for (const p of prefixes.sort()) {
    if (p.startsWith('.')) continue;
    for (const name of fs.readdirSync(path.join(objRoot, p)).sort()) out.push(path.join(objRoot, p, name));
  }
  return out;
}

/**
 * Compare a restored tree with the plan: every file present with its size and mtime, and the
 * content of up to 32 files (spread over the plan) hashed against what was generated.
 */
export function compareRestore(plan: DatasetPlan, root: string): string | undefined {
  const step = Math.max(1, Math.floor(plan.files.length / 32));
  for (let i = 0; i < plan.files.length; i++) {
    const f = plan.files[i];
    if (f === undefined) continue;
    const p = path.join(root, ...f.rel.split('/'));
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      return `restored tree lacks ${f.rel}`;
    }
    if (st.size !== f.sizeBytes) return `${f.rel}: ${st.size} bytes restored, ${f.sizeBytes} expected`;
    if (Math.floor(st.mtimeMs / 1000) !== f.mtimeS) return `${f.rel}: mtime not restored`;
    if (i % step === 0) {
      const got = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
      if (got !== contentSha256(f.content, f.sizeBytes)) return `${f.rel}: restored content differs`;
    }
  }
  return undefined;
}

function machineDoc(): BenchReport['machine'] {
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    memoryBytes: os.totalmem(),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  };
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return (lines[lines.length - 1] ?? '').trim().slice(0, 200);
}

function sig(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal === undefined ? {} : { signal };
}
