import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import {
  formatManifestLine,
  MANIFEST_HEADER,
  type ManifestEntry,
  parseManifestLine,
  writeManifest,
} from '../../src/disk/manifest.js';
import { tempDir } from '../helpers/tmp.js';

const H = 'ab'.repeat(32);

test('manifest lines are tab-separated with the path percent-encoded, and parse back byte for byte', () => {
  const paths = [
    Buffer.from('/a/plain.txt'),
    Buffer.from('/tab\there/new\nline/cr\rx'),
    Buffer.from('/100%/ok'),
    Buffer.concat([Buffer.from('/bad-'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('.bin')]),
    Buffer.from('/café ünïcode'),
  ];
  for (const vpath of paths) {
    const e: ManifestEntry = { hash: H, sizeBytes: 12345, mtimeS: 1_700_000_000, mode: 0o100644, vpath };
    const line = formatManifestLine(e);
    assert.equal(line.split('\t').length, 5);
    assert.ok(!line.includes('\n') && !line.includes('\r'));
    const back = parseManifestLine(line);
    assert.ok(back !== undefined);
    assert.deepEqual(back.vpath, vpath);
    assert.equal(back.mode, 0o644);
    assert.equal(back.sizeBytes, 12345);
  }
  assert.equal(
    formatManifestLine({ hash: H, sizeBytes: 1, mtimeS: 2, mode: 0o100755, vpath: Buffer.from('/x%y') }),
    `${H}\t1\t2\t755\t/x%25y`,
  );
});

test('the header, blank and malformed lines do not parse as entries', () => {
  assert.equal(parseManifestLine(MANIFEST_HEADER), undefined);
  assert.equal(parseManifestLine(''), undefined);
  assert.equal(parseManifestLine(`${H}\t1\t2\t644`), undefined);
  assert.equal(parseManifestLine(`${H.toUpperCase()}\t1\t2\t644\t/a`), undefined);
  assert.equal(parseManifestLine(`${H}\t1\t2\t9\t/a`), undefined);
});

test('writeManifest replaces the file atomically and leaves no temp file', (t) => {
  const dir = tempDir(t);
  const target = path.join(dir, 'distbackup-manifest.txt');
  fs.writeFileSync(target, 'old\n');
  const entries = Array.from({ length: 3000 }, (_v, i) => ({
    hash: H,
    sizeBytes: i,
    mtimeS: i,
    mode: 0o644,
    vpath: Buffer.from(`/f/${'x'.repeat(300)}${i}`),
  }));
  assert.equal(writeManifest(target, entries), 3000);
  const lines = fs.readFileSync(target, 'utf8').split('\n');
  assert.equal(lines[0], MANIFEST_HEADER);
  assert.equal(lines.length, 3002);
  assert.deepEqual(fs.readdirSync(dir), ['distbackup-manifest.txt']);
  // A failing check before the rename keeps the old file.
  assert.throws(() =>
    writeManifest(target, entries.slice(0, 1), () => {
      throw new Error('disk vanished');
    }),
  );
  assert.equal(fs.readFileSync(target, 'utf8').split('\n').length, 3002);
  assert.deepEqual(fs.readdirSync(dir), ['distbackup-manifest.txt']);
});
