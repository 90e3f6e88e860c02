import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { openCatalog } from '../../src/catalog/db.js';
import { NO_CAP } from '../../src/catalog/schema.js';
import { listLocked, resetPathSettings, setPathSettings, showSettings } from '../../src/sources/settings.js';
import { catalogueSource } from '../helpers/pool.js';
import { tempDir, writeTree } from '../helpers/tmp.js';

function setup(t: import('node:test').TestContext) {
  const root = tempDir(t);
  const real = path.join(root, 'real');
  writeTree(real, {
    'a/one.txt': '1',
    'a/two.tmp': '2',
    'a/deep/three.txt': '3',
    'b/four.txt': '4',
    'b/keep.tmp': '5',
  });
  const cat = openCatalog(path.join(root, 'data'));
  t.after(() => cat.close());
  catalogueSource(cat, '/src', real);
  const row = (v: string) =>
    cat.db
      .prepare('SELECT priority, min_copies AS mn, max_copies AS mx FROM files WHERE vpath = ?')
      .get(Buffer.from(v)) as {
      priority: number;
      mn: number;
      mx: number;
    };
  return { cat, row };
}

test('source set updates the catalogued files below the folder at once, respecting nearer settings', (t) => {
  const { cat, row } = setup(t);
  assert.deepEqual(row('/src/a/one.txt'), { priority: 1, mn: 1, mx: NO_CAP });
  setPathSettings(cat, ['/src/a/deep'], { priority: 4 });
  const [doc] = setPathSettings(cat, ['/src/a'], { priority: 2, mincopies: 3, maxcopies: 5 });
  assert.equal(doc?.filesUpdated, 3);
  assert.deepEqual(row('/src/a/one.txt'), { priority: 2, mn: 3, mx: 5 });
  assert.deepEqual(row('/src/a/deep/three.txt'), { priority: 4, mn: 3, mx: 5 });
  assert.deepEqual(row('/src/b/four.txt'), { priority: 1, mn: 1, mx: NO_CAP });
  // back to inherited
  setPathSettings(cat, ['/src/a'], { priority: null, maxcopies: null });
  assert.deepEqual(row('/src/a/one.txt'), { priority: 1, mn: 3, mx: NO_CAP });
  assert.deepEqual(row('/src/a/deep/three.txt'), { priority: 4, mn: 3, mx: NO_CAP });
});

test('ignore rules and hide give priority 0 at once; a value from a sidecar is kept', (t) => {
  const { cat, row } = setup(t);
  // a value that did not come from settings (a .meta-inf sidecar) stays
  cat.db.prepare('UPDATE files SET priority = 9 WHERE vpath = ?').run(Buffer.from('/src/b/four.txt'));
  setPathSettings(cat, ['/src'], { rules: ['!!!keep.tmp', '*.tmp'] });
  assert.equal(row('/src/a/two.tmp').priority, 0);
  assert.equal(row('/src/b/keep.tmp').priority, 3);
  assert.equal(row('/src/a/one.txt').priority, 1);
  setPathSettings(cat, ['/src'], { priority: 2 });
  assert.equal(row('/src/a/one.txt').priority, 2);
  assert.equal(row('/src/b/four.txt').priority, 9);
  setPathSettings(cat, ['/src/b'], { hide: true });
  assert.equal(row('/src/b/four.txt').priority, 0);
  setPathSettings(cat, ['/src/b'], { hide: false });
  assert.equal(row('/src/b/four.txt').priority, 2);
  assert.equal(row('/src/b/keep.tmp').priority, 3);
});

test('show, lock list, reset, dry run', (t) => {
  const { cat, row } = setup(t);
  setPathSettings(cat, ['/src/a', '/src/b'], { lock: true });
  assert.deepEqual(
    listLocked(cat).map((l) => l.vpath),
    ['/src/a', '/src/b'],
  );
  const [shown] = showSettings(cat, ['/src/a/deep']);
  assert.equal(shown?.effective.lockedAt, '/src/a');
  const dry = setPathSettings(cat, ['/src/a'], { priority: 7 }, { dryRun: true });
  assert.equal(dry[0]?.filesUpdated, 3);
  assert.equal(row('/src/a/one.txt').priority, 1);
  assert.deepEqual(showSettings(cat, ['/src/a'])[0]?.settings, { lock: true });
  setPathSettings(cat, ['/src/a/deep'], { priority: 6 });
  resetPathSettings(cat, ['/src/a'], { recursive: true });
  assert.deepEqual(
    listLocked(cat).map((l) => l.vpath),
    ['/src/b'],
  );
  assert.equal(row('/src/a/deep/three.txt').priority, 1);
  assert.throws(() => setPathSettings(cat, ['relative'], { priority: 1 }), /not absolute/);
});
