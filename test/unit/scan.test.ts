import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { type DirScan, globPolicy, type ScanPolicy, scanTree } from '../../src/pipeline/scan.js';
import { tempDir, writeTree } from '../helpers/tmp.js';

const SETTINGS = { priority: 1, minCopies: 1, maxCopies: 1_000_000 };
const all = globPolicy([], [], SETTINGS);

function scan(
  root: string,
  opts: { policy?: ScanPolicy; follow?: boolean; nested?: string[]; vpath?: string } = {},
): DirScan[] {
  return [
    ...scanTree(
      {
        vpath: opts.vpath ?? '/v',
        realPath: Buffer.from(root),
        followSymlinks: opts.follow ?? false,
        nested: opts.nested ?? [],
      },
      opts.policy ?? all,
    ),
  ];
}

/** Every recorded entry as `vpath kind` (vpath percent-free: latin1 for exactness). */
function listing(scans: DirScan[]): string[] {
  const out: string[] = [];
  for (const d of scans) {
    for (const e of d.entries ?? []) {
      const v = Buffer.concat([d.dir.vpath, Buffer.from('/'), e.name]).toString('latin1');
      out.push(`${v} ${e.kind}${e.linkTarget === null ? '' : ` -> ${e.linkTarget.toString('latin1')}`}`);
    }
  }
  return out;
}

test('folders are visited depth-first in byte order; entries carry bigint stats', (t) => {
  const root = tempDir(t);
  writeTree(root, { 'b/2': 'x', 'b/1': 'x', a: 'x', 'c/d/e': 'x' });
  fs.mkdirSync(path.join(root, 'empty'));
  const scans = scan(root);
  assert.deepEqual(
    scans.map((d) => d.dir.vpath.toString()),
    ['/v', '/v/b', '/v/c', '/v/c/d', '/v/empty'],
  );
  assert.deepEqual(listing(scans), [
    '/v/a file',
    '/v/b dir',
    '/v/c dir',
    '/v/empty dir',
    '/v/b/1 file',
    '/v/b/2 file',
    '/v/c/d dir',
    '/v/c/d/e file',
  ]);
  const first = scans[0]?.entries?.[0];
  assert.equal(typeof first?.stat.ino, 'bigint');
  assert.equal(typeof first?.stat.mtimeNs, 'bigint');
  assert.deepEqual(scans[4]?.entries, [], 'an empty folder is scanned and has no entries');
});

test('names that are not UTF-8 or hold newlines stay byte-exact and distinct', (t) => {
  const root = Buffer.from(tempDir(t));
  const names = [
    Buffer.from([0x66, 0xff]),
    Buffer.from([0x66, 0xfe]),
    Buffer.from('f\ufffd'),
    Buffer.from('new\nline'),
    Buffer.from('tab\there'),
  ];
  for (const n of names) fs.writeFileSync(Buffer.concat([root, Buffer.from('/'), n]), n);
  const [d] = scan(root.toString());
  const got = (d?.entries ?? []).map((e) => e.name.toString('hex'));
  assert.deepEqual(got, names.map((n) => n.toString('hex')).sort());
});

test('symlinks are recorded as links with their target bytes; FIFOs are skipped, never opened', (t) => {
  const root = tempDir(t);
  writeTree(root, { 'dir/file': 'x' });
  fs.symlinkSync('dir/file', path.join(root, 'to-file'));
  fs.symlinkSync('dir', path.join(root, 'to-dir'));
  fs.symlinkSync('/nonexistent', path.join(root, 'dangling'));
  execFileSync('mkfifo', [path.join(root, 'fifo')]);
  const scans = scan(root);
  assert.deepEqual(listing(scans), [
    '/v/dangling symlink -> /nonexistent',
    '/v/dir dir',
    '/v/to-dir symlink -> dir',
    '/v/to-file symlink -> dir/file',
    '/v/dir/file file',
  ]);
  assert.deepEqual(scans[0]?.skipped, [{ path: path.join(root, 'fifo'), error: 'a FIFO; not read' }]);
});

