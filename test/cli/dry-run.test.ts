/**
 * `-n/--dry-run` on the source, disk and config commands: each says what it would do, and
 * neither the catalogue nor any disk folder changes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type TestContext, test } from 'node:test';
import Database from 'better-sqlite3';
import { buildPythonCatalogue } from '../fixtures/python/schema31.js';
import { CLI, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** Every file below `dir` with the hash of its bytes (SQLite's -wal/-shm side files left out). */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const p = path.join(e.parentPath, e.name);
    if (/-(wal|shm)$/.test(e.name)) continue;
    out[path.relative(dir, p)] = e.isFile() ? sha(fs.readFileSync(p)) : e.isDirectory() ? 'dir' : 'other';
  }
  return out;
}

/**
 * What the catalogue holds: every row of every table of the home catalogue, read with SQLite
 * itself (read-only; committed rows in the WAL included), so a dry run that wrote any row is
 * caught, not only one that shows in `config export` or `disk list`.
 */
function rows(data: string): string {
  const file = path.join(data, 'distbackup.sqlite');
  assert.ok(fs.existsSync(file), `no catalogue in ${data}`);
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const tables = db
      .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
      .pluck()
      .all() as string[];
    const out: string[] = [];
    for (const t of tables) {
      const all = db
        .prepare(`SELECT * FROM "${t.replaceAll('"', '""')}"`)
        .raw()
        .all();
      // Blobs (virtual paths) serialise as their bytes through Buffer's toJSON.
      const lines = all.map((r) => JSON.stringify(r));
      out.push(`${t}:`, ...lines.sort());
    }
    return out.join('\n');
  } finally {
    db.close();
  }
}

