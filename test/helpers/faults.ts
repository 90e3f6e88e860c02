/**
 * Shared pieces of the fault-injection suite (test/faults/): the seed and a seeded PRNG, the
 * CLI runner with hard timeouts (nothing may hang CI), the skip rule (a missing tool is a skip
 * that names itself, but under `CI=true` with the tools installed a skip is a failure), and the
 * counters of faults injected and invariant violations that feed docs/README-reliability.md.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { CLI } from './cli.js';

/** The suite's seed: `DISTBACKUP_FAULT_SEED`, else a fixed one (runs are reproducible). */
export const SEED = Number(process.env.DISTBACKUP_FAULT_SEED ?? '20261127') >>> 0;

/** Multiplier for soak runs (`DISTBACKUP_SOAK=N` runs N times the kills); 1 in CI. */
export const SOAK = Math.max(1, Number(process.env.DISTBACKUP_SOAK ?? '1') | 0);

/** A small seeded PRNG (mulberry32): deterministic for a seed, good enough for test choices. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    const x = xs[Math.floor(this.next() * xs.length)];
    if (x === undefined) throw new Error('pick from an empty list');
    return x;
  }
  /** A derived generator (independent streams per test). */
  fork(salt: number): Rng {
    return new Rng((this.int(0, 0xffffffff) ^ Math.imul(salt, 0x9e3779b1)) >>> 0);
  }
}

/** A generator for test `name`, derived from SEED; prints the seed once per test. */
export function rngFor(name: string): Rng {
  let h = 2166136261;
  for (const c of name) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  process.stdout.write(`# seed ${SEED} (DISTBACKUP_FAULT_SEED) for ${name}\n`);
  return new Rng((SEED ^ h) >>> 0);
}

// ---------------------------------------------------------------------------------------------
// Counters

interface TallyRow {
  fault: string;
  how: string;
  runs: number;
  violations: number;
  notes: string[];
}

const tally = new Map<string, TallyRow>();

/** Count `runs` injections of `fault` (injected `how`). */
export function countFault(fault: string, how: string, runs = 1): void {
  const row = tally.get(fault) ?? { fault, how, runs: 0, violations: 0, notes: [] };
  row.runs += runs;
  tally.set(fault, row);
}

/** Count invariant violations seen after `fault`, with what they were. */
export function countViolations(fault: string, violations: readonly string[]): void {
  const row = tally.get(fault) ?? { fault, how: '', runs: 0, violations: 0, notes: [] };
  row.violations += violations.length;
  row.notes.push(...violations.slice(0, 20));
  tally.set(fault, row);
}

/** A note for the report (a kill point never reached, a skip, a known bug). */
export function noteFault(fault: string, note: string): void {
  const row = tally.get(fault) ?? { fault, how: '', runs: 0, violations: 0, notes: [] };
  row.notes.push(note);
  tally.set(fault, row);
  process.stdout.write(`# ${fault}: ${note}\n`);
}

/** Where each test process appends its tally (one JSON line per process). */
export const TALLY_FILE = process.env.DISTBACKUP_FAULT_TALLY ?? path.join(os.tmpdir(), 'distbackup-fault-tally.jsonl');

process.on('exit', () => {
  if (tally.size === 0) return;
  const rows = [...tally.values()];
  for (const r of rows) {
    process.stdout.write(`# FAULTS ${r.fault}: ${r.runs} injected, ${r.violations} invariant violations\n`);
  }
  try {
    fs.appendFileSync(TALLY_FILE, `${JSON.stringify({ seed: SEED, at: new Date().toISOString(), rows })}\n`);
  } catch {}
});

// ---------------------------------------------------------------------------------------------
// Skips

/** True when the CI rule applies: under `CI=true` a skip of an installed tool is a failure. */
export const IN_CI = process.env.CI === 'true';

/** Is `cmd` on the PATH? */
export function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export const IS_ROOT = process.getuid?.() === 0;

/**
 * Skip test `t` with a printed `SKIPPED: <test> (<reason>)`. `toolsInstalled` says whether the
 * tools the test needs are present: under CI with them present, a skip is a failure (throws).
 */
export function skipTest(t: TestContext, reason: string, toolsInstalled: boolean): void {
  if (IN_CI && toolsInstalled) throw new Error(`would skip under CI=true with the tools installed: ${reason}`);
  process.stdout.write(`SKIPPED: ${t.name} (${reason})\n`);
  t.skip(reason);
}