test('follow_symlinks follows links to files and folders and records a loop as a link', (t) => {
  const root = tempDir(t);
  writeTree(root, { 'dir/file': 'x' });
  fs.symlinkSync('dir/file', path.join(root, 'to-file'));
  fs.symlinkSync('..', path.join(root, 'dir', 'up'));
  fs.symlinkSync('self', path.join(root, 'self'));
  fs.symlinkSync('/nonexistent', path.join(root, 'dangling'));
  const scans = scan(root, { follow: true });
  const lines = listing(scans);
  assert.ok(lines.includes('/v/to-file file'), lines.join('\n'));
  assert.ok(lines.includes('/v/dir/up symlink -> ..'), lines.join('\n'));
  assert.ok(lines.includes('/v/self symlink -> self'), lines.join('\n'));
  assert.ok(lines.includes('/v/dangling symlink -> /nonexistent'), lines.join('\n'));
  const toFile = scans[0]?.entries?.find((e) => e.name.toString() === 'to-file');
  assert.equal(toFile?.followed, true);
  assert.equal(toFile?.stat.ino, fs.statSync(path.join(root, 'dir/file'), { bigint: true }).ino);
  const skipped = scans.flatMap((d) => d.skipped.map((s) => s.error));
  assert.ok(
    skipped.some((s) => s.includes('loop')),
    skipped.join('\n'),
  );
});

test('a followed link to a sibling folder is descended (not a loop)', (t) => {
  const root = tempDir(t);
  writeTree(root, { 'a/f': 'x' });
  fs.symlinkSync('a', path.join(root, 'b'));
  const lines = listing(scan(root, { follow: true }));
  assert.ok(lines.includes('/v/b dir'), lines.join('\n'));
  assert.ok(lines.includes('/v/b/f file'), lines.join('\n'));
});

test('a nested mapping owns its subtree: the parent scan skips it', (t) => {
  const root = tempDir(t);
  writeTree(root, { 'stream/a': 'x', 'other/b': 'x' });
  const lines = listing(scan(root, { vpath: '/videos', nested: ['/videos/stream'] }));
  assert.deepEqual(lines, ['/videos/other dir', '/videos/other/b file']);
});

test('exclude globs: a base-name glob at any depth, a path glob from the mapped folder', (t) => {
  const root = tempDir(t);
  writeTree(root, {
    'a.part': 'x',
    'sub/b.part': 'x',
    'sub/keep.jpg': 'x',
    'cache/big': 'x',
    'sub/cache/kept': 'x',
  });
  const lines = listing(scan(root, { policy: globPolicy([], ['*.part', 'cache/**'], SETTINGS) }));
  assert.deepEqual(lines, ['/v/sub dir', '/v/sub/cache dir', '/v/sub/keep.jpg file', '/v/sub/cache/kept file']);
});

test('include globs keep only matching files, folders are still descended', (t) => {
  const root = tempDir(t);
  writeTree(root, { 'a.jpg': 'x', 'a.txt': 'x', 'sub/b.jpg': 'x', 'sub/b.txt': 'x' });
  const lines = listing(scan(root, { policy: globPolicy(['*.jpg'], [], SETTINGS) }));
  assert.deepEqual(lines, ['/v/a.jpg file', '/v/sub dir', '/v/sub/b.jpg file']);
});

test('a policy can keep a folder unread or drop it, and gives settings per entry', (t) => {
  const root = tempDir(t);
  writeTree(root, { 'locked/a': 'x', 'hidden/b': 'x', 'normal/c': 'x' });
  const entered: string[] = [];
  const listings: string[] = [];
  const policy: ScanPolicy = {
    listed: (dir, names) => listings.push(`${dir.rel.toString()}: ${names.map(String).join(',')}`),
    enterDir: (dir) => {
      entered.push(dir.rel.toString());
      const name = path.basename(dir.rel.toString());
      return name === 'locked' ? 'keep' : name === 'hidden' ? 'drop' : 'read';
    },
    filter: () => true,
    settingsFor: (_dir, name) => ({ ...SETTINGS, priority: name.toString() === 'c' ? 5 : 1 }),
  };
  const scans = scan(root, { policy });
  assert.deepEqual(entered, ['', 'hidden', 'locked', 'normal']);
  assert.deepEqual(listings, [': hidden,locked,normal', 'normal: c'], 'the whole listing of each folder read');
  assert.deepEqual(listing(scans), ['/v/normal dir', '/v/normal/c file']);
  assert.deepEqual([...(scans[0]?.keepNames ?? [])], ['locked']);
  assert.equal(scans[1]?.entries?.[0]?.settings.priority, 5);
});

test('an unreadable folder yields no entries and an error (as an unprivileged user)', (t) => {
  if (process.getuid?.() === 0) {
    t.skip('root reads every folder; the unprivileged case is in test/cli/update.test.ts (setpriv)');
    return;
  }
  const root = tempDir(t);
  writeTree(root, { 'locked/a': 'x' });
  fs.chmodSync(path.join(root, 'locked'), 0);
  t.after(() => fs.chmodSync(path.join(root, 'locked'), 0o755));
  const scans = scan(root);
  assert.equal(scans[1]?.entries, null);
  assert.match(scans[1]?.readError ?? '', /EACCES/);
});
