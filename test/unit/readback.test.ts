/**
 * `--verify readback`'s reads (pipeline/copy-io.ts readBackHashes): several files at once, each
 * read in order through page-aligned slots with O_DIRECT where the filesystem allows it. Real
 * files in a temp folder (and on a tmpfs when one can be mounted): every hash is the file's,
 * in the order asked, whatever the width and whatever the size against the 1 MiB slot; a file
 * that cannot be read fails alone, with its errno, and the others are still checked.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { readBackHashes } from '../../src/pipeline/copy-io.js';
import { mountTmpfsQuiet } from '../helpers/mounts.js';
import { tempDir } from '../helpers/tmp.js';

const SIZES = [0, 1, 4095, 4096, 65_537, 1024 * 1024, 1024 * 1024 + 3, 3 * 1024 * 1024 + 511];

function files(dir: string): { paths: string[]; hashes: string[] } {
  const paths: string[] = [];
  const hashes: string[] = [];
  for (const [i, size] of SIZES.entries()) {
    const bytes = randomBytes(size);
    const p = path.join(dir, `f${i}`);
    fs.writeFileSync(p, bytes);
    paths.push(p);
    hashes.push(createHash('sha256').update(bytes).digest('hex'));
  }
  return { paths, hashes };
}

test('every file hashes to its content, in the order asked, at any width', async (t) => {
  const dirs = [tempDir(t)];
  const tmpfs = mountTmpfsQuiet(t, 64 * 1024 * 1024);
  if (tmpfs !== null) dirs.push(tmpfs.dir);
  for (const dir of dirs) {
    const { paths, hashes } = files(dir);
    for (const width of [1, 3, 8, 64]) {
      const got = await readBackHashes(paths, width);
      assert.equal(got.length, paths.length);
      for (const [i, r] of got.entries()) {
        assert.ok(r.ok, `${dir} width ${width} file ${i}: ${r.ok ? '' : String(r.error)}`);
        assert.equal(r.hash, hashes[i], `${dir} width ${width}: file ${i} of ${SIZES[i]} bytes`);
      }
    }
  }
  assert.deepEqual(await readBackHashes([], 8), []);
});

test('a file that cannot be read fails alone, with its errno; the others are checked', async (t) => {
  const dir = tempDir(t);
  const { paths, hashes } = files(dir);
  const missing = path.join(dir, 'gone');
  const folder = path.join(dir, 'folder');
  fs.mkdirSync(folder);
  const list = [paths[2] as string, missing, paths[6] as string, folder, paths[0] as string];
  const got = await readBackHashes(list, 2);
  assert.equal(got.length, 5);
  const [a, b, c, d, e] = got;
  assert.ok(a?.ok && a.hash === hashes[2]);
  assert.ok(b !== undefined && !b.ok);
  assert.equal((b.error as NodeJS.ErrnoException).code, 'ENOENT');
  assert.ok(c?.ok && c.hash === hashes[6]);
  assert.ok(d !== undefined && !d.ok, 'a folder is not read as a file');
  assert.ok(['EISDIR', 'EINVAL'].includes((d.error as NodeJS.ErrnoException).code ?? ''));
  assert.ok(e?.ok && e.hash === hashes[0]);
});
