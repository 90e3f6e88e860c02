import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import type { SourceRow } from '../../src/catalog/sources.js';
import { globPolicy, scanTree } from '../../src/pipeline/scan.js';
import type { PathSettings } from '../../src/sources/path-settings.js';
import { type EntrySettings, parseSidecar, ScanPolicy, withPathSettings } from '../../src/sources/scan-policy.js';
import { settingsKey } from '../../src/sources/settings.js';
import { tempDir, writeTree } from '../helpers/tmp.js';

const B = (s: string) => Buffer.from(s);
const HASH = 'ab'.repeat(32);

function policy(settings: Record<string, PathSettings>, sources: Partial<SourceRow>[] = []): ScanPolicy {
  const map = new Map(Object.entries(settings).map(([k, v]) => [settingsKey(k), v]));
  const rows = sources.map((s, i) => ({
    id: i + 1,
    vpath: '/s',
    realpath: B('/x'),
    include: [],
    exclude: [],
    followSymlinks: false,
    minCopies: 1,
    ...s,
  }));
  return new ScanPolicy(map, rows);
}

test('folders: lock keeps, hide / priority 0 / ignored name / .distbackup.skip skip, others scan', (t) => {
  const root = tempDir(t);
  writeTree(root, { 'plain/f': 'x', 'marked/.distbackup.skip': '', 'marked/f': 'y' });
  const p = policy({
    '/s': { rules: ['*.cache'] },
    '/s/locked': { lock: true },
    '/s/hidden': { hide: true },
    '/s/zero': { priority: 0 },
  });
  const at = (v: string, real = root) => p.enterFolder(v, real);
  assert.equal(at('/s/plain', path.join(root, 'plain')).action, 'scan');
  assert.equal(at('/s/locked').action, 'lock');
  assert.equal(at('/s/locked/below').action, 'lock');
  assert.equal(at('/s/hidden').exclusion?.reason, 'hide');
  assert.equal(at('/s/zero').exclusion?.reason, 'priority-0');
  assert.equal(at('/s/x.cache').exclusion?.reason, 'ignore-rule');
  const marked = at('/s/marked', path.join(root, 'marked'));
  assert.equal(marked.action, 'skip');
  assert.equal(marked.exclusion?.reason, 'skip-file');
});

test('names: sidecars and ignored names are dropped, sidecars are noticed', () => {
  const p = policy({ '/s': { rules: ['!!!*.raw', '*.tmp'] } });
  const folder = p.enterFolder('/s', '/nonexistent');
  const kept = p.filterNames(folder, [
    B('a.jpg'),
    B('a.jpg.meta-inf'),
    B('b.tmp'),
    B('c.raw'),
    B('orphan.meta-inf'),
    B('.meta-inf'),
  ]);
  assert.deepEqual(
    kept.map((k) => [k.name.toString(), k.hasSidecar]),
    [
      ['a.jpg', true],
      ['c.raw', false],
      ['.meta-inf', false],
    ],
  );
  assert.equal(p.fileSettings(folder, B('c.raw'), '/nonexistent/c.raw', false).priority, 3);
});

