#!/usr/bin/env node
// Runs every test/**/*.test.ts with node's test runner through tsx. Listing the files here
// (instead of a shell glob) means a new folder is never silently skipped, and an empty
// selection fails instead of passing with 0 tests (tsx --test with no files runs nothing).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const only = process.argv.slice(2);
const files = [];
const walk = (dir) => {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory() && e.name !== 'fixtures') walk(p);
    else if (e.isFile() && e.name.endsWith('.test.ts')) files.push(relative(root, p));
  }
};
walk(join(root, 'test'));
// The runner starts files in the order given, N at a time. Alphabetical order left the longest
// files (the fault suite's kill loops, the bench runs) to start late, so one of them ran alone
// at the end while the other slot sat idle. Start the known long files first (longest first,
// from a CI run's duration_ms); every other file follows in alphabetical order.
const LONG_FIRST = [
  'test/faults/kill-sync.test.ts',
  'test/faults/enospc.test.ts',
  'test/faults/kill.test.ts',
  'test/cli/bench.test.ts',
  'test/faults/wrong-disk.test.ts',
  'test/faults/strace-order.test.ts',
  'test/cli/bench-default.test.ts',
  'test/faults/eio.test.ts',
  'test/faults/mtimes.test.ts',
  'test/faults/fiu.test.ts',
  'test/cli/sync-kill.test.ts',
  'test/faults/prlimit.test.ts',
  'test/cli/help-polish.test.ts',
  'test/cli/global-flags.test.ts',
  'test/faults/vanish.test.ts',
  'test/faults/faketime.test.ts',
  'test/faults/sparse.test.ts',
  'test/faults/source-change.test.ts',
  'test/cli/bench-stages.test.ts',
  'test/cli/restore.test.ts',
  'test/faults/locks.test.ts',
  'test/cli/sync.test.ts',
  'test/cli/dry-run.test.ts',
  'test/faults/',
  'test/cli/',
];
const rank = (f) => {
  const i = LONG_FIRST.findIndex((p) => f.startsWith(p));
  return i === -1 ? LONG_FIRST.length : i;
};
files.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
const selected = only.length === 0 ? files : files.filter((f) => only.some((o) => f.includes(o)));
if (selected.length === 0) {
  console.error('run-tests: no test files found');
  process.exit(1);
}
const concurrency = process.env.DISTBACKUP_TEST_CONCURRENCY ?? '2';
const r = spawnSync('npx', ['tsx', '--test', `--test-concurrency=${concurrency}`, ...selected], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