function world(t: TestContext) {
  const root = tempDir(t);
  const data = path.join(root, 'data');
  const real = path.join(root, 'real');
  fs.mkdirSync(path.join(real, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(real, 'sub', 'f.txt'), 'hello');
  return { root, data, real };
}

/** Run `args` and check that it succeeds, prints `said`, and changes neither folder. */
function unchanged(data: string, disk: string | undefined, args: string[], said: RegExp): void {
  const beforeData = tree(data);
  const beforeDisk = disk === undefined ? {} : tree(disk);
  const beforeRows = rows(data);
  const r = runCli(data, args);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  assert.match(r.stdout, said, args.join(' '));
  assert.deepEqual(tree(data), beforeData, `${args.join(' ')}: the data folder changed`);
  if (disk !== undefined) assert.deepEqual(tree(disk), beforeDisk, `${args.join(' ')}: the disk changed`);
  assert.equal(rows(data), beforeRows, `${args.join(' ')}: the catalogue changed`);
}

test('source map, unmap, set, lock, unlock and reset with -n change nothing', (t) => {
  const { data, real } = world(t);
  assert.equal(runCli(data, ['source', 'map', '/r', real, '--no-log']).code, 0);
  assert.equal(runCli(data, ['source', 'set', '/r/sub', '--priority', '2', '--lock', '--no-log']).code, 0);
  unchanged(data, undefined, ['source', 'map', '/s', real, '-n'], /^would map \/s -> /);
  unchanged(data, undefined, ['source', 'unmap', '/r', '--dry-run'], /^would unmap \/r/);
  unchanged(data, undefined, ['source', 'set', '/r', '--max-copies', '2', '-n'], /would update/);
  unchanged(data, undefined, ['source', 'lock', '/r', '-n'], /^would lock \/r/);
  unchanged(data, undefined, ['source', 'unlock', '/r/sub', '-n'], /^would unlock \/r\/sub/);
  unchanged(data, undefined, ['source', 'reset', '/r/sub', '-n'], /^would reset \/r\/sub/);
  // The same without -n does change the catalogue (the check above can fail).
  const before = rows(data);
  assert.equal(runCli(data, ['source', 'reset', '/r/sub', '--no-log']).code, 0);
  assert.notEqual(rows(data), before);
});

test('disk add, set, drop, remove and refresh with -n touch neither the catalogue nor the disk', (t) => {
  const { root, data, real } = world(t);
  assert.equal(runCli(data, ['source', 'map', '/r', real, '--no-log']).code, 0);
  // add -n: a missing folder is not created; an existing one gets no distbackup-disk.json.
  const missing = path.join(root, 'not-yet');
  unchanged(data, undefined, ['disk', 'add', 'd0', missing, '--size', '1M', '-n'], /^would have registered disk d0/);
  assert.equal(fs.existsSync(missing), false);
  const disk = path.join(root, 'disk1');
  fs.mkdirSync(disk);
  unchanged(data, disk, ['disk', 'add', 'd1', disk, '--size', '1M', '-n'], /^would have registered disk d1/);
  assert.deepEqual(fs.readdirSync(disk), []);
  assert.equal(runCli(data, ['disk', 'add', 'd1', disk, '--size', '1M', '--no-log']).code, 0);
  // An object on the disk that the catalogue does not count yet: refresh -n would not move it.
  fs.mkdirSync(path.join(disk, 'distbackup-objects', '.tmp'), { recursive: true });
  fs.writeFileSync(path.join(disk, 'distbackup-objects', '.tmp', 'partial'), 'left over');
  unchanged(data, disk, ['disk', 'set', 'd1', '--size', '2M', '--rename', 'd9', '-n'], /^would set disk d9: size 2 MB/);
  unchanged(data, disk, ['disk', 'refresh', 'd1', '-n'], /^would refresh disk d1 at /);
  unchanged(data, disk, ['disk', 'drop', 'd1', '-n'], /^disk d1: 0 copies would no longer be counted/);
  unchanged(data, disk, ['disk', 'remove', 'd1', '-n'], /^disk d1 .* would be forgotten/);
  assert.equal(JSON.parse(fs.readFileSync(path.join(disk, 'distbackup-disk.json'), 'utf8')).name, 'd1');
  // Without -n, refresh empties .tmp/: the -n run above really held back.
  assert.equal(runCli(data, ['disk', 'refresh', 'd1', '--no-log']).code, 0);
  assert.equal(fs.existsSync(path.join(disk, 'distbackup-objects', '.tmp', 'partial')), false);
});

test('config import, config edit and import-python with -n write nothing', (t) => {
  const { root, data, real } = world(t);
  assert.equal(runCli(data, ['source', 'map', '/r', real, '--no-log']).code, 0);
  const conf = path.join(root, 'conf.json');
  fs.writeFileSync(conf, JSON.stringify({ path_config: { '/r/sub/': { priority: 7 } } }));
  unchanged(data, undefined, ['config', 'import', conf, '-n'], /would be/);
  const editor = path.join(root, 'editor.sh');
  fs.writeFileSync(editor, `#!/bin/sh\necho '{"path_config": {"/r": {"priority": 9}}}' > "$1"\n`);
  fs.chmodSync(editor, 0o755);
  const before = tree(data);
  const beforeRows = rows(data);
  const e = spawnSync(process.execPath, [CLI, 'config', 'edit', 'path', '-n'], {
    encoding: 'utf8',
    env: { ...process.env, DISTBACKUP_PATH: data, NO_COLOR: '1', EDITOR: editor, VISUAL: '' },
  });
  assert.equal(e.status, 0, e.stderr);
  assert.deepEqual(tree(data), before);
  assert.equal(rows(data), beforeRows);

  // import-python -n into a data folder that does not exist yet: it stays that way.
  const src = path.join(root, 'pysrc');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'a.txt'), 'A');
  const st = fs.statSync(path.join(src, 'a.txt'));
  const py = path.join(root, 'python', 'distbackup.sqlite');
  fs.mkdirSync(path.dirname(py));
  buildPythonCatalogue(py, {
    pathMap: [['/data/', src]],
    files: [{ vpath: '/data/a.txt', mtimeMs: Math.trunc(st.mtimeMs), hash: sha('A'), ino: st.ino, size: 1 }],
    objects: [{ hash: sha('A'), size: 1, nexus: '' }],
    disks: [],
  });
  const pyBytes = sha(fs.readFileSync(py));
  const fresh = path.join(root, 'fresh-data');
  const r = runCli(fresh, ['import-python', py, '-n']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^would import from .*\n\s+1 mapped folder, /);
  assert.equal(fs.existsSync(fresh), false, 'no data folder, no catalogue, no lock, no log');
  assert.equal(sha(fs.readFileSync(py)), pyBytes);
});
