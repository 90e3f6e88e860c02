/**
 * `npm run bench -- <suite> [args…]`: the developer's entry to every benchmark.
 *
 *   update | sync | planner | recovery   the per-area benchmarks (bench/<name>.ts, `main(argv)`)
 *   ssd | hdd                            `distbackup bench --suite ssd|hdd [args…]` (built CLI)
 *   all                                  each of the above in turn, on temp folders
 *
 * Arguments after the suite name go to it unchanged (`npm run bench -- ssd --size 2G`).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const AREAS = ['update', 'sync', 'planner', 'recovery'] as const;
const OURS = ['ssd', 'hdd'] as const;
type Name = (typeof AREAS)[number] | (typeof OURS)[number];

interface AreaModule {
  main(argv: string[]): Promise<void>;
}

/** Run one area benchmark; false when it is not written yet or failed. */
async function runArea(name: (typeof AREAS)[number], argv: string[]): Promise<boolean> {
  const file = path.join(import.meta.dirname, `${name}.ts`);
  if (!fs.existsSync(file)) {
    console.error(`bench ${name}: bench/${name}.ts does not exist yet`);
    return false;
  }
  // A computed specifier: the area files are written separately, and a missing one must not
  // stop the others from running.
  const spec = `./${name}.ts`;
  const mod = (await import(spec)) as Partial<AreaModule>;
  if (typeof mod.main !== 'function') {
    console.error(`bench ${name}: bench/${name}.ts exports no main(argv)`);
    return false;
  }
  await mod.main(argv);
  return true;
}

/** Run `distbackup bench --suite <suite> …` with the built CLI. */
function runOurs(suite: (typeof OURS)[number], argv: string[]): boolean {
  const cli = path.join(ROOT, 'bin', 'run.js');
  if (!fs.existsSync(path.join(ROOT, 'dist', 'commands', 'bench.js'))) {
    console.error('bench: dist/ is not built: run `npm run build` first');
    return false;
  }
  const r = spawnSync(process.execPath, [cli, 'bench', '--suite', suite, ...argv], { stdio: 'inherit' });
  return r.status === 0;
}

async function main(): Promise<void> {
  const [what = 'all', ...rest] = process.argv.slice(2);
  const names: readonly Name[] =
    what === 'all'
      ? [...AREAS, ...OURS]
      : ([...AREAS, ...OURS] as readonly string[]).includes(what)
        ? [what as Name]
        : [];
  if (names.length === 0) {
    console.error(`usage: npm run bench -- ${[...AREAS, ...OURS, 'all'].join('|')} [args…]`);
    process.exitCode = 1;
    return;
  }
  const failed: string[] = [];
  for (const name of names) {
    if (names.length > 1) console.log(`\n=== npm run bench -- ${name}\n`);
    let ok: boolean;
    try {
      ok = (OURS as readonly string[]).includes(name)
        ? runOurs(name as (typeof OURS)[number], what === 'all' ? [] : rest)
        : await runArea(name as (typeof AREAS)[number], what === 'all' ? [] : rest);
    } catch (err) {
      console.error(`bench ${name}: ${(err as Error).stack ?? String(err)}`);
      ok = false;
    }
    if (!ok) failed.push(name);
  }
  if (failed.length > 0) {
    console.error(`\nbench: not run or failed: ${failed.join(', ')}`);
    process.exitCode = 1;
  }
}

await main();
