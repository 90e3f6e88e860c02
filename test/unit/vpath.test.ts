import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../src/core/errors.js';
import {
  normalizeVpath,
  percentDecode,
  percentEncode,
  subtreeRange,
  vpathContains,
  vpathJoin,
  vpathParent,
} from '../../src/core/vpath.js';

test('normalizeVpath cleans slashes and refuses relative paths and dot parts', () => {
  assert.equal(normalizeVpath('/photos//2024/'), '/photos/2024');
  assert.equal(normalizeVpath('/'), '/');
  for (const bad of ['photos', '/a/../b', '/a/./b', '']) assert.throws(() => normalizeVpath(bad), UsageError);
});

test('vpathContains matches whole components only', () => {
  assert.ok(vpathContains('/videos', '/videos/stream'));
  assert.ok(vpathContains('/videos', '/videos'));
  assert.ok(!vpathContains('/videos', '/videos2'));
  assert.ok(vpathContains('/', '/anything'));
});

test('vpathJoin and vpathParent work on bytes, including non-UTF-8 names', () => {
  const name = Buffer.from([0x66, 0xff, 0x0a]);
  const p = vpathJoin('/a', name);
  assert.deepEqual(p, Buffer.concat([Buffer.from('/a/'), name]));
  assert.deepEqual(vpathParent(p), Buffer.from('/a'));
  assert.deepEqual(vpathJoin('/', 'x'), Buffer.from('/x'));
  assert.deepEqual(vpathParent(Buffer.from('/x')), Buffer.from('/'));
});

test('subtreeRange bounds exactly the paths below a prefix', () => {
  const { lo, hi } = subtreeRange('/a');
  const inside = [Buffer.from('/a/b'), Buffer.from('/a/\xff', 'latin1'), Buffer.from('/a/')];
  const outside = [Buffer.from('/a'), Buffer.from('/a-b'), Buffer.from('/ab'), Buffer.from('/b')];
  for (const p of inside) assert.ok(Buffer.compare(p, lo) >= 0 && Buffer.compare(p, hi) < 0, p.toString('latin1'));
  for (const p of outside) assert.ok(!(Buffer.compare(p, lo) >= 0 && Buffer.compare(p, hi) < 0), p.toString('latin1'));
});

test('percentEncode round-trips tabs, newlines, percent and invalid UTF-8', () => {
  const raw = Buffer.concat([Buffer.from('/a\tb\nc%d café '), Buffer.from([0xff, 0xfe]), Buffer.from('€')]);
  const enc = percentEncode(raw);
  assert.ok(!/[\t\n]/.test(enc));
  assert.ok(enc.includes('%09') && enc.includes('%0A') && enc.includes('%25') && enc.includes('%FF%FE'));
  assert.ok(enc.includes('café') && enc.includes('€'));
  assert.deepEqual(percentDecode(enc), raw);
});
