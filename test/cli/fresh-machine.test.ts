import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

// On a machine where distbackup never ran, only the commands that put something into a new
// catalogue create one; a listing answers empty, and a command that needs a catalogue says there
// is none. Neither leaves a data folder, an empty catalogue, a lock or a log behind.

test('listings on a fresh machine answer empty and create nothing', (t) => {
  const data = path.join(tempDir(t), 'data');
  const cases: Array<[string[], RegExp]> = [
    [['source', 'list'], /no sources mapped yet/],
    [['disk', 'list'], /no disks registered yet/],
    [['source', 'lock'], /no folder is locked/],
  ];
  for (const [args, out] of cases) {
    const r = runCli(data, args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stdout, out, args.join(' '));
    assert.equal(fs.existsSync(data), false, `${args.join(' ')} created ${data}`);
  }
});

test('commands that need a catalogue refuse a fresh machine with one line naming it, and create nothing', (t) => {
  const data = path.join(tempDir(t), 'data');
  const dest = path.join(path.dirname(data), 'dest');
  const cases: string[][] = [
    ['update'],
    ['sync', 'd1'],
    ['verify'],
    ['plan'],
    ['backup'],
    ['status'],
    ['disk', 'drop', 'd1'],
    ['disk', 'refresh', 'd1'],
    ['source', 'unmap', '/a'],
  ];
  for (const args of cases) {
    const r = runCli(data, args);
    assert.equal(r.code, 1, `${args.join(' ')}: exit ${r.code} ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(lines[0] ?? '', /distbackup\.sqlite: no catalogue yet/, args.join(' '));
    assert.equal(fs.existsSync(data), false, `${args.join(' ')} created ${data}`);
  }
  // restore without a home catalogue is not refused for that: it asks for a disk instead.
  const r = runCli(data, ['restore', '--to', dest]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /no home catalogue: connect a backup disk/);
  assert.equal(fs.existsSync(data), false);
});

test('source map on a fresh machine creates the catalogue', (t) => {
  const root = tempDir(t);
  const data = path.join(root, 'data');
  const real = path.join(root, 'real');
  fs.mkdirSync(real);
  const r = runCli(data, ['source', 'map', '/a', real]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(fs.existsSync(path.join(data, 'distbackup.sqlite')));
  assert.equal(runCli(data, ['update', '--quiet']).code, 0);
});
