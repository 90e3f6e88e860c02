import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { runCli, runCliJson } from '../helpers/cli.js';
import { tempDir, writeTree } from '../helpers/tmp.js';

test('ls lines its columns up when the holder lists differ; --json keeps its shape', (t) => {
  const root = tempDir(t);
  const data = path.join(root, 'data');
  const real = path.join(root, 'real');
  writeTree(real, { 'a/one.txt': 'one', 'a/big.bin': 'x'.repeat(12345) });
  const ok = (args: string[]): void => {
    const r = runCli(data, args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  };
  ok(['source', 'map', '/r', real]);
  ok(['update', '-q']);
  for (const name of ['backup1', 'backup3']) ok(['disk', 'add', name, path.join(root, name), '--size', '10M']);
  ok(['sync', 'backup1', '-q']);
  // A file that only backup3 gets, and one that no disk holds yet.
  fs.writeFileSync(path.join(real, 'a', 'later.txt'), 'later');
  ok(['update', '-q']);
  ok(['sync', 'backup3', '-q']);
  fs.writeFileSync(path.join(real, 'new-file-with-a-long-name.txt'), 'new');
  ok(['update', '-q']);

  const ls = runCli(data, ['ls']);
  assert.equal(ls.code, 0, ls.stderr);
  const lines = ls.stdout.trimEnd().split('\n');
  assert.deepEqual(
    lines.map((l) => l.replace(/ +/g, ' ')),
    [
      'size copies disks path',
      '12.3 kB 2 backup1, backup3 /r/a/big.bin',
      '5 B 1 backup3 /r/a/later.txt',
      '3 B 2 backup1, backup3 /r/a/one.txt',
      '3 B 0 - /r/new-file-with-a-long-name.txt',
      '4 files, 12.4 kB',
    ],
  );
  // Every column starts at the same offset on every row.
  const table = lines.slice(0, -1);
  for (const col of ['copies', 'disks', 'path']) {
    const at = table[0]?.indexOf(col) ?? -1;
    assert.ok(at > 0);
    for (const l of table.slice(1)) {
      assert.notEqual(l[at - 1], undefined, l);
      assert.equal(l[at - 1], ' ', `${col} in ${JSON.stringify(l)}`);
      assert.notEqual(l[at], ' ', `${col} in ${JSON.stringify(l)}`);
    }
  }

  const held = runCli(data, ['ls', '/r/a', '--disk', 'backup1']);
  assert.equal(held.code, 0, held.stderr);
  assert.deepEqual(
    held.stdout
      .trimEnd()
      .split('\n')
      .map((l) => l.replace(/ +/g, ' ')),
    [
      'size copies disks path',
      '12.3 kB 2 backup1, backup3 /r/a/big.bin',
      '3 B 2 backup1, backup3 /r/a/one.txt',
      '2 files, 12.3 kB',
    ],
  );

  const json = runCliJson<Array<{ path: string; size: number; hash: string | null; disks: string[] }>>(data, ['ls']);
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual(
    json.json.map((e) => [e.path, e.size, e.disks]),
    [
      ['/r/a/big.bin', 12345, ['backup1', 'backup3']],
      ['/r/a/later.txt', 5, ['backup3']],
      ['/r/a/one.txt', 3, ['backup1', 'backup3']],
      ['/r/new-file-with-a-long-name.txt', 3, []],
    ],
  );
  for (const e of json.json) assert.match(e.hash ?? '', /^[0-9a-f]{64}$/);

  const none = runCli(data, ['ls', '/nothing-here']);
  assert.equal(none.code, 0, none.stderr);
  assert.equal(none.stdout, '0 files, 0 B\n');
});
