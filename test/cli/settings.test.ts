import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { runCli, runCliJson } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

test('source set / lock / unlock / reset through the CLI', (t) => {
  const root = tempDir(t);
  const data = path.join(root, 'data');
  const real = path.join(root, 'real');
  fs.mkdirSync(path.join(real, 'a'), { recursive: true });
  assert.equal(runCli(data, ['source', 'map', '/s', real]).code, 0);
  const set = runCli(data, ['source', 'set', '/s/a', '/s', '--priority', '2', '--ignore', '*.tmp']);
  assert.equal(set.code, 0, set.stderr);
  assert.match(set.stdout, /stored here: {2}\{"priority":2,"rules":\["\*\.tmp"\]\}/);
  const shown = runCli(data, ['source', 'set', '/s/a/b']);
  assert.match(shown.stdout, /priority: {5}2/);
  assert.match(shown.stdout, /\*\.tmp {4}\(from \/s\/a\)/);
  assert.equal(runCli(data, ['source', 'lock', '/s/a']).code, 0);
  assert.deepEqual(runCliJson(data, ['source', 'lock']).json, [{ vpath: '/s/a' }]);
  const unlocked = runCliJson<Array<{ locked: boolean }>>(data, ['source', 'unlock', '/s/a']);
  assert.equal(unlocked.json[0]?.locked, false);
  assert.deepEqual(runCliJson(data, ['source', 'lock']).json, []);
  const dry = runCli(data, ['source', 'set', '/s', '--json', '{"hide":true}', '-n']);
  assert.equal(dry.code, 0, dry.stderr);
  assert.doesNotMatch(runCli(data, ['source', 'set', '/s']).stdout, /hide/);
  const reset = runCliJson<Array<{ settings: object }>>(data, ['source', 'reset', '/s', '--recursive']);
  assert.deepEqual(reset.json[0]?.settings, {});
  assert.match(runCli(data, ['source', 'set', '/s/a']).stdout, /stored here: {2}\(none\)/);
});

test('source set refuses bad values with one line and exit 1', (t) => {
  const data = tempDir(t);
  const cases: Array<[string[], RegExp]> = [
    [['source', 'set', '/s', '--priority', 'x'], /--priority 'x'/],
    [['source', 'set', '/s', '--json', '{"colour":1}'], /unknown setting 'colour'/],
    [['source', 'set', '/s', '--json', 'nope'], /--json: not JSON/],
    [['source', 'set', '/s', '--ignore', '/('], /invalid regex/],
    [['source', 'set', '/s', '--lock', '--unlock'], /--lock and --unlock contradict/],
    [['source', 'set', '/s', '--append'], /--append needs/],
  ];
  for (const [args, re] of cases) {
    const r = runCli(data, args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

test('source set and reset count the catalogued files they update in plain words ("1 catalogued file")', (t) => {
  const root = tempDir(t);
  const data = path.join(root, 'data');
  const real = path.join(root, 'real');
  fs.mkdirSync(real);
  fs.writeFileSync(path.join(real, 'one.txt'), 'one');
  assert.equal(runCli(data, ['source', 'map', '/s', real]).code, 0);
  assert.equal(runCli(data, ['update', '-q']).code, 0);
  const set = runCli(data, ['source', 'set', '/s', '--priority', '2']);
  assert.equal(set.code, 0, set.stderr);
  assert.match(set.stdout, /^ {2}updated 1 catalogued file$/m);
  const reset = runCli(data, ['source', 'reset', '/s']);
  assert.equal(reset.code, 0, reset.stderr);
  assert.match(reset.stdout, /^reset \/s \(1 catalogued file updated\)$/m);
});
