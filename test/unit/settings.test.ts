import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  applyChange,
  enterChild,
  enterFolder,
  fileSettings,
  parsePathSettings,
  rootState,
} from '../../src/sources/path-settings.js';

test('settings are validated: unknown keys, bad types and bad rules are refused', () => {
  assert.deepEqual(parsePathSettings({ priority: 2, maxcopies: 'inf', rules: ['*.tmp'] }, '/x'), {
    priority: 2,
    maxcopies: 'inf',
    rules: ['*.tmp'],
  });
  assert.throws(() => parsePathSettings({ colour: 1 }, '/x'), /\/x: unknown setting 'colour'/);
  assert.throws(() => parsePathSettings({ priority: -1 }, '/x'), /priority must be a whole number/);
  assert.throws(() => parsePathSettings({ priority: 1.5 }, '/x'), /priority must be a whole number/);
  assert.throws(() => parsePathSettings({ lock: 'yes' }, '/x'), /lock must be true or false/);
  assert.throws(() => parsePathSettings({ rules: ['/('] }, '/x'), /invalid regex/);
  assert.throws(() => parsePathSettings([], '/x'), /must be a JSON object/);
  // Python's legacy keys are dropped, defaults dropped.
  assert.deepEqual(parsePathSettings({ include: [], exclude: [], lock: false, hide: false }, '/x'), {});
});

test('applyChange: set, inherit (null), append rules without duplicates, booleans', () => {
  let s = applyChange({}, { priority: 3, rules: ['*.tmp'] }, false);
  assert.deepEqual(s, { priority: 3, rules: ['*.tmp'] });
  s = applyChange(s, { rules: ['*.tmp', '*.bak'], appendRules: true }, false);
  assert.deepEqual(s.rules, ['*.tmp', '*.bak']);
  s = applyChange(s, { rules: ['x'] }, false);
  assert.deepEqual(s.rules, ['x']);
  s = applyChange(s, { priority: null, lock: true, hide: true }, false);
  assert.deepEqual(s, { rules: ['x'], lock: true, hide: true });
  s = applyChange(s, { lock: false, hide: false, rules: [] }, false);
  assert.deepEqual(s, {});
  // follow false is stored only to override an inherited true
  assert.deepEqual(applyChange({}, { follow_symlinks: false }, false), {});
  assert.deepEqual(applyChange({}, { follow_symlinks: false }, true), { follow_symlinks: false });
  assert.deepEqual(applyChange({ priority: 2 }, { replace: { hide: true } }, false), { hide: true });
});

test('priority, caps and targets are inherited; the nearest setting wins', () => {
  const root = enterFolder(rootState(), '/', { priority: 2, maxcopies: 3 });
  const a = enterChild(root, 'a', '/a', { mincopies: 2 });
  const b = enterChild(a, 'b', '/a/b', { priority: 5, maxcopies: 'inf' });
  assert.deepEqual([a.priority, a.minCopies, a.maxCopies], [2, 2, 3]);
  assert.deepEqual([b.priority, b.minCopies, b.maxCopies], [5, 2, null]);
  assert.deepEqual(fileSettings(b, 'f.txt'), { priority: 5, minCopies: 2, maxCopies: null, exclusion: null });
});

test('rules are inherited, nearest first; noinherit cuts them; an include rule gives its priority below', () => {
  const root = enterFolder(rootState(), '/', { rules: ['*.tmp', '!!keep'] });
  const a = enterChild(root, 'a', '/a', { rules: ['!!!*.tmp'] });
  assert.equal(fileSettings(root, 'x.tmp').priority, 0);
  assert.equal(fileSettings(a, 'x.tmp').priority, 3);
  const cut = enterChild(a, 'c', '/a/c', { noinherit: true });
  assert.equal(fileSettings(cut, 'x.tmp').priority, 1);
  assert.equal(fileSettings(cut, 'x.tmp').exclusion, null);
  // a folder named by an include rule passes its priority down
  const keep = enterChild(root, 'keep', '/keep', undefined);
  assert.equal(keep.priority, 2);
  assert.equal(fileSettings(keep, 'f').priority, 2);
  // its own priority setting wins over the rule
  const keep2 = enterChild(root, 'keep', '/keep', { priority: 7 });
  assert.equal(keep2.priority, 7);
  // an ignored folder name excludes everything below
  const tmpDir = enterChild(root, 'd.tmp', '/d.tmp', { priority: 9 });
  assert.equal(tmpDir.excluded?.reason, 'ignore-rule');
  assert.equal(fileSettings(tmpDir, 'f').priority, 0);
});

test('lock and hide are inherited; lock at a folder wins over its own hide', () => {
  const root = enterFolder(rootState(), '/', undefined);
  const locked = enterChild(root, 'nas', '/nas', { lock: true, hide: true });
  assert.equal(locked.lockedAt, '/nas');
  assert.equal(locked.excluded, null);
  const below = enterChild(locked, 'x', '/nas/x', undefined);
  assert.equal(below.lockedAt, '/nas');
  const hidden = enterChild(root, 'cache', '/cache', { hide: true });
  assert.equal(hidden.excluded?.reason, 'hide');
  assert.equal(enterChild(hidden, 'y', '/cache/y', { hide: false }).excluded?.at, '/cache');
  const zero = enterChild(root, 'z', '/z', { priority: 0 });
  assert.equal(zero.excluded?.reason, 'priority-0');
});

test('follow and min copies come from the mapping at its root unless a setting says otherwise', () => {
  const root = enterFolder(rootState(), '/', undefined);
  const src = enterChild(root, 'photos', '/photos', undefined, { minCopies: 3, follow: true });
  assert.deepEqual([src.minCopies, src.follow], [3, true]);
  const sub = enterChild(src, 'raw', '/photos/raw', { follow_symlinks: false, mincopies: 1 });
  assert.deepEqual([sub.minCopies, sub.follow], [1, false]);
});
