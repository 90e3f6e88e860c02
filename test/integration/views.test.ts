import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type TestContext, test } from 'node:test';
import { type Catalog, openCatalog } from '../../src/catalog/db.js';
import { insertDisk } from '../../src/catalog/disks.js';
import { FileKind } from '../../src/catalog/schema.js';
import { getSource } from '../../src/catalog/sources.js';
import { vpathParent } from '../../src/core/vpath.js';
import { mapSource } from '../../src/sources/sources.js';
import { runStatus } from '../../src/status/status.js';
import { compileLsPattern, lsEntries } from '../../src/views/ls.js';
import { writeNcdu } from '../../src/views/ncdu.js';
import { liveDisks, resolveFilter, type ViewFilterOptions, viewRows } from '../../src/views/rows.js';
import { buildTree, renderTree, type TreeNode } from '../../src/views/tree.js';
import { tempDir } from '../helpers/tmp.js';
import { validateNcduExport } from './views-ncdu-format.js';

const hash = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * A catalogue with three disks and files at 0, 1 and 2 copies:
 *   /s/a/x1 (o1, 100 B, d1+d2)  /s/b/dup-x1 (o1 again)  /s/a/big (o2, 1000 B, d1)
 *   /s/c/lonely (o3, 10 B, none) /s/b/deep/y (o4, 50 B, d2+d3)  /s/c/new (not hashed, 7 B)
 *   /s/z (o5, 5 B, d3, priority 2, cap 3)
 */
