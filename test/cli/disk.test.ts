import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { DISK_CATALOGUE_STALE } from '../../src/disk/layout.js';
import { runCli, runCliJson } from '../helpers/cli.js';
import { writeTree } from '../helpers/tmp.js';
import { bytes, catalogue, makeWorld } from '../integration/sync-helpers.js';

interface DiskDoc {
  name: string;
  uuid: string;
  size: number;
  used: number;
  objects: number;
  mounted: boolean;
  path: string | null;
  lastSync: string | null;
  lastVerify: string | null;
  dropped: string | null;
}

test('disk add prints its identity; disk list --json has the SPEC fields', (t) => {
  const w = makeWorld(t);
  const d = path.join(w.root, 'disk1');
  const add = runCli(w.home, ['disk', 'add', 'disk1', d, '--size', '10M']);
  assert.equal(add.code, 0, add.stderr);
  assert.match(add.stdout, /registered disk disk1/);
  assert.match(add.stdout, /uuid\s+[0-9a-f-]{36}/);
  assert.match(add.stdout, /mount point\s+\//);
  assert.ok(fs.existsSync(path.join(d, 'distbackup-disk.json')));
  assert.ok(fs.statSync(path.join(d, 'distbackup-objects')).isDirectory());
  const list = runCliJson<DiskDoc[]>(w.home, ['disk', 'list']);
  assert.equal(list.code, 0);
  assert.equal(list.json.length, 1);
  const doc = list.json[0];
  assert.ok(doc !== undefined);
  for (const k of ['name', 'uuid', 'size', 'used', 'objects', 'mounted', 'path', 'lastSync', 'lastVerify']) {
    assert.ok(k in doc, `disk list --json has ${k}`);
  }
  assert.equal(doc.size, 10_000_000);
  assert.equal(doc.mounted, true);
  assert.equal(doc.lastSync, null);
  // The human list is a table with the same look as status: sizes human, times to the minute.
  const human = runCli(w.home, ['disk', 'list']);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^disk +size +used +objects +state +last sync +last verify +folder\n/);
  assert.match(human.stdout, /^disk1 +10 MB +0 B +0 +connected +never +never +\/\S+$/m);
  // A second disk under the same name is a usage error; the same folder again is refused.
  assert.equal(runCli(w.home, ['disk', 'add', 'disk1', path.join(w.root, 'other')]).code, 1);
  const again = runCli(w.home, ['disk', 'add', 'disk2', d]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /is the folder of disk 'disk1'/);
  // Bad names are refused before anything is written.
  assert.equal(runCli(w.home, ['disk', 'add', '../evil', path.join(w.root, 'evil')]).code, 1);
  assert.ok(!fs.existsSync(path.join(w.root, 'evil', 'distbackup-disk.json')));
  // The folder typed first: the error says which comes first, and nothing is written.
  const usb = path.join(w.root, 'usb');
  const swapped = runCli(w.home, ['disk', 'add', usb, 'backup-02']);
  assert.equal(swapped.code, 1);
  assert.match(swapped.stderr, /invalid disk name .*\(the name comes first: disk add backup-02 .*usb\)/);
  assert.ok(!fs.existsSync(usb));
});

test('disk add refuses (exit 2) a folder that is, holds or lies inside another disk or a source, and makes nothing there', (t) => {
  const w = makeWorld(t);
  const d1 = path.join(w.root, 'usb1');
  assert.equal(runCli(w.home, ['disk', 'add', 'd1', d1, '--size', '10M']).code, 0);
  const cases: [string, string, RegExp][] = [
    ['inside', path.join(d1, 'sub'), /lies inside the folder of disk 'd1'/],
    ['holding', w.root, /holds the folder of disk 'd1'/],
    ['the same, its identity lost', d1, /is the folder of disk 'd1'/],
    ['in a source', path.join(w.src, 'backup'), /overlaps the folder of source/],
  ];
  fs.rmSync(path.join(d1, 'distbackup-disk.json'));
  for (const [what, where, why] of cases) {
    const r = runCli(w.home, ['disk', 'add', `x${cases.findIndex((c) => c[0] === what)}`, where, '--size', '10M']);
    assert.equal(r.code, 2, `${what}: ${r.stderr}`);
    assert.match(r.stderr, why, what);
  }
  assert.ok(!fs.existsSync(path.join(d1, 'sub')), 'no folder made inside the other disk');
  assert.ok(!fs.existsSync(path.join(w.src, 'backup')), 'no folder made inside the source');
  assert.equal(runCliJson<DiskDoc[]>(w.home, ['disk', 'list']).json.length, 1);
});

/** Two files catalogued and synced to disk 'd' (10 MB), through the CLI. */
async function twoFilesSynced(t: import('node:test').TestContext) {
  const w = makeWorld(t);
  writeTree(w.src, { 'a.bin': bytes(1, 5000), 'b.bin': bytes(2, 7000) });
  await catalogue(w);
  const d = path.join(w.root, 'd');
  assert.equal(runCli(w.home, ['disk', 'add', 'd', d, '--size', '10M']).code, 0);
  assert.equal(runCli(w.home, ['sync', 'd', '-q']).code, 0);
  return { w, d };
}

