/** `status --no-saturated` through the CLI: the `saturated` field of `--json` and its line in the text. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import type { StatusDoc } from '../../src/status/status.js';
import { runCli, runCliJson } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

test('status --no-saturated: a saturated field in --json and a line in the text', (t) => {
  const root = tempDir(t);
  const data = path.join(root, 'data');
  fs.mkdirSync(path.join(root, 'real'));
  assert.equal(runCli(data, ['source', 'map', '/r', path.join(root, 'real')]).code, 0);
  const plain = runCliJson<StatusDoc>(data, ['status']);
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(plain.json.saturated, null);
  const apart = runCliJson<StatusDoc>(data, ['status', '--no-saturated']);
  assert.equal(apart.code, 0, apart.stderr);
  assert.deepEqual(apart.json.saturated, { objects: 0, bytes: 0, files: 0 });
  const text = runCli(data, ['status', '--no-saturated']);
  assert.match(text.stdout, /at their cap, not counted above: 0 objects/);
});

test('status says "1 file" and "1 object", never "1 files", in the header, the disk table and the verdict', (t) => {
  const root = tempDir(t);
  const data = path.join(root, 'data');
  const real = path.join(root, 'real');
  const disk = path.join(root, 'disk');
  fs.mkdirSync(real);
  fs.mkdirSync(disk);
  fs.writeFileSync(path.join(real, 'only.txt'), 'the only file');
  assert.equal(runCli(data, ['source', 'map', '/r', real]).code, 0);
  assert.equal(runCli(data, ['update', '-q']).code, 0);
  const before = runCli(data, ['status']);
  assert.equal(before.code, 0, before.stderr);
  assert.match(before.stdout, /^1 file, 1 object, 13 B; minimum copies: 0$/m);
  assert.match(before.stdout, /^1 file \(1 object\) has no copy on any disk/m);
  assert.equal(runCli(data, ['disk', 'add', 'd1', disk, '--size', '1M']).code, 0);
  assert.equal(runCli(data, ['sync', 'd1', '-q']).code, 0);
  const after = runCli(data, ['status']);
  assert.equal(after.code, 0, after.stderr);
  assert.match(after.stdout, /^d1 .* 1 file, 13 B$/m, 'the disk row: what its loss would cost');
  assert.match(after.stdout, /^every file has at least 1 copy; losing d1 would lose 1 file$/m);
  assert.doesNotMatch(after.stdout, /\b1 (files|objects)\b/);
});
