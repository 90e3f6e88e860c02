/**
 * SQLite failing under distbackup (RELIABILITY.md failure modes 10 and 12): an error that SQLite
 * raises on the catalogue copy of a disk, or on the home catalogue, reaches the user as one line
 * naming the file and the cause (SPEC §3), never as a bare "disk I/O error" or "database or disk
 * is full".
 * - the disk is a tmpfs with room for the manifest and the restore script but not for the
 *   catalogue copy: VACUUM INTO fails with SQLITE_FULL; the error names the copy, nothing is
 *   left beside it, and the disk's previous copy (none here) is not replaced by a torn one;
 * - the home catalogue's pages after the first are overwritten: `status` ends with exit 1 and
 *   one line naming distbackup.sqlite and SQLite's cause.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { CATALOGUE_FILE, openCatalog } from '../../src/catalog/db.js';
import { DistbackupError } from '../../src/core/errors.js';
import { DISK_CATALOGUE, DISK_MANIFEST } from '../../src/disk/layout.js';
import { writeDiskCatalogue } from '../../src/disks/disk-catalogue.js';
import { cli, countFault, countViolations, errorLines } from '../helpers/faults.js';
import { mountTmpfs, sweepStaleMounts } from '../helpers/mounts.js';
import { addPoolDisk, catalogueSource, makeSourceTree } from '../helpers/pool.js';
import { tempDir } from '../helpers/tmp.js';

sweepStaleMounts();

const FAULT = 'SQLite errors named';

test('the catalogue copy does not fit on the disk (SQLITE_FULL): one line naming the copy, nothing left beside it', (t) => {
  const m = mountTmpfs(t, { sizeBytes: 64 << 10 });
  if (m === null) return;
  const home = tempDir(t);
  const src = path.join(home, 'src');
  makeSourceTree(src, { files: 40, seed: 7 });
  const cat = openCatalog(path.join(home, 'data'));
  t.after(() => cat.close());
  catalogueSource(cat, '/data', src);
  const disk = path.join(m.dir, 'backup');
  fs.mkdirSync(disk);
  addPoolDisk(cat, 'small', disk);
  const v: string[] = [];
  let caught: unknown;
  try {
    writeDiskCatalogue(cat, disk);
  } catch (err) {
    caught = err;
  }
  countFault(FAULT, 'tmpfs of 64 KiB: the manifest fits, the VACUUM INTO of the catalogue copy does not');
  const copy = path.join(disk, DISK_CATALOGUE);
  if (!(caught instanceof DistbackupError)) v.push(`not a DistbackupError: ${String(caught)}`);
  else {
    const want = new RegExp(
      `^${copy.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot write the catalogue copy: .*SQLITE_`,
    );
    if (!want.test(caught.message)) v.push(`the error does not name the copy and SQLite's code: ${caught.message}`);
    if (caught.message.includes('\n')) v.push(`more than one line: ${caught.message}`);
    if (caught.path !== copy) v.push(`path ${caught.path}, expected ${copy}`);
  }
  if (!fs.existsSync(path.join(disk, DISK_MANIFEST))) v.push('the manifest was not written before the copy');
  const left = fs.readdirSync(disk).filter((n) => n.startsWith(`.${DISK_CATALOGUE}`) || n === DISK_CATALOGUE);
  if (left.length > 0) v.push(`left on the disk: ${left.join(', ')}`);
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});

test('a home catalogue whose pages are overwritten: status ends with exit 1 and one line naming the file', (t) => {
  const data = tempDir(t);
  const src = path.join(data, 'src');
  makeSourceTree(src, { files: 300, seed: 11 });
  const cat = openCatalog(data);
  catalogueSource(cat, '/data', src);
  cat.db.pragma('wal_checkpoint(TRUNCATE)');
  cat.close();
  const file = path.join(data, CATALOGUE_FILE);
  // Page 1 (the header and the schema) stays; every later page becomes garbage, as a disk that
  // returned another sector's bytes would leave it.
  const fd = fs.openSync(file, 'r+');
  const size = fs.fstatSync(fd).size;
  const pageSize = 4096;
  assert.ok(size > 4 * pageSize, `the catalogue has ${size} bytes only`);
  fs.writeSync(fd, Buffer.alloc(size - 2 * pageSize, 0xa5), 0, size - 2 * pageSize, 2 * pageSize);
  fs.closeSync(fd);
  const r = cli(data, ['status']);
  countFault(FAULT, 'home catalogue pages 3.. overwritten with 0xa5');
  const v: string[] = [];
  if (r.code !== 1) v.push(`exit ${r.code}, expected 1: ${r.stderr.slice(0, 300)}`);
  const lines = errorLines(r.stderr);
  if (lines.length !== 1) v.push(`${lines.length} error lines: ${r.stderr.slice(0, 400)}`);
  else if (!lines[0]?.includes(`${file}:`) || !/SQLITE_|malformed/.test(lines[0] ?? ''))
    v.push(`the line does not name ${file} and the cause: ${lines[0]}`);
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});
