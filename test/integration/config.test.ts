import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type TestContext, test } from 'node:test';
import { openCatalog } from '../../src/catalog/db.js';
import { type ConfigDoc, configText, exportConfig, importConfig, parseConfigText } from '../../src/config/config.js';
import { type EditIo, editConfig } from '../../src/config/edit.js';
import { addDisk } from '../../src/disks/disks.js';
import { setPathSettings } from '../../src/sources/settings.js';
import { catalogueSource } from '../helpers/pool.js';
import { tempDir, writeTree } from '../helpers/tmp.js';

function world(t: TestContext) {
  const root = tempDir(t);
  const real = path.join(root, 'real');
  const other = path.join(root, 'other');
  writeTree(real, { 'a/one.txt': '1', 'b/two.txt': '2' });
  fs.mkdirSync(other);
  const cat = openCatalog(path.join(root, 'data'));
  t.after(() => cat.close());
  catalogueSource(cat, '/r', real);
  const disk = addDisk(cat, 'd1', path.join(root, 'disk1'), { sizeBytes: 1e9 });
  setPathSettings(cat, ['/r/a'], { priority: 3, rules: ['*.tmp'] });
  setPathSettings(cat, ['/r/b'], { lock: true });
  const priority = (v: string) =>
    cat.db.prepare('SELECT priority FROM files WHERE vpath = ?').pluck().get(Buffer.from(v)) as number;
  return { root, real, other, cat, uuid: disk.uuid, priority };
}

test('export then import is a round trip; the document has the Python shape', (t) => {
  const w = world(t);
  const doc = exportConfig(w.cat);
  assert.deepEqual(doc.path_map, { '/r': w.real });
  assert.deepEqual(doc.path_config, { '/r/a': { priority: 3, rules: ['*.tmp'] }, '/r/b': { lock: true } });
  assert.deepEqual(doc.disks?.[w.uuid], {
    name: 'd1',
    size_bytes: 1e9,
    relative_path: doc.disks?.[w.uuid]?.relative_path ?? null,
    fstype: doc.disks?.[w.uuid]?.fstype ?? null,
    fsuuid: doc.disks?.[w.uuid]?.fsuuid ?? null,
  });
  const s = importConfig(w.cat, parseConfigText(configText(doc), 'x'));
  assert.deepEqual(
    [s.sourcesAdded, s.sourcesChanged, s.sourcesRemoved, s.settings, s.filesUpdated],
    [[], [], [], 2, 0],
  );
  assert.deepEqual(exportConfig(w.cat), doc);
  const sub = exportConfig(w.cat, { pathPrefix: '/r/b' });
  assert.deepEqual(sub.path_config, { '/r/b': { lock: true } });
  assert.equal(sub.path_prefix, '/r/b');
});

test('a Python export imports: trailing slashes, sizes with commas, legacy keys', (t) => {
  const w = world(t);
  const python = {
    path_map: { '/r/': w.real, '/o/': w.other },
    path_config: { '/r/a/': { priority: 5, include: [], exclude: [] }, '/r/': { maxcopies: 2 } },
    disks: {
      [w.uuid.toUpperCase()]: {
        name: 'renamed',
        size_bytes: '2,000,000,000',
        relative_path: 'x',
        fstype: 'ext4',
        fsuuid: null,
      },
    },
  };
  const s = importConfig(w.cat, python as ConfigDoc);
  assert.deepEqual(s.sourcesAdded, ['/o']);
  assert.deepEqual(s.disksChanged, ['renamed']);
  const doc = exportConfig(w.cat);
  assert.deepEqual(doc.path_config, { '/r': { maxcopies: 2 }, '/r/a': { priority: 5 } });
  assert.deepEqual(doc.disks?.[w.uuid], {
    name: 'renamed',
    size_bytes: 2e9,
    relative_path: 'x',
    fstype: 'ext4',
    fsuuid: null,
  });
  assert.equal(w.priority('/r/a/one.txt'), 5);
  assert.equal(w.priority('/r/b/two.txt'), 1, 'the lock on /r/b was replaced too');
  assert.equal(
    w.cat.db.prepare('SELECT max_copies FROM files WHERE vpath = ?').pluck().get(Buffer.from('/r/b/two.txt')),
    2,
  );
});

test('all or nothing: one bad value and nothing changes', (t) => {
  const w = world(t);
  const before = configText(exportConfig(w.cat));
  const bad: Array<[unknown, RegExp]> = [
    [{ path_map: { '/x': 'relative/path' } }, /path_map \/x: the real path must be an absolute path/],
    [{ path_map: { '/x': w.root } }, /contains the distbackup data folder/],
    [{ path_config: { '/r': { priority: 'high' } } }, /path_config \/r: priority must be a whole number/],
    [{ path_config: { '/r': { rules: ['/('] } } }, /invalid regex/],
    [{ path_config: { 'no-slash': {} } }, /not absolute/],
    [{ path_config: { '/elsewhere': {} }, path_prefix: '/r' }, /outside path_prefix \/r/],
    [{ disks: { '11111111-2222-4333-8444-555555555555': { name: 'x' } } }, /no registered disk has uuid/],
    [{ disks: { [w.uuid]: { name: 'bad name!' } } }, /invalid name/],
    [{ disks: { [w.uuid]: { size_bytes: -3 } } }, /size above 0/],
    [{ colours: {} }, /unknown key 'colours'/],
  ];
  for (const [doc, re] of bad) {
    assert.throws(() => importConfig(w.cat, parseConfigText(JSON.stringify(doc), 'doc')), re, JSON.stringify(doc));
    assert.equal(configText(exportConfig(w.cat)), before);
  }
  // a valid path_map with a bad path_config: the mapping is not added either
  assert.throws(() =>
    importConfig(w.cat, {
      path_map: { '/r': w.real, '/o': w.other },
      path_config: { '/r': { lock: 1 } },
    } as unknown as ConfigDoc),
  );
  assert.equal(configText(exportConfig(w.cat)), before);
});