test('a sidecar gives a trusted hash, a priority and a cap; an invalid one is a warning', (t) => {
  const root = tempDir(t);
  writeTree(root, {
    'a.jpg': 'a',
    'a.jpg.meta-inf': JSON.stringify({ hash: HASH.toUpperCase(), priority: 5, maxcopies: 2, comment: 'kept' }),
    'b.jpg': 'b',
    'b.jpg.meta-inf': '{not json',
    'c.jpg': 'c',
    'c.jpg.meta-inf': JSON.stringify({ maxcopies: 'inf' }),
  });
  const p = policy({ '/s': { maxcopies: 1, priority: 2 } }, [{ vpath: '/s', minCopies: 2 }]);
  const folder = p.enterFolder('/s', root);
  const a = p.fileSettings(folder, B('a.jpg'), path.join(root, 'a.jpg'), true);
  assert.deepEqual(a, { priority: 5, minCopies: 2, maxCopies: 2, hash: HASH, warnings: [] });
  const b = p.fileSettings(folder, B('b.jpg'), path.join(root, 'b.jpg'), true);
  assert.deepEqual([b.priority, b.maxCopies, b.hash], [2, 1, undefined]);
  assert.match(b.warnings[0] ?? '', /b\.jpg\.meta-inf: invalid sidecar, ignored/);
  assert.equal(p.fileSettings(folder, B('c.jpg'), path.join(root, 'c.jpg'), true).maxCopies, null);
  const gone = p.fileSettings(folder, B('d.jpg'), path.join(root, 'd.jpg'), true);
  assert.match(gone.warnings[0] ?? '', /cannot read the sidecar: ENOENT/);
  // A FIFO under a sidecar's name: a warning, not a run blocked on it.
  writeTree(root, { 'e.jpg': 'e' });
  assert.equal(spawnSync('mkfifo', [path.join(root, 'e.jpg.meta-inf')]).status, 0);
  const fifo = p.fileSettings(folder, B('e.jpg'), path.join(root, 'e.jpg'), true);
  assert.match(fifo.warnings[0] ?? '', /e\.jpg\.meta-inf: sidecar is not a regular file, ignored/);
});

test('sidecar validation', () => {
  assert.deepEqual(parseSidecar({}), {});
  assert.throws(() => parseSidecar([]), /not a JSON object/);
  assert.throws(() => parseSidecar({ hash: 'abc' }), /64 hex/);
  assert.throws(() => parseSidecar({ priority: -1 }), /priority/);
  assert.throws(() => parseSidecar({ maxcopies: 'lots' }), /maxcopies/);
});

test('plugged into the scan: dropped, kept and recorded folders, names and settings', (t) => {
  const root = tempDir(t);
  writeTree(root, {
    'keep.txt': 'k',
    'x.tmp': 't',
    'x.jpg': 'j',
    'x.jpg.meta-inf': JSON.stringify({ priority: 4, hash: HASH }),
    'bad.jpg': 'b',
    'bad.jpg.meta-inf': '[1]',
    'hidden/h.txt': 'h',
    'locked/l.txt': 'l',
    'skipme/.distbackup.skip': '',
    'skipme/s.txt': 's',
    'sub/deep/d.txt': 'd',
    'sub/excluded.part': 'p',
  });
  const p = policy({
    '/s': { rules: ['*.tmp'], priority: 2 },
    '/s/hidden': { hide: true },
    '/s/locked': { lock: true },
    '/s/sub': { maxcopies: 3 },
  });
  const warnings: string[] = [];
  const scan = withPathSettings(globPolicy([], ['*.part'], { priority: 1, minCopies: 1, maxCopies: 1 }), p, (w) =>
    warnings.push(w),
  );
  const recorded = new Map<string, EntrySettings>();
  const kept: string[] = [];
  for (const ds of scanTree({ vpath: '/s', realPath: Buffer.from(root), followSymlinks: false, nested: [] }, scan)) {
    for (const k of ds.keepNames) kept.push(`${ds.dir.vpath.toString()}/${Buffer.from(k, 'latin1').toString()}`);
    for (const e of ds.entries ?? []) recorded.set(`${ds.dir.vpath.toString()}/${e.name.toString()}`, e.settings);
  }
  assert.deepEqual([...recorded.keys()].sort(), [
    '/s/bad.jpg',
    '/s/keep.txt',
    '/s/sub',
    '/s/sub/deep',
    '/s/sub/deep/d.txt',
    '/s/x.jpg',
  ]);
  assert.deepEqual(kept, ['/s/locked']);
  assert.deepEqual(recorded.get('/s/x.jpg'), { priority: 4, minCopies: 1, maxCopies: 1_000_000, hash: HASH });
  assert.deepEqual(recorded.get('/s/sub/deep/d.txt'), { priority: 2, minCopies: 1, maxCopies: 3 });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0] ?? '', /bad\.jpg\.meta-inf: invalid sidecar/);
});
