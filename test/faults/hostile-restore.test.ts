/**
 * Fault 9: a hostile disk catalogue during restore (RELIABILITY.md §4, test 20). A disk is
 * untrusted input: its catalogue copy may name `..`, relative or absolute paths, NUL bytes,
 * names over 255 bytes, the restore state's own folder, or a path through a symlink that the
 * restore itself created in an earlier run. Nothing may be written outside DEST, every hostile
 * path is refused and listed (not silently skipped), and the honest files are still restored.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { cli, countFault, countViolations, expectExit, rngFor } from '../helpers/faults.js';
import { seededBytes } from '../helpers/faults-fixture.js';
import { plantCanaries, treeDigest } from '../helpers/invariants.js';
import { faultDir, sweepStaleMounts } from '../helpers/mounts.js';

sweepStaleMounts();

const FAULT = 'hostile disk catalogue (restore)';

interface Row {
  vpath: Buffer | string;
  kind?: number;
  content?: Buffer;
  linkTarget?: string;
}

/** A schema-correct empty catalogue, made by the product itself (`source map` creates it). */
function productSchema(root: string): string {
  const home = path.join(root, 'schema-home');
  const real = path.join(root, 'schema-src');
  fs.mkdirSync(real, { recursive: true });
  expectExit(cli(home, ['source', 'map', '/data', real]), 0, 'source map');
  return path.join(home, 'distbackup.sqlite');
}

