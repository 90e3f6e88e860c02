import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { logLine, parseLogLine, RestoreState, STATE_LOG_RE } from '../../src/catalog/restore-state.js';
import { tempDir } from '../helpers/tmp.js';

const H = 'ab'.repeat(32);

test('a log line round-trips any path bytes; a torn or altered line is rejected', () => {
  const vpath = Buffer.concat([Buffer.from('/a/b\n'), Buffer.from([0xff, 0x00]), Buffer.from(' c')]);
  const line = logLine(vpath, H, 0);
  assert.ok(line.endsWith('\n'));
  const r = parseLogLine(line.slice(0, -1));
  assert.deepEqual(r, { vpath, hash: H, kind: 0 });
  assert.deepEqual(parseLogLine(logLine(Buffer.from('/l'), '', 2).slice(0, -1)), {
    vpath: Buffer.from('/l'),
    hash: '',
    kind: 2,
  });
  // Every prefix of a line (a write torn by a power cut) is refused: none names a shorter path.
  for (let i = 0; i < line.length - 1; i++) assert.equal(parseLogLine(line.slice(0, i)), undefined, `prefix ${i}`);
  const flipped = line.slice(0, 70).replace(/[0-9a-f]$/, (c) => (c === '0' ? '1' : '0')) + line.slice(70, -1);
  assert.equal(parseLogLine(flipped), undefined);
});

test('the state survives in the log only: reopened, it knows what was committed, not what was pending', (t) => {
  const dir = tempDir(t);
  const s = RestoreState.open(dir);
  s.markRestored(Buffer.from('/done'), H, 0);
  s.commit();
  s.markRestored(Buffer.from('/pending'), H, 0);
  assert.equal(s.restoredEntry(Buffer.from('/pending'))?.hash, H, 'pending records are seen by this run');
  // A crash: the process ends without commit() or close(); the segment ends with a torn line.
  const seg = path.join(dir, 'restored-000001.log');
  const copy = fs.readFileSync(seg);
  s.close();
  fs.writeFileSync(seg, Buffer.concat([copy, Buffer.from('0 abc')]));
  const again = RestoreState.open(dir);
  assert.equal(again.restoredEntry(Buffer.from('/done'))?.hash, H);
  assert.equal(again.restoredEntry(Buffer.from('/pending'))?.hash, undefined);
  again.markRestored(Buffer.from('/next'), H, 0);
  again.close();
  const third = RestoreState.open(dir, { readonly: true });
  assert.equal(third.restoredEntry(Buffer.from('/next'))?.hash, H);
  assert.equal(third.restoredEntry(Buffer.from('/done'))?.hash, H);
  third.close();
  // One segment per run that wrote something (a file is never extended by a later run: fusefat
  // refuses that), and nothing else in DEST.
  assert.deepEqual(fs.readdirSync(dir).sort(), ['restored-000001.log', 'restored-000002.log']);
});

test('many runs: the segments are compacted into one, with every record kept', (t) => {
  const dir = tempDir(t);
  for (let i = 0; i < 40; i++) {
    const s = RestoreState.open(dir);
    s.markRestored(Buffer.from(`/f${i}`), H, 0);
    s.close();
  }
  const segs = fs.readdirSync(dir).filter((n) => STATE_LOG_RE.test(n));
  assert.ok(segs.length <= 33, `${segs.length} segments`);
  const s = RestoreState.open(dir, { readonly: true });
  for (let i = 0; i < 40; i++) assert.equal(s.restoredEntry(Buffer.from(`/f${i}`))?.hash, H, `/f${i}`);
  s.close();
});

test('the working folder of a restore that was killed is removed by the next one; a live one is kept', (t) => {
  const tmp = tempDir(t);
  const stateDir = tempDir(t);
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = tmp;
  t.after(() => {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  });
  // A pid that cannot exist (above pid_max), and this process's own.
  fs.mkdirSync(path.join(tmp, 'distbackup-restore-99999999-abcdef'));
  fs.mkdirSync(path.join(tmp, `distbackup-restore-${process.pid}-ghijkl`));
  fs.mkdirSync(path.join(tmp, 'unrelated-99999999-abcdef'));
  const s = RestoreState.open(stateDir, { readonly: true });
  const during = fs.readdirSync(tmp).sort();
  s.close();
  assert.ok(!during.includes('distbackup-restore-99999999-abcdef'), 'the dead one is gone');
  assert.ok(during.includes(`distbackup-restore-${process.pid}-ghijkl`), 'a live one stays');
  assert.ok(during.includes('unrelated-99999999-abcdef'), 'other names are never touched');
  assert.deepEqual(fs.readdirSync(tmp).sort(), [
    `distbackup-restore-${process.pid}-ghijkl`,
    'unrelated-99999999-abcdef',
  ]);
});
