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
files.sort();
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
