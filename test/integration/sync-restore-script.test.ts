import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { DISK_MANIFEST, DISK_RESTORE_SCRIPT } from '../../src/disk/layout.js';
import { addDisk } from '../../src/disks/disks.js';
import { runSync } from '../../src/sync/sync.js';
import { writeTree } from '../helpers/tmp.js';
import { bytes, catalogue, makeWorld } from './sync-helpers.js';

/** Every regular file below `root` as (path bytes in hex) → sha256, plus mode and mtime. */
function snapshot(root: string): Map<string, { hash: string; mode: number; mtimeS: number }> {
  const out = new Map<string, { hash: string; mode: number; mtimeS: number }>();
  const walk = (dir: Buffer, rel: Buffer): void => {
    for (const name of fs.readdirSync(dir, { encoding: 'buffer' })) {
      const p = Buffer.concat([dir, Buffer.from('/'), name]);
      const r = rel.length === 0 ? name : Buffer.concat([rel, Buffer.from('/'), name]);
      const st = fs.lstatSync(p);
      if (st.isDirectory()) walk(p, r);
      else if (st.isFile()) {
        out.set(r.toString('hex'), {
          hash: createHash('sha256').update(fs.readFileSync(p)).digest('hex'),
          mode: st.mode & 0o777,
          mtimeS: Math.floor(st.mtimeMs / 1000),
        });
      }
    }
  };
  walk(Buffer.from(root), Buffer.alloc(0));
  return out;
}

