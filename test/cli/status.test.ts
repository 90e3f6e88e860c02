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
