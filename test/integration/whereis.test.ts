import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { openCatalog } from '../../src/catalog/db.js';
import { runVerify } from '../../src/verify/verify.js';
import { runWhereis } from '../../src/whereis/whereis.js';
import { addPoolDisk, catalogueSource, makeSourceTree, putObjects } from '../helpers/pool.js';
import { tempDir } from '../helpers/tmp.js';

test('whereis lists every file of a subtree with its disks and when each copy was verified', async (t) => {
  const base = tempDir(t);
  const src = path.join(base, 'src');
  fs.mkdirSync(src);
  makeSourceTree(src, { files: 3 });
  const cat = openCatalog(path.join(base, 'home'));
  t.after(() => cat.close());
  const c = catalogueSource(cat, '/data', src);
  addPoolDisk(cat, 'a', path.join(base, 'a'));
  addPoolDisk(cat, 'b', path.join(base, 'b'));
  putObjects(cat, c, 'a');
  putObjects(cat, c, 'b', (_h, i) => i % 2 === 0);
  await runVerify(cat, { name: 'a' });
  const r = runWhereis(cat, ['/data/docs', '/data/photos/img-000.jpg', '/nothing/here']);
  assert.deepEqual(r.notFound, ['/nothing/here']);
  // A catalogued link is not "not in the catalogue": it has no copy, restore makes it anyway.
  const link = runWhereis(cat, ['/data/docs/link-to-readme', '/data/empty-dir']);
  assert.deepEqual(link.notFound, []);
  assert.deepEqual(link.noFiles, ['/data/docs/link-to-readme', '/data/empty-dir']);
  const paths = r.entries.map((e) => e.path);
  assert.ok(paths.includes('/data/docs/readme.txt'));
  assert.ok(paths.includes('/data/docs/deep/er/script.sh'), 'subtrees too');
  assert.ok(paths.includes('/data/docs/bad-%FF.txt'), 'non-UTF-8 names shown percent-encoded');
  assert.ok(paths.includes('/data/photos/img-000.jpg'));
  assert.ok(!paths.includes('/data/docs/link-to-readme'), 'regular files only');
  for (const e of r.entries) {
    assert.match(e.hash ?? '', /^[0-9a-f]{64}$/);
    assert.ok(e.disks.includes('a'));
    const a = e.copies.find((x) => x.disk === 'a');
    assert.ok(a?.verified !== null, 'disk a was verified');
    const b = e.copies.find((x) => x.disk === 'b');
    if (b !== undefined) assert.equal(b.verified, null);
  }
  assert.ok(r.entries.some((e) => e.disks.length === 2));
});
