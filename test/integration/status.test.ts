import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { openCatalog } from '../../src/catalog/db.js';
import { getDiskByName } from '../../src/catalog/disks.js';
import { dropDisk } from '../../src/disks/disks.js';
import { renderStatus } from '../../src/status/render.js';
import { runStatus } from '../../src/status/status.js';
import { addPoolDisk, catalogueSource, makeSourceTree, putObjects } from '../helpers/pool.js';
import { tempDir } from '../helpers/tmp.js';

/** Ground truth: which disks really hold each object, from the files on the disks. */
function holders(disks: Record<string, string>): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const [name, root] of Object.entries(disks)) {
    const objs = path.join(root, 'distbackup-objects');
    for (const pre of fs.readdirSync(objs)) {
      if (pre.startsWith('.')) continue;
      for (const h of fs.readdirSync(path.join(objs, pre))) m.set(h, [...(m.get(h) ?? []), name]);
    }
  }
  return m;
}

test('status figures agree with what the disks really hold', (t) => {
  const base = tempDir(t);
  const src = path.join(base, 'src');
  fs.mkdirSync(src);
  makeSourceTree(src, { files: 30 });
  const cat = openCatalog(path.join(base, 'home'));
  t.after(() => cat.close());
  const c = catalogueSource(cat, '/data', src);
  const disks: Record<string, string> = {};
  for (const n of ['a', 'b', 'c']) {
    disks[n] = path.join(base, n);
    addPoolDisk(cat, n, disks[n]);
  }
  putObjects(cat, c, 'a', (_h, i) => i % 2 === 0);
  putObjects(cat, c, 'b', (_h, i) => i % 3 === 0);
  putObjects(cat, c, 'c', (_h, i) => i % 5 === 0 || i === 1);
  const doc = runStatus(cat);
  const truth = holders(disks);
  const all = cat.db.prepare('SELECT hash, size FROM objects').all() as { hash: string; size: number }[];
  assert.equal(doc.objects, all.length);
  const byCount = [0, 0, 0, 0];
  for (const o of all) {
    const k = Math.min(3, truth.get(o.hash)?.length ?? 0);
    byCount[k] = (byCount[k] ?? 0) + 1;
  }
  assert.deepEqual(
    doc.histogram.map((h) => h.objects),
    byCount,
  );
  assert.equal(
    doc.histogram.reduce((s, h) => s + h.bytes, 0),
    doc.bytes,
  );
  // The sum of lossIfDead is exactly the objects with one copy.
  assert.equal(
    doc.disks.reduce((s, d) => s + d.lossIfDead.objects, 0),
    byCount[1],
  );
  for (const d of doc.disks) {
    const only = all.filter((o) => {
      const h = truth.get(o.hash) ?? [];
      return h.length === 1 && h[0] === d.name;
    });
    assert.equal(d.lossIfDead.objects, only.length, d.name);
    assert.equal(
      d.lossIfDead.bytes,
      only.reduce((s, o) => s + o.size, 0),
    );
    assert.equal(d.objects, [...truth.values()].filter((h) => h.includes(d.name)).length);
  }
  // Worst pair: brute force over pairs.
  let worst = -1;
  for (const [x, y] of [
    ['a', 'b'],
    ['a', 'c'],
    ['b', 'c'],
  ]) {
    const lost = all.filter((o) => (truth.get(o.hash) ?? []).every((h) => h === x || h === y)).length;
    const zero = all.filter((o) => (truth.get(o.hash) ?? []).length === 0).length;
    worst = Math.max(worst, lost - zero);
  }
  assert.equal(doc.worstPair?.objects, worst);
  assert.equal(doc.minCopies, (byCount[0] ?? 0) > 0 ? 0 : 1);
  assert.match(doc.verdict, /no copy on any disk|at least/);
  const text = renderStatus(doc).join('\n');
  assert.match(text, /copies {3}objects/);
  assert.match(text, /█/);
});

test('status verdict names the disk whose loss hurts most, and flags stale disks and copies', (t) => {
  const base = tempDir(t);
  const src = path.join(base, 'src');
  fs.mkdirSync(src);
  makeSourceTree(src, { files: 4 });
  const cat = openCatalog(path.join(base, 'home'));
  t.after(() => cat.close());
  const c = catalogueSource(cat, '/data', src);
  for (const n of ['backup-01', 'backup-02', 'backup-03']) addPoolDisk(cat, n, path.join(base, n));
  putObjects(cat, c, 'backup-01');
  putObjects(cat, c, 'backup-02');
  putObjects(cat, c, 'backup-03', (_h, i) => i < 3);
  const doc = runStatus(cat);
  assert.equal(doc.minCopies, 2);
  assert.match(
    doc.verdict,
    /^every file has at least 2 copies; losing backup-0[12] would leave \d+ files with one copy/,
  );
  const later = runStatus(cat, { nowMs: Date.now() + 100 * 86_400_000, staleMs: 90 * 86_400_000 });
  assert.ok(later.disks.every((d) => d.notSeenStale));
  assert.match(later.verdict, /not seen for over 90 days: backup-01, backup-02, backup-03/);
  assert.match(later.verdict, /copies not verified for over 90 days/);
  // A copy never verified ages from its writing, not from the disk's last sync: a later sync
  // that copies nothing leaves it stale. One written at an unknown time (found on the disk) is
  // stale at once.
  const d1 = getDiskByName(cat.db, 'backup-01')?.id as number;
  const day = 86_400_000;
  cat.db.prepare('UPDATE copies SET written_ms = ? WHERE disk_id = ?').run(Date.now() - 100 * day, d1);
  cat.db.prepare('UPDATE disks SET last_sync_ms = ? WHERE id = ?').run(Date.now(), d1);
  const copiesOf1 = later.disks.find((d) => d.name === 'backup-01')?.objects;
  const old = runStatus(cat, { staleMs: 90 * day });
  assert.equal(old.disks.find((d) => d.name === 'backup-01')?.staleCopies, copiesOf1);
  assert.equal(old.disks.find((d) => d.name === 'backup-02')?.staleCopies, 0);
  cat.db.prepare('UPDATE copies SET written_ms = NULL WHERE disk_id = ?').run(d1);
  assert.equal(runStatus(cat).disks.find((d) => d.name === 'backup-01')?.staleCopies, copiesOf1);
  dropDisk(cat, 'backup-01');
  const dropped = runStatus(cat);
  assert.equal(dropped.minCopies, 1);
  assert.ok(dropped.disks.find((d) => d.name === 'backup-01')?.dropped !== null);
});