test('path_prefix replaces only that subtree; removing a mapping drops its files; dry run', (t) => {
  const w = world(t);
  const s = importConfig(w.cat, { path_prefix: '/r/b', path_config: { '/r/b': { priority: 4 } } });
  assert.equal(s.settingsRemoved, 1);
  assert.deepEqual(exportConfig(w.cat).path_config, {
    '/r/a': { priority: 3, rules: ['*.tmp'] },
    '/r/b': { priority: 4 },
  });
  assert.equal(w.priority('/r/b/two.txt'), 4);
  const dry = importConfig(w.cat, { path_map: { '/o': w.other } }, { dryRun: true });
  assert.deepEqual(dry.sourcesRemoved, [{ vpath: '/r', files: 4 }]);
  assert.equal(w.cat.db.prepare('SELECT count(*) FROM files').pluck().get(), 4);
  importConfig(w.cat, { path_map: { '/o': w.other } });
  assert.equal(w.cat.db.prepare('SELECT count(*) FROM files').pluck().get(), 0);
});

/** An editor that writes the given texts in turn, and answers in turn. */
function scripted(texts: Array<string | ((current: string) => string)>, answers: Array<'edit' | 'revert' | 'cancel'>) {
  const seen: string[] = [];
  const said: string[] = [];
  const io: EditIo = {
    edit: (file) => {
      const current = fs.readFileSync(file, 'utf8');
      seen.push(current);
      const next = texts.shift();
      if (next === undefined) throw new Error('editor opened too often');
      fs.writeFileSync(file, typeof next === 'string' ? next : next(current));
    },
    choose: async () => answers.shift() ?? 'cancel',
    say: (l) => said.push(l),
  };
  return { io, seen, said };
}

test('config edit: invalid then edit again, revert, cancel, unchanged', async (t) => {
  const w = world(t);
  const fix = (c: string) => c.replace('-1', '6');
  // invalid → edit again (the invalid text comes back) → fixed → applied
  const a = scripted(['{"path_config": {"/r/a": {"priority": -1}}}', fix], ['edit']);
  const ra = await editConfig(w.cat, 'path', undefined, a.io);
  assert.equal(ra.outcome, 'applied', a.said.join('\n'));
  assert.match(a.said[0] ?? '', /invalid: .*priority must be a whole number/);
  assert.equal(a.seen[1], '{"path_config": {"/r/a": {"priority": -1}}}');
  assert.equal(w.priority('/r/a/one.txt'), 6);
  assert.deepEqual(exportConfig(w.cat).path_config, { '/r/a': { priority: 6 } }, 'path_config is replaced as a whole');
  // revert: the saved configuration comes back
  const b = scripted(['not json', (c) => c.replace('"priority": 6', '"priority": 7')], ['revert']);
  const before = configText(exportConfig(w.cat, { sections: ['path_config'] }));
  const rb = await editConfig(w.cat, 'path', undefined, b.io);
  assert.equal(rb.outcome, 'applied');
  assert.equal(b.seen[1], before);
  // cancel: nothing changes
  const c = scripted(['{"disks": 5}'], ['cancel']);
  const snapshot = configText(exportConfig(w.cat));
  assert.equal((await editConfig(w.cat, 'disks', undefined, c.io)).outcome, 'cancelled');
  assert.equal(configText(exportConfig(w.cat)), snapshot);
  // unchanged text
  const d = scripted([(x) => x], []);
  assert.equal((await editConfig(w.cat, 'map', undefined, d.io)).outcome, 'unchanged');
  // a key from another section is refused
  const e = scripted(['{"disks": {}}'], ['cancel']);
  await editConfig(w.cat, 'map', undefined, e.io);
  assert.match(e.said[0] ?? '', /'disks' does not belong to the map section/);
  // path VPATH edits only that subtree
  importConfig(w.cat, { path_config: { '/r/a': { priority: 3 }, '/r/b': { lock: true } } });
  const f = scripted([(x) => x.replace('"lock": true', '"hide": true')], []);
  assert.equal((await editConfig(w.cat, 'path', '/r/b', f.io)).outcome, 'applied');
  assert.match(f.seen[0] ?? '', /"\/r\/b"/);
  assert.doesNotMatch(f.seen[0] ?? '', /"\/r\/a"/);
  assert.deepEqual(exportConfig(w.cat).path_config?.['/r/b'], { hide: true });
  assert.ok(exportConfig(w.cat).path_config?.['/r/a'] !== undefined);
});
