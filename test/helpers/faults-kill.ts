/**
 * Shared steps of the SIGKILL tests: kill a CLI run after a delay or at a named crash point,
 * count crash-point hits of a fault-free run, and pick seeded kill times.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { cli, hasCommand, noteFault, type Rng, type Run, SOAK, sleep, startCli } from './faults.js';
import type { Fixture } from './faults-fixture.js';

export const SYNC_POINTS = [
  'after-tmp-write',
  'after-fsync',
  'after-rename',
  'after-dirsync',
  'after-batch-commit',
  'mid-catalogue-copy',
  'after-orphan-delete',
  'mid-eviction',
];

/** How a killed run ended: killed by us, or it finished before the kill (counted apart). */
export interface KillOutcome {
  killed: boolean;
  run: Run;
}

/** Start `args`, SIGKILL it after `delayMs`; report whether the kill landed. */
export async function killAfter(fx: Fixture, args: string[], delayMs: number): Promise<KillOutcome> {
  const s = startCli(fx.dataDir, args, { timeoutMs: 60_000 });
  await Promise.race([sleep(delayMs), s.done]);
  s.child.kill('SIGKILL');
  const run = await s.done;
  return { killed: run.signal === 'SIGKILL', run };
}

/** Run `args` with a named crash point; killed = the point was reached. */
export function killAtPoint(fx: Fixture, args: string[], point: string, k: number): KillOutcome {
  const run = cli(fx.dataDir, args, { env: { DISTBACKUP_TEST_KILL: `${point}:${k}` }, timeoutMs: 60_000 });
  return { killed: run.signal === 'SIGKILL', run };
}

/** Hits per crash point during a fault-free run of `args`, and its duration. */
export function countPoints(fx: Fixture, args: string[]): { hits: Map<string, number>; run: Run } {
  const file = path.join(fx.root, `points-${Date.now()}`);
  const run = cli(fx.dataDir, args, { env: { DISTBACKUP_TEST_KILL_COUNT: file }, timeoutMs: 60_000 });
  const hits = new Map<string, number>();
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  for (const l of text.split('\n')) if (l !== '') hits.set(l, (hits.get(l) ?? 0) + 1);
  return { hits, run };
}

/** The k's to try at a point hit `n` times: the first (and the last where it differs; more in soak runs). */
export function hitsToTry(n: number, point: string): number[] {
  // The last rename is in the final batch, the last catalogue copy is the end-of-sync one.
  const last = point === 'after-rename' || point === 'mid-catalogue-copy';
  const ks = SOAK > 1 ? [1, 2, Math.ceil(n / 2), n] : last ? [1, n] : [1];
  return [...new Set(ks.filter((k) => k >= 1 && k <= n))];
}

/** Random kill delays over [0, T]: uniform, sorted, seeded. */
export function randomDelays(rng: Rng, n: number, totalMs: number): number[] {
  return Array.from({ length: n }, () => Math.round(rng.next() * totalMs)).sort((a, b) => a - b);
}

export function skipUnlessCommands(t: TestContext, ids: string[]): boolean {
  const missing = ids.filter((id) => !hasCommand(id));
  if (missing.length === 0) return false;
  t.todo(`command not built yet: ${missing.join(', ')}`);
  return true;
}

/**
 * True once test `t` was cancelled (it hit its timeout). The runner then runs the test's
 * cleanups (the fixture's tmpfs is unmounted, its folders removed) while the body goes on, so a
 * kill loop must stop here: a re-run against the emptied world reports violations that are the
 * harness's, not the product's (measured: a timed-out kill-sync printed exactly the 6 of an
 * earlier unexplained run: no disk registered, no catalogue copies, every object missing).
 * spawnSync blocks the event loop, so the timeout is only noticed at the next await.
 */
export function stopped(t: TestContext, fault: string): boolean {
  if (!t.signal.aborted) return false;
  noteFault(fault, 'the test hit its timeout; the remaining kills were not run and nothing after it was counted');
  return true;
}