// ---------------------------------------------------------------------------------------------
// Running the CLI

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Hard timeout; the child is SIGKILLed after it (default 60 s). */
  timeoutMs?: number;
  /** Run the CLI under this command prefix (e.g. `['setpriv', '--reuid=65534', …]`). */
  prefix?: string[];
  cwd?: string;
}

function cliEnv(dataDir: string, env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {
    ...process.env,
    DISTBACKUP_PATH: dataDir,
    NO_COLOR: '1',
    OCLIF_SKIP_NEW_VERSION_CHECK: 'true',
    ...env,
  };
  // The crash-point variables must never leak from one run into another.
  if (env.DISTBACKUP_TEST_KILL === undefined) delete e.DISTBACKUP_TEST_KILL;
  if (env.DISTBACKUP_TEST_KILL_COUNT === undefined) delete e.DISTBACKUP_TEST_KILL_COUNT;
  return e;
}

function argvFor(args: string[], prefix: string[] | undefined): [string, string[]] {
  if (prefix === undefined || prefix.length === 0) return [process.execPath, [CLI, ...args]];
  const [head, ...rest] = prefix;
  return [head ?? 'env', [...rest, process.execPath, CLI, ...args]];
}

/** Run `distbackup ARGS` against `dataDir`, waiting at most `timeoutMs`. */
export function cli(dataDir: string, args: string[], opts: RunOptions = {}): Run {
  const started = Date.now();
  const [cmd, argv] = argvFor(args, opts.prefix);
  const r = spawnSync(cmd, argv, {
    encoding: 'utf8',
    env: cliEnv(dataDir, opts.env),
    timeout: opts.timeoutMs ?? 60_000,
    killSignal: 'SIGKILL',
    maxBuffer: 64 * 1024 * 1024,
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
  });
  return {
    code: r.status,
    signal: r.signal,
    stdout: r.stdout ?? '',
    stderr: r.stderr ?? '',
    ms: Date.now() - started,
  };
}

/** Run with `--json` and parse stdout (undefined when it is not JSON). */
export function cliJson<T = Record<string, unknown>>(
  dataDir: string,
  args: string[],
  opts: RunOptions = {},
): Run & { json: T | undefined } {
  const r = cli(dataDir, [...args, '--json'], opts);
  let json: T | undefined;
  try {
    json = JSON.parse(r.stdout) as T;
  } catch {
    json = undefined;
  }
  return { ...r, json };
}

/** Assert-style helper: throw with the run's output unless it exited `code`. */
export function expectExit(r: Run, code: number, what: string): void {
  if (r.code !== code) {
    throw new Error(
      `${what}: exit ${r.code}${r.signal === null ? '' : ` (${r.signal})`}, expected ${code}\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr.slice(0, 2000)}`,
    );
  }
}

export interface Started {
  child: ChildProcess;
  started: number;
  done: Promise<Run>;
}

/** Start the CLI without waiting; `done` resolves with its exit (SIGKILLed after `timeoutMs`). */
export function startCli(dataDir: string, args: string[], opts: RunOptions = {}): Started {
  const started = Date.now();
  const [cmd, argv] = argvFor(args, opts.prefix);
  const child = spawn(cmd, argv, {
    env: cliEnv(dataDir, opts.env),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  // Attach the exit listener at spawn: a child that ends before the kill must still resolve.
  const done = new Promise<Run>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
  return { child, started, done };
}

/** Sleep `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The `distbackup: …` error lines of a run's stderr. */
export function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('distbackup: '));
}

/** Run a shell command; throws with its output when it fails. */
export function sh(command: string, opts: { cwd?: string; timeoutMs?: number } = {}): string {
  const r = spawnSync('sh', ['-c', command], {
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 30_000,
    killSignal: 'SIGKILL',
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
  });
  if (r.status !== 0) throw new Error(`${command}: exit ${r.status} ${r.signal ?? ''}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Does the built CLI know command `id` (e.g. 'update', 'verify')? */
export function hasCommand(id: string): boolean {
  const manifest = path.join(path.dirname(CLI), '..', 'oclif.manifest.json');
  try {
    const m = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { commands?: Record<string, unknown> };
    return m.commands !== undefined && Object.hasOwn(m.commands, id.replace(/ /g, ':'));
  } catch {
    return false;
  }
}