function world(t: TestContext): Catalog {
  const root = tempDir(t);
  const cat = openCatalog(path.join(root, 'data'));
  t.after(() => cat.close());
  const real = path.join(root, 'real');
  fs.mkdirSync(real);
  mapSource(cat, '/s', real);
  const src = getSource(cat.db, '/s')?.id as number;
  const disk = (name: string) =>
    insertDisk(cat.db, {
      uuid: `00000000-0000-4000-8000-00000000000${name.slice(1)}`,
      name,
      size: 1e9,
      created: new Date().toISOString(),
      generation: 0,
      mountPath: null,
      mountPoint: null,
      relPath: null,
      fsUuid: null,
      fsType: null,
      lastSeenMs: null,
      lastSyncMs: null,
      lastVerifyMs: null,
      droppedMs: null,
    });
  const d = { d1: disk('d1'), d2: disk('d2'), d3: disk('d3') };
  const obj = (name: string, size: number, on: number[]) => {
    const id = Number(
      cat.db.prepare('INSERT INTO objects (hash, size) VALUES (?, ?)').run(hash(name), size).lastInsertRowid,
    );
    for (const disk of on) cat.db.prepare('INSERT INTO copies (object_id, disk_id) VALUES (?, ?)').run(id, disk);
    return id;
  };
  const o1 = obj('o1', 100, [d.d1, d.d2]);
  const o2 = obj('o2', 1000, [d.d1]);
  const o3 = obj('o3', 10, []);
  const o4 = obj('o4', 50, [d.d2, d.d3]);
  const o5 = obj('o5', 5, [d.d3]);
  const dirs = new Set<string>();
  const file = (v: string, size: number, object: number | null, priority = 1, cap = 1_000_000) => {
    for (let p = v.slice(0, v.lastIndexOf('/')); p.length > 2 && !dirs.has(p); p = p.slice(0, p.lastIndexOf('/'))) {
      dirs.add(p);
      cat.db
        .prepare('INSERT INTO files (vpath, parent, source_id, kind) VALUES (?, ?, ?, ?)')
        .run(Buffer.from(p), vpathParent(Buffer.from(p)), src, FileKind.dir);
    }
    cat.db
      .prepare(
        `INSERT INTO files (vpath, parent, source_id, kind, size, mtime_ns, object_id, priority, max_copies)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        Buffer.from(v),
        vpathParent(Buffer.from(v)),
        src,
        FileKind.file,
        size,
        1_700_000_000_000_000_000n,
        object,
        priority,
        cap,
      );
  };
  file('/s/a/x1', 100, o1);
  file('/s/b/dup-x1', 100, o1);
  file('/s/a/big', 1000, o2);
  file('/s/c/lonely', 10, o3);
  file('/s/b/deep/y', 50, o4);
  file('/s/c/new', 7, null);
  file('/s/z', 5, o5, 2, 3);
  return cat;
}

function tree(cat: Catalog, opts: ViewFilterOptions = {}, prefix = '/', depth = Number.POSITIVE_INFINITY): TreeNode {
  return buildTree(viewRows(cat.db, prefix, resolveFilter(cat.db, opts)), prefix, depth);
}

function paths(cat: Catalog, opts: ViewFilterOptions): string[] {
  return [...viewRows(cat.db, '/', resolveFilter(cat.db, opts))].map((r) => r.vpath.toString());
}

test('tree: files and deduplicated bytes per copy count, folders largest first', (t) => {
  const cat = world(t);
  const root = tree(cat);
  assert.equal(root.files, 7);
  assert.equal(root.bytes, 100 + 1000 + 10 + 50 + 7 + 5);
  assert.deepEqual(root.byCopies, [
    { copies: 0, files: 2, bytes: 17 },
    { copies: 1, files: 2, bytes: 1005 },
    { copies: 2, files: 3, bytes: 150 },
  ]);
  const s = root.children[0] as TreeNode;
  assert.equal(s.path, '/s');
  assert.deepEqual(
    s.children.map((c) => [c.path, c.files, c.bytes]),
    [
      ['/s/a', 2, 1100],
      ['/s/b', 2, 50],
      ['/s/c', 2, 17],
    ],
  );
  assert.deepEqual(
    s.children[1]?.children.map((c) => c.path),
    ['/s/b/deep'],
  );
  // depth limits what is kept, not what is counted
  const shallow = tree(cat, {}, '/', 1);
  assert.deepEqual(shallow.children[0]?.children, []);
  assert.equal(shallow.files, 7);
  // a subtree
  const b = tree(cat, {}, '/s/b');
  assert.equal(b.bytes, 150, 'inside /s/b the duplicate carries the bytes');
  const lines = renderTree(root, (n) => `${n}B`);
  assert.match(lines[0] ?? '', /bytes +files +0 copies +1 copy +2 copies +folder/);
  assert.match(lines.find((l) => l.endsWith(' a')) ?? '', /1100B +2 +- +1000B +100B/);
});

test('filters: --on (all of), --not-on (none of), --min-copies, --max-copies, --simulate-loss', (t) => {
  const cat = world(t);
  assert.deepEqual(paths(cat, { on: ['d1'] }), ['/s/a/big', '/s/a/x1', '/s/b/dup-x1']);
  assert.deepEqual(paths(cat, { on: ['d1', 'd2'] }), ['/s/a/x1', '/s/b/dup-x1']);
  assert.deepEqual(paths(cat, { notOn: ['d1'] }), ['/s/b/deep/y', '/s/c/lonely', '/s/c/new', '/s/z']);
  assert.deepEqual(paths(cat, { notOn: ['d1', 'd3'] }), ['/s/c/lonely', '/s/c/new']);
  assert.deepEqual(paths(cat, { minCopies: 2 }), ['/s/a/x1', '/s/b/deep/y', '/s/b/dup-x1']);
  assert.deepEqual(paths(cat, { maxCopies: 0 }), ['/s/c/lonely', '/s/c/new']);
  assert.deepEqual(paths(cat, { minCopies: 1, maxCopies: 1 }), ['/s/a/big', '/s/z']);
  assert.deepEqual(paths(cat, { simulateLoss: ['d3'], maxCopies: 0 }), ['/s/c/lonely', '/s/c/new', '/s/z']);
  assert.deepEqual(paths(cat, { simulateLoss: ['d1', 'd2'], maxCopies: 0 }), [
    '/s/a/big',
    '/s/a/x1',
    '/s/b/dup-x1',
    '/s/c/lonely',
    '/s/c/new',
  ]);
  // --on is decided on the real copies, before the simulated loss
  assert.deepEqual(paths(cat, { on: ['d1'], simulateLoss: ['d1'] }), ['/s/a/big', '/s/a/x1', '/s/b/dup-x1']);
  assert.throws(() => resolveFilter(cat.db, { on: ['nope'] }), /--on nope: no such disk \(known: d1, d2, d3\)/);
});

test('--simulate-loss agrees with status lossIfDead for every disk', (t) => {
  const cat = world(t);
  const status = runStatus(cat);
  for (const d of status.disks) {
    const f = resolveFilter(cat.db, { simulateLoss: [d.name], maxCopies: 0, on: [d.name] });
    const rows = [...viewRows(cat.db, '/', f)];
    const charged = rows.filter((r) => r.charged);
    assert.deepEqual(
      { objects: charged.length, bytes: charged.reduce((a, r) => a + r.sizeBytes, 0), files: rows.length },
      { objects: d.lossIfDead.objects, bytes: d.lossIfDead.bytes, files: d.lossIfDead.files },
      d.name,
    );
    const lost = tree(cat, { simulateLoss: [d.name], maxCopies: 0, on: [d.name] });
    assert.equal(lost.bytes, d.lossIfDead.bytes);
  }
});

test('ncdu export: valid format 1.x, same content as hard links, disks and settings in names', async (t) => {
  const cat = world(t);
  let text = '';
  const summary = await writeNcdu(
    viewRows(cat.db, '/', resolveFilter(cat.db, {})),
    '/',
    liveDisks(cat.db),
    (s) => {
      text += s;
    },
    { progver: '0.1.0', timestampS: 1_700_000_000 },
  );
  assert.deepEqual(summary, { files: 7, folders: 6, bytes: 1172 });
  const doc = JSON.parse(text) as unknown;
  validateNcduExport(doc);
  const [major, minor, meta, root] = doc as [number, number, Record<string, unknown>, unknown[]];
  assert.deepEqual([major, minor, meta.progname], [1, 2, 'distbackup']);
  assert.equal((root[0] as { name: string }).name, '/');
  const s = root[1] as unknown[];
  const byName = new Map<string, Record<string, unknown>>();
  const walk = (dir: unknown[]): void => {
    for (const e of dir.slice(1)) {
      if (Array.isArray(e)) walk(e);
      else byName.set((e as { name: string }).name, e as Record<string, unknown>);
    }
  };
  walk(s);
  const x1 = byName.get('x1 (d1,d2)');
  const dup = byName.get('dup-x1 (d1,d2)');
  assert.ok(x1 && dup, [...byName.keys()].join(' | '));
  assert.equal(x1.ino, dup.ino);
  assert.equal(x1.hlnkc, true);
  assert.equal(byName.get('big (d1)')?.hlnkc, undefined);
  assert.deepEqual(byName.get('z (d3) (P2) (M3)')?.asize, 5);
  assert.equal(byName.get('new')?.dsize, 4096);
  // filtered: only what would be lost with d1
  let lost = '';
  await writeNcdu(
    viewRows(cat.db, '/', resolveFilter(cat.db, { simulateLoss: ['d1'], maxCopies: 0, on: ['d1'] })),
    '/',
    liveDisks(cat.db),
    (c) => {
      lost += c;
    },
    { progver: '0.1.0', timestampS: 1 },
  );
  validateNcduExport(JSON.parse(lost));
  assert.match(lost, /"name":"big"/);
  assert.doesNotMatch(lost, /x1/);
  // an empty view is still a valid export
  let empty = '';
  await writeNcdu(
    [],
    '/nothing',
    new Map(),
    (c) => {
      empty += c;
    },
    { progver: '0', timestampS: 0 },
  );
  validateNcduExport(JSON.parse(empty));
});

test('ls: glob on virtual paths matching a path or its subtree, --disk', (t) => {
  const cat = world(t);
  const ls = (p?: string, disk?: string) => [...lsEntries(cat.db, p, disk)].map((e) => e.path);
  assert.equal(ls().length, 7);
  assert.deepEqual(ls('/s/a'), ['/s/a/big', '/s/a/x1']);
  assert.deepEqual(ls('s/a/'), ['/s/a/big', '/s/a/x1']);
  assert.deepEqual(ls('*dup*'), ['/s/b/dup-x1']);
  assert.deepEqual(ls('/s/?/x*'), ['/s/a/x1']);
  assert.deepEqual(ls('/s/b'), ['/s/b/deep/y', '/s/b/dup-x1']);
  assert.deepEqual(ls('/s/b/de'), []);
  assert.deepEqual(ls(undefined, 'd3'), ['/s/b/deep/y', '/s/z']);
  const [big] = [...lsEntries(cat.db, '/s/a/big')];
  assert.deepEqual(big, { path: '/s/a/big', size: 1000, hash: hash('o2'), disks: ['d1'] });
  assert.equal(compileLsPattern('/photos/20*').folder, '/photos');
});
