/** `status --no-saturated`: objects at their cap are counted apart from the histogram. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { openCatalog } from '../../src/catalog/db.js';
import { setPathSettings } from '../../src/sources/settings.js';
import { renderStatus } from '../../src/status/render.js';
import { runStatus } from '../../src/status/status.js';
import { addPoolDisk, catalogueSource, makeSourceTree, putObjects } from '../helpers/pool.js';
import { tempDir } from '../helpers/tmp.js';

test('objects at their cap leave the histogram and the minimum, not the losses', (t) => {
  const base = tempDir(t);
  const src = path.join(base, 'src');
  fs.mkdirSync(src);
  makeSourceTree(src, { files: 12 });
  const cat = openCatalog(path.join(base, 'home'));
  t.after(() => cat.close());
  const c = catalogueSource(cat, '/data', src);
  // /data/docs is capped at one copy: its objects go to disk a only; the photos to a and b.
  setPathSettings(cat, ['/data/docs'], { maxcopies: 1 });
  const docsHashes = new Set(
    cat.db
      .prepare(
        `SELECT o.hash FROM files f JOIN objects o ON o.id = f.object_id WHERE f.kind = 0 AND f.vpath >= ? AND f.vpath < ?`,
      )
      .pluck()
      .all(Buffer.from('/data/docs/'), Buffer.from('/data/docs0')) as string[],
  );
  assert.ok(docsHashes.size > 3, 'the fixture has capped objects');
  addPoolDisk(cat, 'a', path.join(base, 'a'));
  addPoolDisk(cat, 'b', path.join(base, 'b'));
  putObjects(cat, c, 'a');
  putObjects(cat, c, 'b', (h) => !docsHashes.has(h));

  const plain = runStatus(cat);
  assert.equal(plain.minCopies, 1);
  assert.equal(plain.saturated, null);

  const apart = runStatus(cat, { noSaturated: true });
  assert.equal(apart.minCopies, 2, 'the capped objects no longer pin the minimum');
  assert.ok(apart.saturated !== null);
  assert.equal(apart.saturated.objects, docsHashes.size);
  const docsBytes = cat.db
    .prepare(`SELECT sum(size) FROM objects WHERE hash IN (SELECT value FROM json_each(?))`)
    .pluck()
    .get(JSON.stringify([...docsHashes])) as number;
  assert.equal(apart.saturated.bytes, docsBytes);
  // Histogram + set aside = every referenced object; totals and losses are unchanged.
  const inHistogram = apart.histogram.reduce((s, h) => s + h.objects, 0);
  assert.equal(inHistogram + apart.saturated.objects, plain.objects);
  assert.equal(apart.histogram[1]?.objects, 0);
  assert.equal(apart.objects, plain.objects);
  assert.deepEqual(
    apart.disks.map((d) => d.lossIfDead),
    plain.disks.map((d) => d.lossIfDead),
  );
  assert.match(apart.verdict, /^every file below its cap has at least 2 copies/);
  assert.ok(renderStatus(apart).some((l) => /at their cap, not counted above: \d+ objects/.test(l)));

  // One more copy of a capped object is a surplus: still saturated, still apart.
  putObjects(cat, c, 'b', (h) => h === [...docsHashes][0]);
  assert.equal(runStatus(cat, { noSaturated: true }).saturated?.objects, docsHashes.size);
});

test('a cap of 0 is read as 1: an object without a copy is never set aside as at its cap', (t) => {
  const base = tempDir(t);
  const src = path.join(base, 'src');
  fs.mkdirSync(src);
  makeSourceTree(src, { files: 6 });
  const cat = openCatalog(path.join(base, 'home'));
  t.after(() => cat.close());
  catalogueSource(cat, '/data', src);
  setPathSettings(cat, ['/data'], { maxcopies: 0 });
  const s = runStatus(cat, { noSaturated: true });
  assert.equal(s.saturated?.objects, 0);
  assert.equal(s.minCopies, 0);
  assert.equal(s.histogram[0]?.objects, s.objects, 'every object at 0 copies, in the histogram');
  assert.doesNotMatch(s.verdict, /at its cap/);
});

test('objects no file wants backed up (priority 0) are apart: not in the histogram, the minimum or the losses', (t) => {
  const base = tempDir(t);
  const src = path.join(base, 'src');
  fs.mkdirSync(src);
  makeSourceTree(src, { files: 12 });
  const cat = openCatalog(path.join(base, 'home'));
  t.after(() => cat.close());
  const c = catalogueSource(cat, '/data', src);
  setPathSettings(cat, ['/data/docs'], { priority: 0 });
  const zero = new Set(
    cat.db
      .prepare(
        `SELECT o.hash FROM files f JOIN objects o ON o.id = f.object_id WHERE f.kind = 0 GROUP BY o.id HAVING max(f.priority) = 0`,
      )
      .pluck()
      .all() as string[],
  );
  assert.ok(zero.size > 0, 'the fixture has objects at priority 0');
  addPoolDisk(cat, 'a', path.join(base, 'a'));
  putObjects(cat, c, 'a', (h) => !zero.has(h));
  const s = runStatus(cat);
  assert.equal(s.notBackedUp.objects, zero.size);
  assert.equal(s.minCopies, 1, 'the objects at priority 0 do not pin the minimum at 0');
  assert.equal(s.histogram[0]?.objects, 0);
  assert.equal(s.histogram.reduce((n, h) => n + h.objects, 0) + s.notBackedUp.objects, s.objects);
  assert.equal(s.disks[0]?.lossIfDead.objects, s.histogram[1]?.objects);
  assert.match(s.verdict, /^every file to back up has at least 1 copy; .*\d+ files? not backed up \(priority 0\)/);
  assert.ok(renderStatus(s).some((l) => /not backed up \(priority 0\), not counted above/.test(l)));
});