/** A crafted disk folder whose catalogue copy lists `rows`; every content is a real object on it. */
function craftDisk(root: string, schemaFrom: string, name: string, rows: Row[]): string {
  const disk = path.join(root, name);
  fs.mkdirSync(path.join(disk, 'distbackup-objects'), { recursive: true });
  const uuid = randomUUID();
  fs.writeFileSync(
    path.join(disk, 'distbackup-disk.json'),
    JSON.stringify({ format: 1, uuid, name, created: new Date(0).toISOString(), generation: 1 }),
  );
  const file = path.join(disk, 'distbackup.sqlite');
  const src = new Database(schemaFrom, { readonly: true });
  src.prepare('VACUUM INTO ?').run(file);
  src.close();
  const db = new Database(file);
  db.pragma('journal_mode = DELETE');
  db.prepare('INSERT INTO disks (id, uuid, name, size, created, generation) VALUES (1, ?, ?, ?, ?, 1)').run(
    uuid,
    name,
    1 << 30,
    new Date(0).toISOString(),
  );
  const srcId = db.prepare('SELECT id FROM sources LIMIT 1').pluck().get() as number;
  const insObj = db.prepare('INSERT OR IGNORE INTO objects (hash, size) VALUES (?, ?)');
  const objId = db.prepare('SELECT id FROM objects WHERE hash = ?').pluck();
  const insCopy = db.prepare('INSERT OR IGNORE INTO copies (object_id, disk_id) VALUES (?, 1)');
  const insFile = db.prepare(
    `INSERT INTO files (vpath, parent, source_id, kind, size, mtime_ns, mode, link_target, object_id)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  for (const r of rows) {
    const vpath = typeof r.vpath === 'string' ? Buffer.from(r.vpath) : r.vpath;
    const kind = r.kind ?? 0;
    let id: number | null = null;
    if (kind === 0 && r.content !== undefined) {
      const h = createHash('sha256').update(r.content).digest('hex');
      insObj.run(h, r.content.length);
      id = objId.get(h) as number;
      insCopy.run(id);
      const dir = path.join(disk, 'distbackup-objects', h.slice(0, 3));
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, h), r.content);
    }
    insFile.run(
      vpath,
      Buffer.from('/'),
      srcId,
      kind,
      r.content?.length ?? 0,
      1_600_000_000_000_000_000n,
      kind === 1 ? 0o755 : 0o644,
      r.linkTarget === undefined ? null : Buffer.from(r.linkTarget),
      id,
    );
  }
  db.close();
  return disk;
}

test('hostile disk catalogue: traversal, absolute, NUL, long names and symlink paths never write outside DEST', {
  timeout: 60_000,
}, (t) => {
  const rng = rngFor('hostile-restore');
  const root = faultDir(t, 'hostile');
  const schema = productSchema(root);
  const outside = path.join(root, 'outside');
  const destParent = path.join(root, 'restore');
  const dest = path.join(destParent, 'dest');
  fs.mkdirSync(destParent);
  const canaries = plantCanaries([outside, destParent, path.join(root, 'dest-evil')], [dest]);
  const good = seededBytes(`good-${rng.int(0, 1e9)}`, 5000);
  const evil = seededBytes('evil', 3000);
  const hostile: Row[] = [
    { vpath: '/data/../../outside/escape1', content: evil },
    { vpath: '/../outside/escape2', content: evil },
    { vpath: '/data/a/../../../../outside/escape3', content: evil },
    { vpath: 'relative/escape4', content: evil },
    { vpath: '//outside/escape6', content: evil },
    { vpath: '/data/./escape7', content: evil },
    {
      vpath: Buffer.concat([Buffer.from('/data/nul'), Buffer.from([0]), Buffer.from('/../../escape8')]),
      content: evil,
    },
    { vpath: `/data/${'x'.repeat(300)}`, content: evil },
    { vpath: '/.distbackup-restore/state-overwrite', content: evil },
    { vpath: '/../dest-evil/escape9', content: evil },
    { vpath: '/data/..', kind: 1 },
  ];
  const disk1 = craftDisk(root, schema, 'evil1', [
    { vpath: '/data', kind: 1 },
    { vpath: '/data/ok.txt', content: good },
    // Phase 1 plants a symlink that points outside DEST (a link's target is data: stored as is).
    { vpath: '/data/link', kind: 2, linkTarget: outside },
    { vpath: '/data/rel', kind: 2, linkTarget: '../../outside' },
    // Every virtual path is absolute: one naming a real folder outside lands inside DEST.
    { vpath: `${outside}/absolute`, content: good },
    ...hostile,
  ]);
  const home = path.join(root, 'nohome');
  const r1 = cli(home, ['restore', '--to', dest, '--disk', disk1, '--json'], { timeoutMs: 30_000 });
  countFault(FAULT, 'crafted distbackup.sqlite on a disk, restore --catalogue disk', hostile.length);
  const v: string[] = [];
  let doc: { refused?: { path: string }[]; restored?: number } = {};
  try {
    doc = JSON.parse(r1.stdout);
  } catch {
    v.push(`restore did not print its JSON document (exit ${r1.code}): ${r1.stderr.slice(0, 300)}`);
  }
  if (r1.signal !== null) v.push(`restore died of ${r1.signal}`);
  if ((doc.refused?.length ?? 0) < hostile.length) {
    v.push(`only ${doc.refused?.length ?? 0} of ${hostile.length} hostile paths were refused and listed`);
  }
  const okFile = path.join(dest, 'data', 'ok.txt');
  if (!fs.existsSync(okFile) || !fs.readFileSync(okFile).equals(good)) v.push('the honest file was not restored');
  // Phase 2: a second disk lists a file under the symlinks phase 1 created.
  const disk2 = craftDisk(root, schema, 'evil2', [
    { vpath: '/data/link/through.txt', content: evil },
    { vpath: '/data/rel/through2.txt', content: evil },
    { vpath: '/data/link', kind: 1 },
  ]);
  const r2 = cli(home, ['restore', '--to', dest, '--disk', disk2, '--json'], { timeoutMs: 30_000 });
  countFault(FAULT, 'crafted distbackup.sqlite on a disk, restore --catalogue disk', 3);
  if (r2.signal !== null) v.push(`second restore died of ${r2.signal}`);
  if (r2.code === 0) v.push('second restore exited 0 although it refused paths through a symlink');
  v.push(...canaries.check());
  // DEST holds only what the honest rows describe (plus the restore state).
  const inDest = [...treeDigest(dest).keys()].filter((k) => !k.startsWith('.distbackup-restore'));
  const allowed = new Set(['data/', 'data/ok.txt', 'data/link', 'data/rel']);
  const rel = path.relative('/', outside).split(path.sep);
  for (let i = 1; i <= rel.length; i++) allowed.add(`${rel.slice(0, i).join('/')}/`);
  allowed.add(`${rel.join('/')}/absolute`);
  for (const k of inDest) if (!allowed.has(k)) v.push(`unexpected entry in DEST: ${k}`);
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
  // Refusals are reported, and the exit code says the restore is not complete.
  assert.notEqual(r1.code, 0, 'a restore that refused paths must not exit 0');
});

test('hostile disk json and catalogue: oversized, not JSON, a catalogue that is not SQLite: clean refusals', {
  timeout: 60_000,
}, (t) => {
  const root = faultDir(t, 'hostile2');
  const schema = productSchema(root);
  const dest = path.join(root, 'dest');
  const canaries = plantCanaries([path.join(root, 'outside')]);
  const cases: { what: string; mutate: (disk: string) => void; codes: number[]; match: RegExp }[] = [
    {
      what: 'json is not JSON',
      mutate: (d) => fs.writeFileSync(path.join(d, 'distbackup-disk.json'), '{"format":1, "uuid": '),
      codes: [1, 2],
      match: /distbackup-disk\.json/,
    },
    {
      what: 'json is 1 MiB',
      mutate: (d) => fs.writeFileSync(path.join(d, 'distbackup-disk.json'), `{"x":"${'a'.repeat(1 << 20)}"}`),
      codes: [1, 2],
      match: /distbackup-disk\.json/,
    },
    {
      what: 'json missing',
      mutate: (d) => fs.rmSync(path.join(d, 'distbackup-disk.json')),
      codes: [1, 2],
      match: /distbackup-disk\.json|not a distbackup disk/,
    },
    {
      what: 'json with __proto__ and a newer format',
      mutate: (d) =>
        fs.writeFileSync(
          path.join(d, 'distbackup-disk.json'),
          `{"__proto__":{"polluted":1},"format":99,"uuid":"${randomUUID()}","name":"x"}`,
        ),
      codes: [1, 2],
      match: /format|distbackup-disk\.json/,
    },
    {
      what: 'catalogue copy is garbage',
      mutate: (d) => fs.writeFileSync(path.join(d, 'distbackup.sqlite'), seededBytes('garbage', 8192)),
      codes: [1],
      match: /distbackup\.sqlite/,
    },
    {
      what: 'catalogue copy truncated',
      mutate: (d) => fs.truncateSync(path.join(d, 'distbackup.sqlite'), 1000),
      codes: [1],
      match: /distbackup\.sqlite/,
    },
    {
      what: 'catalogue copy is a symlink to the home catalogue',
      mutate: (d) => {
        fs.rmSync(path.join(d, 'distbackup.sqlite'));
        fs.symlinkSync(schema, path.join(d, 'distbackup.sqlite'));
      },
      codes: [1, 2],
      match: /distbackup\.sqlite|symlink|not in/,
    },
    {
      // Opened as it was, it would block the run until something wrote to it.
      what: 'catalogue copy is a FIFO',
      mutate: (d) => {
        fs.rmSync(path.join(d, 'distbackup.sqlite'));
        execFileSync('mkfifo', [path.join(d, 'distbackup.sqlite')]);
      },
      codes: [1],
      match: /distbackup\.sqlite: cannot read the disk's catalogue copy: not a regular file/,
    },
    {
      // Followed, it would be read without end into the private copy.
      what: 'catalogue copy is a symlink to /dev/zero',
      mutate: (d) => {
        fs.rmSync(path.join(d, 'distbackup.sqlite'));
        fs.symlinkSync('/dev/zero', path.join(d, 'distbackup.sqlite'));
      },
      codes: [1],
      match: /distbackup\.sqlite: cannot read the disk's catalogue copy/,
    },
  ];
  const v: string[] = [];
  for (const [i, c] of cases.entries()) {
    const disk = craftDisk(root, schema, `bad${i}`, [{ vpath: '/data/ok.txt', content: seededBytes('ok', 100) }]);
    c.mutate(disk);
    const r = cli(path.join(root, 'nohome'), ['restore', '--to', dest, '--disk', disk], { timeoutMs: 30_000 });
    countFault('hostile disk json / catalogue copy', 'garbled distbackup-disk.json or distbackup.sqlite', 1);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('distbackup: '));
    if (r.signal !== null || !c.codes.includes(r.code ?? -1)) v.push(`${c.what}: exit ${r.code} ${r.signal ?? ''}`);
    else if (lines.length !== 1 || !c.match.test(lines[0] ?? '')) {
      v.push(`${c.what}: error line ${JSON.stringify(r.stderr.slice(0, 300))}`);
    }
    if (/at .*\.js:\d+/.test(r.stderr)) v.push(`${c.what}: a stack trace on stderr`);
  }
  v.push(...canaries.check());
  countViolations('hostile disk json / catalogue copy', v);
  assert.deepEqual(v, []);
});
