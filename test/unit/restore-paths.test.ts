import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MissingTally, planDisks } from '../../src/restore/guide.js';
import { insideDest, joinTarget, splitVpath } from '../../src/restore/paths.js';
import { vpathFilter } from '../../src/restore/restore.js';

const B = (s: string): Buffer => Buffer.from(s);

test('splitVpath accepts clean absolute paths, bytes kept as they are', () => {
  const r = splitVpath(Buffer.concat([B('/a/b'), Buffer.from([0xff]), B('/c d')]));
  assert.ok(r.ok);
  assert.deepEqual(
    r.parts.map((p) => p.toString('latin1')),
    ['a', `b${String.fromCharCode(0xff)}`, 'c d'],
  );
});

test('splitVpath refuses every escape: relative, .., ., empty, NUL, too long, the state folder', () => {
  const bad: [Buffer, RegExp][] = [
    [B(''), /empty/],
    [B('a/b'), /absolute/],
    [B('/'), /empty|root/],
    [B('/a/../b'), /'\.\.'/],
    [B('/..'), /'\.\.'/],
    [B('/a/./b'), /'\.'/],
    [B('//etc/passwd'), /empty/],
    [B('/a/'), /empty/],
    [Buffer.concat([B('/a'), Buffer.from([0]), B('b')]), /NUL/],
    [B(`/${'x'.repeat(256)}`), /255/],
    [B(`/${'x/'.repeat(33_000)}y`), /65536/],
    [B('/.distbackup-restore/state.sqlite'), /reserved/],
    // The same folder on a DEST that ignores case, trailing dots and spaces, or folds by upcasing.
    [B('/.DISTBACKUP-RESTORE/restored-999999.log'), /reserved/],
    [B('/.Distbackup-Restore. ./state.sqlite'), /reserved/],
    [B('/.d\u0131stbackup-restore/x'), /reserved/],
    [B('/.di\u017ftbackup-re\u017ftore/x'), /reserved/],
  ];
  for (const ok of ['/.distbackup-restorex/y', '/a/.distbackup-restore/b', '/distbackup-restore/c']) {
    assert.equal(splitVpath(B(ok)).ok, true, ok);
  }
  for (const [p, why] of bad) {
    const r = splitVpath(p);
    assert.equal(r.ok, false, p.toString());
    if (!r.ok) assert.match(r.reason, why, p.toString());
  }
});

test('insideDest needs DEST itself or a DEST/ prefix, never a plain prefix', () => {
  const dest = B('/restore/here');
  assert.ok(insideDest(dest, B('/restore/here')));
  assert.ok(insideDest(dest, B('/restore/here/a')));
  assert.ok(!insideDest(dest, B('/restore/here-evil/a')));
  assert.ok(!insideDest(dest, B('/restore/her')));
  assert.ok(!insideDest(dest, B('/restore')));
  assert.ok(insideDest(B('/'), B('/x')));
  assert.deepEqual(joinTarget(dest, [B('a'), B('b')]).toString(), '/restore/here/a/b');
});

test('planDisks takes the disk that adds the most first and covers everything with few disks', () => {
  const t = new MissingTally();
  // Disk 1 holds a lot alone; disks 2 and 3 split the rest; disk 4 duplicates part of disk 2.
  for (let i = 0; i < 10; i++) t.add([1], 100);
  for (let i = 0; i < 6; i++) t.add([2, 4], 100);
  for (let i = 0; i < 4; i++) t.add([3], 100);
  t.add([], 50);
  const names = new Map([
    [1, 'a'],
    [2, 'b'],
    [3, 'c'],
    [4, 'd'],
  ]);
  const plan = planDisks(t.list, (id) => names.get(id) ?? '');
  assert.deepEqual(
    plan.map((s) => [s.diskId, s.files]),
    [
      [1, 10],
      [2, 6],
      [3, 4],
    ],
  );
  assert.equal(t.unavailableFiles, 1);
  assert.equal(t.unavailableBytes, 50);
});

test('planDisks breaks ties by bytes, then by name, so plans are reproducible', () => {
  const t = new MissingTally();
  t.add([7], 10);
  t.add([5], 10);
  t.add([6], 20);
  const plan = planDisks(t.list, (id) => `disk${10 - id}`);
  assert.deepEqual(
    plan.map((s) => s.diskId),
    [6, 7, 5],
  );
});

test('splitVpath accepts a path longer than PATH_MAX (restore reaches it through a folder descriptor)', () => {
  const r = splitVpath(B(`/${'d'.repeat(200)}`.repeat(30)));
  assert.ok(r.ok);
  assert.equal(r.parts.length, 30);
});

test('vpathFilter: a name glob matches at any depth, a path glob the whole path, a folder brings its subtree', () => {
  const f = vpathFilter(['*.pdf', '/photos/2024-0[1-3]']);
  assert.ok(f !== undefined);
  const yes = ['/docs/taxes/2023.pdf', '/a.pdf', '/photos/2024-02/img.jpg', '/photos/2024-03', '/x.pdf/inside.txt'];
  const no = ['/docs/taxes/2023.txt', '/photos/2024-04/img.jpg', '/photos/2024-02x/img.jpg', '/pdf', '/photos'];
  for (const p of yes) assert.equal(f(B(p)), true, p);
  for (const p of no) assert.equal(f(B(p)), false, p);
  assert.equal(vpathFilter([]), undefined, 'no pattern: no filter');
  const rel = vpathFilter(['photos/2024-01']);
  assert.equal(
    rel?.(B('/photos/2024-01/a.jpg')),
    true,
    'a path glob without the leading slash is anchored at the root',
  );
  const dots = vpathFilter(['*.cfg']);
  assert.equal(dots?.(B('/home/.hidden.cfg')), true, 'dot files match');
});
