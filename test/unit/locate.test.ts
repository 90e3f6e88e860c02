import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { RefusedError, UsageError } from '../../src/core/errors.js';
import { writeDiskIdentity } from '../../src/disk/disk-json.js';
import { defaultDiskSize, devToMajorMinor, mountOf, readMounts } from '../../src/disk/fsinfo.js';
import { type KnownDisk, locateDisk } from '../../src/disk/locate.js';
import { tempDir } from '../helpers/tmp.js';

const U1 = '11111111-1111-4111-8111-111111111111';
const U2 = '22222222-2222-4222-8222-222222222222';
const CAT = '33333333-3333-4333-8333-333333333333';

function disk(root: string, uuid: string, name: string, catalogue?: string): void {
  fs.mkdirSync(root, { recursive: true });
  writeDiskIdentity(root, {
    format: 1,
    uuid,
    name,
    created: new Date(0).toISOString(),
    generation: 0,
    ...(catalogue === undefined ? {} : { catalogue }),
  });
}

function known(name: string, uuid: string, mountPath: string | null): KnownDisk {
  return { name, uuid, mountPath, relPath: null, fsUuid: null };
}

test('mountinfo lines parse, octal escapes included', (t) => {
  const dir = tempDir(t);
  const f = path.join(dir, 'mountinfo');
  fs.writeFileSync(
    f,
    [
      '26 1 254:0 / / rw,relatime - ext4 /dev/vda rw',
      '40 26 8:17 / /media/my\\040disk rw,relatime shared:1 - exfat /dev/sdb1 rw',
      '',
    ].join('\n'),
  );
  const m = readMounts(f);
  assert.equal(m.length, 2);
  assert.deepEqual(m[1], {
    majorMinor: '8:17',
    root: '/',
    mountPoint: '/media/my disk',
    fsType: 'exfat',
    source: '/dev/sdb1',
  });
  assert.equal(devToMajorMinor(0x811), '8:17');
  assert.equal(devToMajorMinor(254 * 256), '254:0');
  assert.equal(mountOf('/', m)?.mountPoint, '/');
});

test('default size: filesystem size minus min(5 %, 10 GB)', () => {
  assert.equal(defaultDiskSize(100e9), 95e9);
  assert.equal(defaultDiskSize(4e12), 4e12 - 10e9);
});

test('--disk PATH: the json decides; a wrong NAME, an unregistered disk and another catalogue are refused', (t) => {
  const dir = tempDir(t);
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  disk(a, U1, 'a', CAT);
  disk(b, U2, 'b', '44444444-4444-4444-8444-444444444444');
  const reg = [known('a', U1, a), known('b', U2, b)];
  assert.equal(locateDisk(reg, { diskPath: a, catalogueId: CAT }).disk.name, 'a');
  assert.throws(
    () => locateDisk(reg, { diskPath: a, name: 'b' }),
    (e: unknown) => e instanceof RefusedError && /wrong disk/.test(e.message),
  );
  assert.throws(
    () => locateDisk(reg, { diskPath: b, catalogueId: CAT }),
    (e: unknown) => e instanceof RefusedError && /another catalogue/.test(e.message),
  );
  assert.throws(
    () => locateDisk([known('a', U1, a)], { diskPath: b }),
    (e: unknown) => e instanceof RefusedError && /not registered/.test(e.message),
  );
  assert.throws(() => locateDisk(reg, { diskPath: path.join(dir, 'nothing') }), RefusedError);
  assert.throws(() => locateDisk(reg, { name: 'zzz' }), UsageError);
});

test('by NAME: the last path, else refused naming the disk found there instead', (t) => {
  const dir = tempDir(t);
  const a = path.join(dir, 'a');
  disk(a, U1, 'a');
  assert.equal(locateDisk([known('a', U1, a)], { name: 'a' }).root, a);
  // Another disk now sits where 'b' was last seen.
  assert.throws(
    () => locateDisk([known('b', U2, a)], { name: 'b' }),
    (e: unknown) => e instanceof RefusedError && /not connected/.test(e.message) && /holds disk 'a'/.test(e.message),
  );
  // Neither name nor path: the only connected disk.
  assert.equal(locateDisk([known('a', U1, a), known('b', U2, path.join(dir, 'gone'))], {}).disk.name, 'a');
  disk(path.join(dir, 'b'), U2, 'b');
  assert.throws(() => locateDisk([known('a', U1, a), known('b', U2, path.join(dir, 'b'))], {}), UsageError);
});

test('by NAME: found through the relative path under a mount point', (t) => {
  const dir = tempDir(t);
  const a = path.join(dir, 'moved', 'a');
  disk(a, U1, 'a');
  // Registered at a path that no longer exists, with its path relative to "/".
  const rel = path.relative('/', a);
  const found = locateDisk([{ name: 'a', uuid: U1, mountPath: '/nonexistent/a', relPath: rel, fsUuid: null }], {
    name: 'a',
  });
  assert.equal(found.root, a);
});
