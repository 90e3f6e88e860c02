import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openCatalog } from '../../src/catalog/db.js';
import { getMeta, setMeta } from '../../src/catalog/meta.js';
import { recordRemovedDisk, removedDisks } from '../../src/catalog/removed-disks.js';
import { tempDir } from '../helpers/tmp.js';

test('the record of removed disks: sound entries of a damaged record are read, the damaged text set aside, later removals still recorded', (t) => {
  const cat = openCatalog(tempDir(t));
  t.after(() => cat.close());
  recordRemovedDisk(cat.db, 'u1', 5);
  recordRemovedDisk(cat.db, 'u1', 3);
  assert.deepEqual([...removedDisks(cat.db)], [['u1', 5]], 'a generation never goes back');
  setMeta(cat.db, 'removed_disks', '{"u1":5,"u2":"x","u3":2.5}');
  assert.deepEqual([...removedDisks(cat.db)], [['u1', 5]]);
  recordRemovedDisk(cat.db, 'u4', 7);
  assert.deepEqual(
    [...removedDisks(cat.db)],
    [
      ['u1', 5],
      ['u4', 7],
    ],
  );
  assert.equal(getMeta(cat.db, 'removed_disks_damaged'), '{"u1":5,"u2":"x","u3":2.5}');
  setMeta(cat.db, 'removed_disks', 'not json');
  assert.deepEqual([...removedDisks(cat.db)], []);
  recordRemovedDisk(cat.db, 'u5', 1);
  assert.deepEqual([...removedDisks(cat.db)], [['u5', 1]]);
  assert.equal(
    getMeta(cat.db, 'removed_disks_damaged'),
    '{"u1":5,"u2":"x","u3":2.5}',
    'the first damaged record is kept',
  );
});
