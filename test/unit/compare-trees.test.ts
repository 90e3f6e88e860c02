/**
 * compareTrees (the demo's proof of a restore, and the tests'): mtimes are compared in whole
 * microseconds, what restore keeps. A restored time is its original's microsecond, up to 999 ns
 * below it; the difference of two mtimeMs doubles once made that look like more than a
 * microsecond (the demo failed on 747.558 against 747.557 ms). Times set to the nanosecond with
 * coreutils `touch`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { compareTrees } from '../../src/demo/compare.js';
import { tempDir } from '../helpers/tmp.js';

function touchAt(file: string, seconds: string): void {
  const r = spawnSync('touch', ['-m', '-d', `@${seconds}`, file]);
  assert.equal(r.status, 0, `touch: ${r.stderr}`);
}

test('mtimes are equal within their microsecond, and differ a microsecond apart', (t) => {
  const root = tempDir(t);
  const a = path.join(root, 'a');
  const b = path.join(root, 'b');
  for (const d of [a, b]) {
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'same-us'), 'x');
    fs.writeFileSync(path.join(d, 'next-us'), 'y');
  }
  // The original at the end of its microsecond, the copy at its start (as restore sets it).
  touchAt(path.join(a, 'same-us'), '1795967200.747557999');
  touchAt(path.join(b, 'same-us'), '1795967200.747557000');
  touchAt(path.join(a, 'next-us'), '1795967200.747558000');
  touchAt(path.join(b, 'next-us'), '1795967200.747557999');
  const c = compareTrees(a, b, { dirTimes: false });
  assert.equal(c.files, 2);
  assert.deepEqual(c.diffs, ['/next-us: mtime 1795967200747558 µs vs 1795967200747557 µs']);
});
