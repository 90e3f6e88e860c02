import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { runCli, runCliJson } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

test('source map, list and unmap round-trip through the CLI with --json', (t) => {
  const root = tempDir(t);
  const data = path.join(root, 'data');
  const photos = path.join(root, 'photos');
  fs.mkdirSync(photos);
  const mapped = runCliJson<{ vpath: string; path: string }>(data, [
    'source',
    'map',
    '/photos/',
    photos,
    '--exclude',
    '*.tmp',
  ]);
  assert.equal(mapped.code, 0, mapped.stderr);
  assert.equal(mapped.json.vpath, '/photos');
  const list = runCliJson<Array<Record<string, unknown>>>(data, ['source', 'list']);
  assert.deepEqual(list.json, [
    { vpath: '/photos', path: photos, include: [], exclude: ['*.tmp'], followSymlinks: false, minCopies: 1 },
  ]);
  assert.equal(runCli(data, ['source', 'unmap', '/photos']).code, 0);
  assert.deepEqual(runCliJson(data, ['source', 'list']).json, []);
});

test('source map refuses bad input with one line and exit 1', (t) => {
  const root = tempDir(t);
  const data = path.join(root, 'data');
  const real = path.join(root, 'real');
  fs.mkdirSync(real);
  const cases: Array<[string[], RegExp]> = [
    [['source', 'map', 'relative', real], /not absolute/],
    [
      ['source', 'map', '/x', path.join(root, 'missing')],
      /missing: cannot map it: ENOENT \(no such file or directory\)$/m,
    ],
    // The two arguments swapped: the real folder given as the virtual path.
    [
      ['source', 'map', real, '/photos-not-here'],
      /cannot map it: ENOENT .*the virtual path comes first: source map VPATH /,
    ],
    [['source', 'map', '/x', root], /contains the distbackup data folder/],
  ];
  for (const [args, re] of cases) {
    const r = runCli(data, args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  assert.equal(runCli(data, ['source', 'map', '/x', real]).code, 0);
  const dup = runCli(data, ['source', 'map', '/x', real]);
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /already mapped/);
  // A folder that holds a registered disk, or lies inside one.
  const drawer = path.join(root, 'drawer');
  const usb = path.join(drawer, 'usb');
  fs.mkdirSync(drawer);
  assert.equal(runCli(data, ['disk', 'add', 'd1', usb, '--size', '10M']).code, 0);
  for (const where of [drawer, path.join(usb, 'inside')]) {
    if (where !== drawer) fs.mkdirSync(where);
    const r = runCli(data, ['source', 'map', '/y', where]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /overlaps the folder of disk 'd1'/);
  }
});

test('unknown commands and flags are usage errors (exit 1), not exit 2', (t) => {
  const data = tempDir(t);
  const cmd = runCli(data, ['sourc']);
  assert.equal(cmd.code, 1);
  assert.match(cmd.stderr, /unknown command 'sourc'/);
  const flag = runCli(data, ['source', 'list', '--bogus']);
  assert.equal(flag.code, 1);
  assert.match(flag.stderr, /Nonexistent flag: --bogus/);
});

test('source and config commands that write are refused with exit 2 while another process holds the catalogue; listings are not', (t) => {
  const root = tempDir(t);
  const data = path.join(root, 'data');
  const real = path.join(root, 'real');
  fs.mkdirSync(path.join(real, 'sub'), { recursive: true });
  assert.equal(runCli(data, ['source', 'map', '/r', real]).code, 0);
  const config = path.join(root, 'config.json');
  assert.equal(runCli(data, ['config', 'export', config]).code, 0);
  // What an update, sync or verify holds while it runs (catalog/lock.ts).
  const lockDb = new Database(path.join(data, 'lock'));
  lockDb.pragma('locking_mode = EXCLUSIVE');
  lockDb.exec('BEGIN EXCLUSIVE');
  try {
    for (const args of [
      ['source', 'map', '/s', path.join(real, 'sub')],
      ['source', 'unmap', '/r'],
      ['source', 'set', '/r', '--priority', '3'],
      ['source', 'lock', '/r/sub'],
      ['source', 'unlock', '/r/sub'],
      ['source', 'reset', '/r'],
      ['config', 'import', config],
    ]) {
      const r = runCli(data, args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /in use by another distbackup process/);
    }
    // Reading needs no lock, nor does a dry run.
    assert.equal(runCli(data, ['source', 'list']).code, 0);
    assert.equal(runCli(data, ['source', 'unmap', '/r', '--dry-run']).code, 0);
  } finally {
    lockDb.close();
  }
  assert.equal(runCli(data, ['source', 'set', '/r', '--priority', '3']).code, 0);
});
