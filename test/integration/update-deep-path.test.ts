/**
 * Paths deeper than PATH_MAX (4096 bytes): made with relative `cd` and `mkdir` (as a user can),
 * catalogued by `update` under their full virtual path and hashed, in process and with the real
 * worker pool (the workers open such files through a folder descriptor, deep-path.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type TestContext, test } from 'node:test';
import { type Catalog, openCatalog } from '../../src/catalog/db.js';
import { DIRECT_MAX, openDeep, reachDir } from '../../src/pipeline/deep-path.js';
import { mapSource } from '../../src/sources/sources.js';
import { runUpdate } from '../../src/update/update.js';

const NAME = 'd'.repeat(200);
const LEVELS = 24; // 24 × 201 bytes below the source: deeper than PATH_MAX whatever the temp folder
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** A temp folder removed with `rm -rf` (coreutils walks with openat; fs.rmSync stops at PATH_MAX). */
function deepTemp(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'distbackup-deep-'));
  t.after(() => {
    spawnSync('rm', ['-rf', dir]);
  });
  return dir;
}

/** Run `script` in `sh` after `cd` into `LEVELS` nested folders under `dir` (made with `mkdir` when `make`). */
function inDeep(dir: string, script: string, make = false): string {
  const step = make ? `mkdir -p ${NAME} && cd -P ${NAME}` : `cd -P ${NAME}`;
  const full = `cd "$1" && i=0; while [ $i -lt ${LEVELS} ]; do ${step} || exit 1; i=$((i+1)); done; ${script}`;
  const r = spawnSync('sh', ['-c', full, 'sh', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sh in the deep folder failed: ${r.stderr}`);
  return r.stdout;
}

const DEEP_REL = Array.from({ length: LEVELS }, () => NAME).join('/');

function setup(t: TestContext): { src: string; cat: Catalog } {
  const base = deepTemp(t);
  const src = path.join(base, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'shallow.txt'), 'shallow');
  inDeep(
    src,
    `printf %s 'deep content' > deep.txt && printf '' > empty && mkdir below && printf %s 'below' > below/b.txt`,
    true,
  );
  // Every mtime in the past; the runs below also say the scan starts 10 s from now (out of the racy window).
  spawnSync('sh', ['-c', 'find "$1" -exec touch -h -d 2021-03-04T05:06:07 {} +', 'sh', src]);
  const cat = openCatalog(path.join(base, 'data'));
  t.after(() => cat.close());
  mapSource(cat, '/deep', src);
  return { src, cat };
}

function rows(cat: Catalog): Map<string, string | null> {
  const out = new Map<string, string | null>();
  const all = cat.db.prepare('SELECT f.vpath, o.hash FROM files f LEFT JOIN objects o ON o.id = f.object_id').all() as {
    vpath: Buffer;
    hash: string | null;
  }[];
  for (const r of all) out.set(r.vpath.toString(), r.hash);
  return out;
}

for (const jobs of [0, 2]) {
  test(`files deeper than PATH_MAX are catalogued under their full virtual path and hashed (jobs ${jobs})`, {
    timeout: 120_000,
  }, async (t) => {
    const { src, cat } = setup(t);
    const deepDir = `/deep/${DEEP_REL}`;
    assert.ok(Buffer.byteLength(`${src}/${DEEP_REL}`) > 4096, 'the test tree must be deeper than PATH_MAX');
    const first = await runUpdate(cat, { jobs, now: () => Date.now() + 10_000 });
    assert.deepEqual(first.errors, []);
    const r = rows(cat);
    assert.equal(r.get(`${deepDir}/deep.txt`), sha('deep content'));
    assert.equal(r.get(`${deepDir}/empty`), sha(''));
    assert.equal(r.get(`${deepDir}/below/b.txt`), sha('below'));
    assert.equal(r.get('/deep/shallow.txt'), sha('shallow'));
    assert.equal(first.new, LEVELS + 5, 'every folder and file, deep ones included');
    assert.equal(first.bytesHashed, 'deep content'.length + 'below'.length + 'shallow'.length);
    // Unchanged: nothing read again. Changed deep content: read again. Removed: gone.
    const again = await runUpdate(cat, { jobs, now: () => Date.now() + 10_000 });
    assert.equal(again.unchanged, LEVELS + 5);
    assert.equal(again.bytesHashed, 0);
    inDeep(src, `printf %s 'new deep content' > deep.txt && touch -d 2021-03-05T05:06:07 deep.txt && rm below/b.txt`);
    const third = await runUpdate(cat, { jobs, now: () => Date.now() + 10_000 });
    assert.deepEqual(third.errors, []);
    assert.equal(third.changed, 2, 'deep.txt and its folder below/ … changed (below/ lost an entry)');
    assert.equal(third.removed, 1);
    assert.equal(rows(cat).get(`${deepDir}/deep.txt`), sha('new deep content'));
    assert.equal(rows(cat).has(`${deepDir}/below/b.txt`), false);
  });
}

test('deep-path helpers: short paths go to the kernel as they are, long ones through a descriptor', (t) => {
  const base = deepTemp(t);
  inDeep(base, `printf %s 'x' > f`, true);
  const deepDir = Buffer.from(`${base}/${DEEP_REL}`);
  assert.ok(deepDir.length > 4096);
  assert.throws(() => fs.openSync(Buffer.concat([deepDir, Buffer.from('/f')]), 'r'), /ENAMETOOLONG/);
  const fd = openDeep(Buffer.concat([deepDir, Buffer.from('/f')]), fs.constants.O_RDONLY);
  try {
    assert.equal(fs.readFileSync(fd, 'utf8'), 'x');
  } finally {
    fs.closeSync(fd);
  }
  const reach = reachDir(deepDir);
  try {
    assert.equal(reach.deep, true);
    assert.deepEqual(fs.readdirSync(reach.self), ['f']);
    assert.equal(fs.lstatSync(reach.entry(Buffer.from('f'))).size, 1);
  } finally {
    reach.close();
  }
  const short = reachDir(Buffer.from(base));
  assert.equal(short.deep, false);
  assert.deepEqual(short.entry(Buffer.from('n')), Buffer.from(`${base}/n`));
  assert.ok(Buffer.byteLength(base) < DIRECT_MAX);
  // A missing part of a long path is the kernel's ENOENT, not a crash.
  assert.throws(() => openDeep(Buffer.concat([deepDir, Buffer.from('/nope/f')]), fs.constants.O_RDONLY), /ENOENT/);
});
