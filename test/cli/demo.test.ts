import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

test('distbackup demo runs the whole cycle and every step gives the expected result', (t) => {
  const home = tempDir(t);
  const r = runCli(home, ['demo']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /\$ distbackup verify disk1/);
  assert.match(r.stdout, /1 bad, 0 missing/);
  assert.match(r.stdout, /connect disk\d next/);
  assert.match(r.stdout, /complete: every file is restored/);
  assert.match(r.stdout, /demo complete: \d+ commands, every step gave the expected result/);
  assert.doesNotMatch(r.stdout, /DIFFERENT/);
  // The children's progress lines would print after their results: the transcript leaves them out.
  assert.doesNotMatch(r.stdout, /^ +(update|sync|verify|restore): \d/m);
});
