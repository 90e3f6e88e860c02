import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { test } from 'node:test';
import { runCli, runCliJson } from '../helpers/cli.js';
import { tempDir, writeTree } from '../helpers/tmp.js';

test('debug hash and debug info explain a path', (t) => {
  const root = tempDir(t);
  const data = path.join(root, 'data');
  const real = path.join(root, 'real');
  writeTree(real, { 'a/keep.txt': 'keep me', 'a/junk.tmp': 'junk' });
  const hash = createHash('sha256').update('keep me').digest('hex');
  const before = runCliJson<{ hash: string; known: boolean }>(data, ['debug', 'hash', path.join(real, 'a/keep.txt')]);
  assert.equal(before.code, 0, before.stderr);
  assert.deepEqual([before.json.hash, before.json.known], [hash, false]);
  assert.equal(runCli(data, ['source', 'map', '/r', real]).code, 0);
  assert.equal(runCli(data, ['source', 'set', '/r', '--ignore', '*.tmp', '--priority', '2']).code, 0);
  assert.equal(runCli(data, ['update']).code, 0);
  const known = runCliJson<{ known: boolean; paths: string[] }>(data, ['debug', 'hash', path.join(real, 'a/keep.txt')]);
  assert.deepEqual([known.json.known, known.json.paths], [true, ['/r/a/keep.txt']]);
  // Sizes are human first, exact after, as everywhere else.
  const knownText = runCli(data, ['debug', 'hash', path.join(real, 'a/keep.txt')]);
  assert.match(knownText.stdout, /^ {2}known content, 7 B \(7 bytes\), on no disk yet$/m);
  const info = runCliJson<{
    catalogued: { kind: string; hash: string; stored: { priority: number } } | null;
    source: { realPath: string };
  }>(data, ['debug', 'info', '/r/a/keep.txt']);
  assert.equal(info.code, 0, info.stderr);
  assert.equal(info.json.catalogued?.hash, hash);
  assert.equal(info.json.source.realPath, path.join(real, 'a/keep.txt'));
  const junk = runCli(data, ['debug', 'info', '/r/a/junk.tmp']);
  assert.match(junk.stdout, /left out \(ignore-rule '\*\.tmp' at \/r\)/);
  const folder = runCli(data, ['debug', 'info', '/r/a']);
  assert.match(folder.stdout, /below: +1 file, 7 B \(7 bytes\)$/m);
  assert.match(folder.stdout, /\*\.tmp +\(from \/r\)/);
  const missing = runCli(data, ['debug', 'hash', path.join(root, 'nope')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nope: cannot hash it: ENOENT/);
});