test('disk remove is refused (exit 2) while the disk holds counted copies; drop, then remove', async (t) => {
  const { w, d } = await twoFilesSynced(t);
  const refused = runCli(w.home, ['disk', 'remove', 'd']);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /still holds 2 counted copies.*disk drop d/);
  assert.equal(refused.stderr.trim().split('\n').length, 1);
  const drop = runCliJson<{ copiesDropped: number; objectsAtZero: number }>(w.home, ['disk', 'drop', 'd']);
  assert.equal(drop.code, 0);
  assert.equal(drop.json.copiesDropped, 2);
  assert.equal(drop.json.objectsAtZero, 2);
  // refresh counts what is really on the disk again (a dropped disk is found by its folder too)
  const refresh = runCliJson<{ adopted: number }>(w.home, ['disk', 'refresh', '--disk', d]);
  assert.equal(refresh.code, 0, refresh.stderr);
  assert.equal(refresh.json.adopted, 2);
  const dropText = runCli(w.home, ['disk', 'drop', 'd', '-n']);
  assert.equal(dropText.code, 0, dropText.stderr);
  assert.match(dropText.stdout, /^disk d: 2 copies would no longer be counted$/m);
  assert.match(dropText.stderr, /warning: 2 objects would have no copy on any disk/);
  const refreshText = runCli(w.home, ['disk', 'refresh', 'd']);
  assert.match(refreshText.stdout, /: 2 objects present, 0 adopted, .*0 entries ignored$/m);
  // Dropped, then found and synced by name: back in the pool.
  assert.equal(runCli(w.home, ['disk', 'drop', 'd']).code, 0);
  const back = runCli(w.home, ['sync', 'd']);
  assert.equal(back.code, 0, back.stderr);
  assert.match(back.stderr, /disk 'd' was dropped; synced, it is back in the pool/);
  assert.equal(runCliJson<DiskDoc[]>(w.home, ['disk', 'list']).json[0]?.dropped, null);
  assert.equal(runCli(w.home, ['disk', 'drop', 'd']).code, 0);
  assert.equal(runCli(w.home, ['disk', 'remove', 'd']).code, 0);
  assert.deepEqual(runCliJson<DiskDoc[]>(w.home, ['disk', 'list']).json, []);
});

test('disk set changes the size and renames, also inside a connected disk', (t) => {
  const w = makeWorld(t);
  const d = path.join(w.root, 'd');
  assert.equal(runCli(w.home, ['disk', 'add', 'd', d, '--size', '10M']).code, 0);
  const set = runCliJson<DiskDoc>(w.home, ['disk', 'set', 'd', '--size', '1GiB', '--rename', 'offsite']);
  assert.equal(set.code, 0, set.stderr);
  assert.equal(set.json.name, 'offsite');
  assert.equal(set.json.size, 1024 ** 3);
  const json = JSON.parse(fs.readFileSync(path.join(d, 'distbackup-disk.json'), 'utf8')) as { name: string };
  assert.equal(json.name, 'offsite');
  assert.equal(runCli(w.home, ['disk', 'set', 'offsite']).code, 1);
  assert.equal(runCli(w.home, ['disk', 'set', 'nope', '--size', '1G']).code, 1);
});

test('disk add refuses (exit 2) to create a missing folder on the root filesystem without --size', (t) => {
  const w = makeWorld(t);
  const mount = spawnSync('findmnt', ['-n', '-o', 'TARGET', '--target', w.root], { encoding: 'utf8' });
  if (mount.status !== 0 || mount.stdout.trim() !== '/') {
    t.skip(`the temporary folder is not on the root filesystem here (${mount.stdout.trim() || 'no findmnt'})`);
    return;
  }
  // As when /media/usb1 is not mounted: the folder would land on the host's own disk.
  const missing = path.join(w.root, 'usb1', 'distbackup');
  fs.mkdirSync(path.dirname(missing));
  const r = runCli(w.home, ['disk', 'add', 'usb1', missing]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^distbackup: .*usb1\/distbackup: does not exist, .*root filesystem.*is the disk mounted\?/);
  assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  assert.ok(!fs.existsSync(missing), 'nothing created');
  assert.deepEqual(runCliJson<DiskDoc[]>(w.home, ['disk', 'list']).json, []);
  // An explicit size, or a folder made first, says the user means it.
  assert.equal(runCli(w.home, ['disk', 'add', 'usb1', missing, '--size', '10M']).code, 0);
  const made = path.join(w.root, 'made');
  fs.mkdirSync(made);
  assert.equal(runCli(w.home, ['disk', 'add', 'made', made]).code, 0);
});

test('disk refresh quarantines an object of the wrong size and marks the catalogue copy on the disk stale first; the next sync writes it again', async (t) => {
  const { w, d } = await twoFilesSynced(t);
  const objects = path.join(d, 'distbackup-objects');
  const prefix = fs.readdirSync(objects).find((p) => p !== '.tmp') as string;
  const victim = path.join(objects, prefix, fs.readdirSync(path.join(objects, prefix))[0] as string);
  fs.chmodSync(victim, 0o644);
  fs.truncateSync(victim, 10);
  const stale = path.join(d, DISK_CATALOGUE_STALE);
  assert.ok(!fs.existsSync(stale));
  const refresh = runCliJson<{ quarantined: number }>(w.home, ['disk', 'refresh', 'd']);
  assert.equal(refresh.code, 0, refresh.stderr);
  assert.equal(refresh.json.quarantined, 1);
  assert.ok(fs.existsSync(stale), 'the copy on the disk, which lists the object, is marked stale');
  assert.equal(runCli(w.home, ['sync', 'd', '-q']).code, 0);
  assert.ok(!fs.existsSync(stale));
});
