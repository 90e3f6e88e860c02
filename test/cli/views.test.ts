import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { CLI, runCli, runCliJson } from '../helpers/cli.js';
import { tempDir, writeTree } from '../helpers/tmp.js';
import { validateNcduExport } from '../integration/views-ncdu-format.js';

test('tree, ncdu and ls through the CLI after an update', (t) => {
  const root = tempDir(t);
  const data = path.join(root, 'data');
  const real = path.join(root, 'real');
  writeTree(real, { 'a/one.txt': 'one', 'a/same.txt': 'one', 'b/two.bin': 'two two', 'b/deep/three': '3' });
  assert.equal(runCli(data, ['source', 'map', '/r', real]).code, 0);
  const up = runCli(data, ['update']);
  assert.equal(up.code, 0, up.stderr);
  const tree = runCliJson<{ files: number; bytes: number; byCopies: unknown[]; children: unknown[] }>(data, ['tree']);
  assert.equal(tree.code, 0, tree.stderr);
  assert.equal(tree.json.files, 4);
  assert.equal(tree.json.bytes, 3 + 7 + 1, 'the duplicate is charged once');
  assert.deepEqual(tree.json.byCopies, [{ copies: 0, files: 4, bytes: 11 }]);
  const human = runCli(data, ['tree', '/r', '--depth', '1']);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /bytes +files +0 copies +folder/);
  assert.match(human.stdout, / {2}a\n| {2}a$/m);
  const out = path.join(root, 'export.json');
  const nc = runCli(data, ['ncdu', '-o', out]);
  assert.equal(nc.code, 0, nc.stderr);
  validateNcduExport(JSON.parse(fs.readFileSync(out, 'utf8')));
  // A file that cannot be written: one line naming it and the cause, nothing left behind.
  for (const args of [
    ['ncdu', '-o', path.join(root, 'missing', 'export.json')],
    ['config', 'export', path.join(root, 'missing', 'settings.json')],
  ]) {
    const bad = runCli(data, args);
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(
      bad.stderr.trim(),
      new RegExp(
        `^distbackup: ${path.join(root, 'missing')}/\\S+: cannot write the \\S+( export)?: ENOENT \\(no such file or directory\\)$`,
      ),
    );
  }
  const piped = runCli(data, ['ncdu', '-o', '-', '--max-copies', '0']);
  assert.equal(piped.code, 0, piped.stderr);
  validateNcduExport(JSON.parse(piped.stdout));
  const ls = runCliJson<Array<{ path: string; disks: string[] }>>(data, ['ls', '/r/a']);
  assert.deepEqual(
    ls.json.map((e) => e.path),
    ['/r/a/one.txt', '/r/a/same.txt'],
  );
  const lsHuman = runCli(data, ['ls', '*three']);
  assert.match(lsHuman.stdout, /^1 B +0 +- +\/r\/b\/deep\/three$/m);
  const bad = runCli(data, ['tree', '--on', 'nodisk']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--on nodisk: no such disk/);
});

test('ncdu into a reader that stops early (| head) ends quietly with exit 0; tree counts with separators', (t) => {
  const root = tempDir(t);
  const data = path.join(root, 'data');
  const real = path.join(root, 'real');
  // Enough names that the export outgrows the pipe's buffer, so the reader leaves mid-export.
  const files: Record<string, string> = {};
  for (let i = 0; i < 1500; i++) files[`folder-${i % 30}/a-rather-long-file-name-number-${i}.txt`] = '';
  writeTree(real, files);
  assert.equal(runCli(data, ['source', 'map', '/r', real]).code, 0);
  const up = runCli(data, ['update']);
  assert.equal(up.code, 0, up.stderr);
  // Progress (plain lines off a terminal) counts with separators, and says no "0 B, 0 B/s" without bytes.
  assert.match(up.stderr, /^update: 1,5\d\d\/1,5\d\d files$/m);
  const sh = spawnSync(
    'bash',
    ['-c', `"${process.execPath}" "${CLI}" ncdu -o - | head -c 100 >/dev/null; echo "exit \${PIPESTATUS[0]}" >&2`],
    { encoding: 'utf8', env: { ...process.env, DISTBACKUP_PATH: data } },
  );
  assert.match(sh.stderr, /^exit 0$/m, sh.stderr);
  assert.doesNotMatch(sh.stderr, /EPIPE/);
  const tree = runCli(data, ['tree', '--depth', '0']);
  assert.equal(tree.code, 0, tree.stderr);
  assert.match(tree.stdout, /^ +0 B +1,500 +0 B {2}\/$/m);
  const out = path.join(root, 'export.json');
  const nc = runCli(data, ['ncdu', '-o', out]);
  assert.match(nc.stderr, /: 1,500 files in 32 folders$/m);
});

test('whereis of paths not in the catalogue: one line naming them all, exit 1', (t) => {
  const root = tempDir(t);
  const data = path.join(root, 'data');
  const real = path.join(root, 'real');
  writeTree(real, { 'a.txt': 'a' });
  assert.equal(runCli(data, ['source', 'map', '/r', real]).code, 0);
  assert.equal(runCli(data, ['update', '-q']).code, 0);
  const none = runCli(data, ['whereis', '/nope', '/r/b.txt']);
  assert.equal(none.code, 1);
  assert.equal(none.stderr, "distbackup: /nope, /r/b.txt: not in the catalogue (see 'distbackup ls')\n");
  const some = runCli(data, ['whereis', '/r/a.txt', '/nope']);
  assert.equal(some.code, 1);
  assert.match(some.stdout, /^\/r\/a\.txt\t1 B\t/);
  assert.equal(some.stderr, 'distbackup: /nope: not in the catalogue\n');
});