test('distbackup-restore.sh, run with sh, rebuilds the files (hostile names included) and nothing outside DEST', async (t) => {
  const w = makeWorld(t);
  const names: Buffer[] = [
    Buffer.from('plain.txt'),
    Buffer.from('with space.txt'),
    Buffer.from('new\nline.txt'),
    Buffer.from('tab\there.txt'),
    Buffer.from('100%25 literal %41.txt'),
    Buffer.from('$(touch PWNED).txt'),
    Buffer.from('`touch PWNED2`.txt'),
    Buffer.from('-leading-dash'),
    Buffer.from('quote\'and"dq\\back.txt'),
    Buffer.from('café-ünïcode.txt'),
    Buffer.concat([Buffer.from('bad-'), Buffer.from([0xff, 0xfe]), Buffer.from('.bin')]),
    Buffer.concat([Buffer.from('bad-'), Buffer.from([0xfe]), Buffer.from('.bin')]),
    Buffer.from('sub dir/deeper/-x/file'),
    Buffer.from('empty'),
  ];
  let i = 0;
  for (const n of names) {
    const p = Buffer.concat([Buffer.from(`${w.src}/`), n]);
    fs.mkdirSync(
      path.dirname(p.toString('latin1')) === w.src ? w.src : Buffer.from(p.subarray(0, p.lastIndexOf(0x2f))),
      {
        recursive: true,
      },
    );
    fs.writeFileSync(p, n.toString() === 'empty' ? Buffer.alloc(0) : bytes(50 + i, 100 + i * 37));
    fs.chmodSync(p, i % 2 === 0 ? 0o640 : 0o755);
    fs.utimesSync(p, 1_600_000_000 + i * 86_400 * 40, 1_000_000_000 + i * 86_400 * 37 + 17);
    i += 1;
  }
  await catalogue(w);
  const d = path.join(w.root, 'disk');
  addDisk(w.cat, 'd', d, { sizeBytes: 1e8 });
  const r = await runSync(w.cat, { name: 'd' });
  assert.equal(r.skipped.length, 0);
  const script = path.join(d, DISK_RESTORE_SCRIPT);
  assert.equal(spawnSync('sh', ['-n', script]).status, 0, 'sh -n passes');
  // The script embeds no path of the catalogue.
  assert.ok(!fs.readFileSync(script, 'utf8').includes('with space'));

  const work = path.join(w.root, 'work');
  fs.mkdirSync(work);
  const dest = path.join(work, 'dest');
  const res = spawnSync('sh', [script, dest], { cwd: work, encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  assert.match(res.stderr, /14 restored, 0 already present, 0 failed/);
  assert.ok(!fs.existsSync(path.join(work, 'PWNED')) && !fs.existsSync(path.join(work, 'PWNED2')));
  const want = snapshot(w.src);
  const got = snapshot(path.join(dest, 'data'));
  assert.equal(got.size, names.length);
  for (const [k, v] of want) assert.deepEqual(got.get(k), v, `restored ${Buffer.from(k, 'hex').toString()}`);

  // A second run overwrites nothing.
  const again = spawnSync('sh', [script, dest], { cwd: work, encoding: 'utf8' });
  assert.equal(again.status, 0);
  assert.match(again.stderr, /0 restored, 14 already present/);
});

test('distbackup-restore.sh refuses absolute, relative and .. paths of a tampered manifest', async (t) => {
  const w = makeWorld(t);
  fs.writeFileSync(path.join(w.src, 'a.txt'), 'hello');
  await catalogue(w);
  const d = path.join(w.root, 'disk');
  addDisk(w.cat, 'd', d, { sizeBytes: 1e8 });
  await runSync(w.cat, { name: 'd' });
  const manifest = path.join(d, DISK_MANIFEST);
  const line = fs.readFileSync(manifest, 'utf8').split('\n')[1] ?? '';
  const [hash, size, mtime, mode] = line.split('\t');
  const evil = [
    '/../escape.txt',
    '/data/../../escape2.txt',
    'relative.txt',
    '/data/%2E%2E/%2E%2E/escape3.txt',
    '//abs.txt',
    '/x/%00nul',
  ];
  fs.chmodSync(manifest, 0o644);
  fs.appendFileSync(manifest, evil.map((p) => `${hash}\t${size}\t${mtime}\t${mode}\t${p}\n`).join(''));
  const work = path.join(w.root, 'work');
  fs.mkdirSync(work);
  const res = spawnSync('sh', [path.join(d, DISK_RESTORE_SCRIPT), path.join(work, 'dest')], {
    cwd: work,
    encoding: 'utf8',
  });
  assert.equal(res.status, 1);
  assert.match(res.stderr, /1 restored, 0 already present, 6 failed/);
  assert.deepEqual(fs.readdirSync(work), ['dest']);
  assert.deepEqual(fs.readdirSync(path.join(work, 'dest')), ['data']);
});

test('distbackup-restore.sh never leaves a bad file under its name, never counts a different file as present, and never goes through a link', async (t) => {
  const w = makeWorld(t);
  writeTree(w.src, { 'a.txt': 'alpha', 'b.txt': 'bravo!', 'c.txt': 'charlie', 'sub/d.txt': 'delta' });
  await catalogue(w);
  const d = path.join(w.root, 'disk');
  addDisk(w.cat, 'd', d, { sizeBytes: 1e8 });
  await runSync(w.cat, { name: 'd' });
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  const obj = (s: string) => path.join(d, 'distbackup-objects', sha(s).slice(0, 3), sha(s));
  // a: its object rotten; c: its object a link to a file outside the disk.
  fs.chmodSync(obj('alpha'), 0o644);
  fs.writeFileSync(obj('alpha'), 'alphX');
  const secret = path.join(w.root, 'secret');
  fs.writeFileSync(secret, 'not yours');
  fs.rmSync(obj('charlie'));
  fs.symlinkSync(secret, obj('charlie'));
  const work = path.join(w.root, 'work');
  const dest = path.join(work, 'dest');
  fs.mkdirSync(path.join(dest, 'data'), { recursive: true });
  // b: a different file already there; sub: a link out of DEST.
  fs.writeFileSync(path.join(dest, 'data/b.txt'), 'mine!!');
  const outside = path.join(work, 'outside');
  fs.mkdirSync(outside);
  fs.symlinkSync(outside, path.join(dest, 'data/sub'));
  const run = () => spawnSync('sh', [path.join(d, DISK_RESTORE_SCRIPT), dest], { cwd: work, encoding: 'utf8' });
  for (const round of [1, 2]) {
    const res = run();
    assert.equal(res.status, 1, `round ${round}: ${res.stderr}`);
    assert.match(res.stderr, /0 restored, 0 already present, 4 failed/, `round ${round}`);
    assert.ok(!fs.existsSync(path.join(dest, 'data/a.txt')), 'a bad copy never gets the name');
    assert.equal(fs.readFileSync(path.join(dest, 'data/b.txt'), 'utf8'), 'mine!!', 'never replaced');
    assert.ok(!fs.existsSync(path.join(dest, 'data/c.txt')), 'an object that is a link is not one');
    assert.deepEqual(fs.readdirSync(outside), [], 'nothing written through the link');
    assert.deepEqual(fs.readdirSync(path.join(dest, 'data')).sort(), ['b.txt', 'sub'], 'no temp file left behind');
  }
});

test('distbackup-restore.sh, run by a user who cannot read a file already there, keeps it unchecked only when it is that user’s own file listed with a mode its owner cannot read', async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('needs root: the script runs as another user (setpriv)');
    return;
  }
  const w = makeWorld(t);
  writeTree(w.src, { 'e.txt': 'echo', 'f.txt': 'foxtrot', 'g.txt': 'golf' });
  fs.chmodSync(path.join(w.src, 'e.txt'), 0o044);
  fs.chmodSync(path.join(w.src, 'f.txt'), 0o200);
  await catalogue(w);
  const d = path.join(w.root, 'disk');
  addDisk(w.cat, 'd', d, { sizeBytes: 1e8 });
  await runSync(w.cat, { name: 'd' });
  // Run as nobody: the disk readable by all, DEST nobody's.
  for (let p = d; p !== path.dirname(p) && p !== os.tmpdir(); p = path.dirname(p)) {
    fs.chmodSync(p, fs.statSync(p).mode | 0o005);
  }
  spawnSync('chmod', ['-R', 'o+rX', d]);
  const dest = path.join(w.root, 'dest');
  fs.mkdirSync(dest);
  fs.chownSync(dest, 65534, 65534);
  const run = () =>
    spawnSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', 'sh', path.join(d, DISK_RESTORE_SCRIPT), dest],
      { cwd: dest, encoding: 'utf8' },
    );
  const first = run();
  assert.equal(first.status, 0, first.stderr);
  assert.equal(fs.statSync(path.join(dest, 'data/e.txt')).mode & 0o777, 0o044);
  // Again: e (mode 044, its owner cannot read it) and f (200) are this user's and unreadable to it.
  const again = run();
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /2 already there and not readable, not checked/);
  // f.txt replaced by another user's file that this user cannot read: not its own, so a failure.
  fs.rmSync(path.join(dest, 'data/f.txt'));
  fs.writeFileSync(path.join(dest, 'data/f.txt'), 'not foxtrot', { mode: 0o600 });
  const foreign = run();
  assert.equal(foreign.status, 1, foreign.stderr);
  assert.match(foreign.stderr, /f\.txt exists and cannot be read to check it\n/);
  assert.match(foreign.stderr, /1 already there and not readable, not checked/);
});
