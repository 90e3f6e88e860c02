import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { ObjectChecker } from '../../src/disk/check-object.js';
import { tempDir } from '../helpers/tmp.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('the checker tells ok, truncated, grown, altered and missing apart, across buffer boundaries', (t) => {
  const dir = tempDir(t);
  const data = Buffer.alloc(10_000, 7);
  data[9_999] = 1;
  const hash = sha(data);
  const p = path.join(dir, hash);
  // A 4 KiB buffer: the object spans three reads.
  const c = new ObjectChecker(undefined, 4096);
  fs.writeFileSync(p, data);
  assert.deepEqual(c.check(p, hash, data.length), { status: 'ok', bytesRead: 10_000 });
  fs.writeFileSync(p, data.subarray(0, 5000));
  const short = c.check(p, hash, data.length);
  assert.equal(short.status, 'bad');
  assert.match(short.status === 'bad' ? short.problem : '', /5000 bytes instead of 10000/);
  fs.writeFileSync(p, Buffer.concat([data, Buffer.from('x')]));
  assert.equal(c.check(p, hash, data.length).status, 'bad');
  const altered = Buffer.from(data);
  altered[4096] = 0;
  fs.writeFileSync(p, altered);
  const bad = c.check(p, hash, data.length);
  assert.equal(bad.status, 'bad');
  assert.match(bad.status === 'bad' ? bad.problem : '', /hashes to/);
  assert.equal(bad.bytesRead, 20_000, 'read twice before being called bad');
  fs.rmSync(p);
  assert.equal(c.check(p, hash, data.length).status, 'missing');
});

test('a symlink in place of an object is never followed', (t) => {
  const dir = tempDir(t);
  const data = Buffer.from('content');
  const hash = sha(data);
  fs.writeFileSync(path.join(dir, 'elsewhere'), data);
  fs.symlinkSync(path.join(dir, 'elsewhere'), path.join(dir, hash));
  const r = new ObjectChecker().check(path.join(dir, hash), hash, data.length);
  assert.equal(r.status, 'bad');
  assert.match(r.status === 'bad' ? r.problem : '', /ELOOP/);
});
