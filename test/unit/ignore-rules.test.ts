import assert from 'node:assert/strict';
import { test } from 'node:test';
import { globToRegexSource, matchChain, parseRule, parseRules } from '../../src/sources/ignore-rules.js';

// [rule, base name, expected priority (0 = ignored) or undefined (no match)]
const TABLE: Array<[string, string | Buffer, number | undefined]> = [
  // literal without prefix (no *?[): whole name, exact
  ['cache', 'cache', 0],
  ['cache', 'cache2', undefined],
  ['cache', 'Cache', undefined],
  ['cache', 'my-cache', undefined],
  ['a.b', 'axb', undefined],
  // `!`×n = include at priority n
  ['!keep.txt', 'keep.txt', 1],
  ['!!keep.txt', 'keep.txt', 2],
  ['!!!*.raw', 'img.raw', 3],
  ['!! spaced', 'spaced', 2],
  // glob without prefix (has *?[)
  ['*.tmp', 'x.tmp', 0],
  ['*.tmp', 'x.tmp.gz', undefined],
  ['*.tmp', '.tmp', 0],
  ['file?.log', 'file1.log', 0],
  ['file?.log', 'file12.log', undefined],
  ['[abc]*', 'beta', 0],
  ['[abc]*', 'delta', undefined],
  ['[!abc]*', 'delta', 0],
  ['[!abc]*', 'alpha', undefined],
  ['[]x]', ']', 0],
  ['a[', 'a[', 0],
  ['*', 'anything at all', 0],
  ['*', 'new\nline', 0],
  // `:` = literal even with glob characters
  [':*.tmp', '*.tmp', 0],
  [':*.tmp', 'x.tmp', undefined],
  ['!:[x]', '[x]', 1],
  // `?` = glob even without glob characters (then exact)
  ['?core', 'core', 0],
  ['?core', 'core.1', undefined],
  ['?core*', 'core.1', 0],
  // `/` = regular expression, searched (not anchored)
  ['/^\\.#', '.#lock', 0],
  ['/~$', 'notes.txt~', 0],
  ['/tmp', 'my-tmp-file', 0],
  ['/^tmp$', 'my-tmp-file', undefined],
  ['!!/\\.(jpe?g|png)$', 'photo.JPG', undefined],
  ['!!/\\.(jpe?g|png)$', 'photo.jpeg', 2],
  // names that are not UTF-8 match literals byte for byte
  [':bad-\xff', Buffer.from([0x62, 0x61, 0x64, 0x2d, 0xff]), undefined],
];

test('each rule kind matches base names as the table says', () => {
  for (const [rule, name, expected] of TABLE) {
    const got = matchChain([parseRules([rule])], name);
    assert.equal(got, expected, `rule ${JSON.stringify(rule)} on ${JSON.stringify(String(name))}`);
  }
});

test('rule kinds are read from the prefix, else from the presence of *?[', () => {
  assert.equal(parseRule('x').kind, 'literal');
  assert.equal(parseRule('x*').kind, 'glob');
  assert.equal(parseRule(':x*').kind, 'literal');
  assert.equal(parseRule('?x').kind, 'glob');
  assert.equal(parseRule('/x').kind, 'regex');
  assert.equal(parseRule('!!/x').priority, 2);
  assert.equal(parseRule('!!/x').pattern, 'x');
});

test('the first matching rule of a list wins', () => {
  const rules = parseRules(['!!important.tmp', '*.tmp', '!*']);
  assert.equal(matchChain([rules], 'important.tmp'), 2);
  assert.equal(matchChain([rules], 'other.tmp'), 0);
  assert.equal(matchChain([rules], 'other.txt'), 1);
  const reversed = parseRules(['*.tmp', '!!important.tmp']);
  assert.equal(matchChain([reversed], 'important.tmp'), 0);
});

test('the nearest folder rules come before inherited ones', () => {
  const parent = parseRules(['*.log']);
  const child = parseRules(['!!!debug.log']);
  assert.equal(matchChain([child, parent], 'debug.log'), 3);
  assert.equal(matchChain([child, parent], 'other.log'), 0);
  assert.equal(matchChain([parent], 'debug.log'), 0);
  assert.equal(matchChain([], 'debug.log'), undefined);
});

test('a bad regular expression or glob class is a usage error naming the rule', () => {
  assert.throws(() => parseRule('/('), /ignore rule '\/\(': invalid regex/);
  assert.throws(() => parseRule('[z-a]'), /ignore rule '\[z-a\]': invalid glob/);
});

test('globs translate like fnmatch', () => {
  assert.equal(globToRegexSource('a*b'), '^(?:a.*b)$');
  assert.equal(globToRegexSource('a.b'), '^(?:a\\.b)$');
  assert.equal(globToRegexSource('[!x]'), '^(?:[^x])$');
});
