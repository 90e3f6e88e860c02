import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { openCatalog } from '../../src/catalog/db.js';
import { setPathSettings } from '../../src/sources/settings.js';
import { mapSource } from '../../src/sources/sources.js';
import { runUpdate } from '../../src/update/update.js';
import { tempDir, writeTree } from '../helpers/tmp.js';

// update applies path settings once src/update/update.ts plugs in withPathSettings (see the
// report of the settings work); until then these tests are skipped with that reason.
const plugged = fs
  .readFileSync(path.join(import.meta.dirname, '../../src/update/update.ts'), 'utf8')
  .includes('withPathSettings');
const skip = plugged ? false : 'update does not apply path settings yet (withPathSettings not plugged in)';

test('update applies settings, rules, lock, hide, skip markers and sidecars', { skip }, async (t) => {
  const root = tempDir(t);
  const real = path.join(root, 'real');
  const hash = 'ab'.repeat(32);
  writeTree(real, {
    'keep.txt': 'k',
    'junk.tmp': 'j',
    'important.tmp': 'i',
    'hidden/h.txt': 'h',
    'nas/n.txt': 'n',
    'skip/.distbackup.skip': '',
    'skip/s.txt': 's',
    'pics/a.jpg': 'a',
    'pics/a.jpg.meta-inf': JSON.stringify({ hash, priority: 7, maxcopies: 2 }),
    'pics/bad.jpg': 'b',
    'pics/bad.jpg.meta-inf': 'nope',
  });
  const cat = openCatalog(path.join(root, 'data'));
  t.after(() => cat.close());
  mapSource(cat, '/r', real);
  setPathSettings(cat, ['/r'], { rules: ['!!important.tmp', '*.tmp'], priority: 3 });
  setPathSettings(cat, ['/r/hidden'], { hide: true });
  await runUpdate(cat, { jobs: 0 });
  const rows = () =>
    new Map(
      (
        cat.db
          .prepare(
            `SELECT f.vpath, f.priority, f.max_copies AS mx, o.hash FROM files f LEFT JOIN objects o ON o.id = f.object_id
             WHERE f.kind = 0`,
          )
          .all() as Array<{ vpath: Buffer; priority: number; mx: number; hash: string | null }>
      ).map((r) => [r.vpath.toString(), r]),
    );
  let files = rows();
  assert.deepEqual([...files.keys()].sort(), [
    '/r/important.tmp',
    '/r/keep.txt',
    '/r/nas/n.txt',
    '/r/pics/a.jpg',
    '/r/pics/bad.jpg',
  ]);
  assert.equal(files.get('/r/keep.txt')?.priority, 3);
  assert.equal(files.get('/r/important.tmp')?.priority, 2);
  assert.deepEqual(
    [files.get('/r/pics/a.jpg')?.priority, files.get('/r/pics/a.jpg')?.mx, files.get('/r/pics/a.jpg')?.hash],
    [7, 2, hash],
  );
  // lock: the folder is not read again; its catalogued files stay even when they are gone
  setPathSettings(cat, ['/r/nas'], { lock: true });
  fs.rmSync(path.join(real, 'nas'), { recursive: true });
  await runUpdate(cat, { jobs: 0 });
  files = rows();
  assert.ok(files.has('/r/nas/n.txt'), 'a locked folder keeps its files');
  // unhide: the folder comes back at the next update
  setPathSettings(cat, ['/r/hidden'], { hide: false });
  setPathSettings(cat, ['/r/nas'], { lock: false });
  await runUpdate(cat, { jobs: 0 });
  files = rows();
  assert.ok(files.has('/r/hidden/h.txt'));
  assert.ok(!files.has('/r/nas/n.txt'), 'unlocked and gone: removed');
});
