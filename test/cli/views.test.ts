import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { runCli, runCliJson } from '../helpers/cli.js';
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
  const piped = runCli(data, ['ncdu', '-o', '-', '--max-copies', '0']);
  assert.equal(piped.code, 0, piped.stderr);
  validateNcduExport(JSON.parse(piped.stdout));
  const ls = runCliJson<Array<{ path: string; disks: string[] }>>(data, ['ls', '/r/a']);
  assert.deepEqual(
    ls.json.map((e) => e.path),
    ['/r/a/one.txt', '/r/a/same.txt'],
  );
  const lsHuman = runCli(data, ['ls', '*three']);
  assert.match(lsHuman.stdout, /1 B {2}\(\) {2}\/r\/b\/deep\/three/);
  const bad = runCli(data, ['tree', '--on', 'nodisk']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--on nodisk: no such disk/);
});
