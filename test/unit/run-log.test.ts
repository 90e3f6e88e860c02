/** The run log module: file name patterns, command-line quoting, lines, and an unwritable log. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { expandLogPattern, localTimestamp, RunLog, shellWord } from '../../src/cli/log.js';
import { tempDir } from '../helpers/tmp.js';

const when = new Date(2026, 0, 5, 7, 8, 9, 10); // local time: 5 January 2026, 07:08:09.010

test('a pattern expands %Y %m %d %H and %%, leaves other fields, and is taken from the data folder', () => {
  assert.equal(expandLogPattern('logs/d-%Y-%m-%d.log', '/data', when), '/data/logs/d-2026-01-05.log');
  assert.equal(expandLogPattern('/var/log/x-%H-%%-%q.log', '/data', when), '/var/log/x-07-%-%q.log');
});

test('timestamps are local with their offset; words are quoted as a shell reads them', () => {
  assert.match(localTimestamp(when), /^2026-01-05T07:08:09\.010[+-]\d\d:\d\d$/);
  assert.equal(shellWord('/photos/a.jpg'), '/photos/a.jpg');
  assert.equal(shellWord('two words'), `'two words'`);
  assert.equal(shellWord(`it's`), `'it'\\''s'`);
  assert.equal(shellWord(''), `''`);
});

test('a run writes start, lines and end; an unwritable log warns once and stops', (t) => {
  const dir = tempDir(t);
  const log = new RunLog({
    pattern: 'logs/%Y.log',
    dataDir: dir,
    version: '9.9.9',
    argv: ['source', 'map', '/a b', '/x'],
    onWriteError: () => assert.fail('no error expected'),
    now: () => when,
  });
  log.start();
  log.line('distbackup: warning: one\nwarning: two\r\x1b[2Kthree');
  log.end(2, 'summary');
  log.line('after the end: dropped');
  const lines = fs
    .readFileSync(path.join(dir, 'logs', '2026.log'), 'utf8')
    .trimEnd()
    .split('\n');
  assert.equal(lines.length, 4);
  assert.match(lines[0] ?? '', / start pid=\d+ version=9\.9\.9 argv: distbackup source map '\/a b' \/x$/);
  assert.match(lines[1] ?? '', / {3}distbackup: warning: one$/);
  assert.match(lines[2] ?? '', / {3}warning: two \[2Kthree$/);
  assert.match(lines[3] ?? '', / end pid=\d+ exit=2 in 0\.0 s: summary$/);

  const blocker = path.join(dir, 'file');
  fs.writeFileSync(blocker, '');
  const errors: string[] = [];
  const bad = new RunLog({
    pattern: path.join(blocker, 'x.log'),
    dataDir: dir,
    version: '1',
    argv: [],
    onWriteError: (l) => errors.push(l),
  });
  bad.start();
  bad.line('a');
  bad.end(0);
  assert.equal(errors.length, 1);
  assert.match(errors[0] ?? '', /^cannot write the log .*file\/x\.log: E(NOTDIR|EXIST)/);
});
