/** The disk identity file (disk/disk-json.ts): untrusted input, read within bounds, refused cleanly. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { RefusedError } from '../../src/core/errors.js';
import { parseDiskIdentity, readDiskIdentity } from '../../src/disk/disk-json.js';
import { addDisk } from '../../src/disks/disks.js';
import { runSync } from '../../src/sync/sync.js';
import { tempDir } from '../helpers/tmp.js';
import { makeWorld } from '../integration/sync-helpers.js';

const doc = (extra: Record<string, unknown>): string =>
  JSON.stringify({ format: 1, uuid: randomUUID(), name: 'd1', created: '2026-01-02T03:04:05Z', ...extra });

test('generation: a whole number, up to the largest safe integer', () => {
  assert.equal(parseDiskIdentity(doc({ generation: 7 }), 'f').generation, 7);
  assert.equal(parseDiskIdentity(doc({ generation: 2 ** 53 - 1 }), 'f').generation, 2 ** 53 - 1);
  for (const g of [2 ** 53, -1, 1.5, '3']) {
    assert.throws(() => parseDiskIdentity(doc({ generation: g }), 'f'), /"generation"/, String(g));
  }
});

test("a uuid written without dashes or in capitals (the Python distbackup) reads in the catalogue's form", () => {
  const u = randomUUID();
  const bare = u.replace(/-/g, '').toUpperCase();
  const id = parseDiskIdentity(doc({ uuid: bare, catalogue: bare }), 'f');
  assert.equal(id.uuid, u);
  assert.equal(id.catalogue, u);
});

test('the identity file is read as a regular file only (no link, no FIFO), within its size cap', (t) => {
  const root = tempDir(t);
  const file = path.join(root, 'distbackup-disk.json');
  fs.writeFileSync(file, doc({ generation: 3 }));
  assert.equal(readDiskIdentity(root).generation, 3);
  // A link to a good identity elsewhere is not followed.
  const elsewhere = path.join(root, 'elsewhere.json');
  fs.renameSync(file, elsewhere);
  fs.symlinkSync(elsewhere, file);
  assert.throws(() => readDiskIdentity(root), /not a regular file/);
  // A FIFO neither blocks nor passes.
  fs.rmSync(file);
  assert.equal(spawnSync('mkfifo', [file]).status, 0);
  assert.throws(() => readDiskIdentity(root), /not a regular file/);
  fs.rmSync(file);
  fs.writeFileSync(file, `{"x":"${'a'.repeat(1 << 20)}"}`);
  assert.throws(() => readDiskIdentity(root), /allowed/);
});

test('a disk found at its path with a damaged identity file is refused naming the file, not as "not connected" alone', async (t) => {
  const w = makeWorld(t);
  const d = path.join(w.root, 'd');
  addDisk(w.cat, 'd', d, { sizeBytes: 1e6 });
  fs.writeFileSync(path.join(d, 'distbackup-disk.json'), '{"format":1, "uuid": ');
  await assert.rejects(runSync(w.cat, { name: 'd' }), (err: unknown) => {
    assert.ok(err instanceof RefusedError, String(err));
    assert.match(err.message, /^disk 'd' is not connected .*; .*distbackup-disk\.json: not valid JSON/);
    return true;
  });
});
