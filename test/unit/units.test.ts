import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../src/core/errors.js';
import {
  allocatedSize,
  formatCount,
  formatDuration,
  parseDuration,
  parseRate,
  parseSize,
} from '../../src/core/units.js';

test('parseSize accepts decimal, binary and plain byte sizes', () => {
  assert.equal(parseSize('123456'), 123456);
  assert.equal(parseSize('500G'), 500e9);
  assert.equal(parseSize('7.4T'), 7.4e12);
  assert.equal(parseSize('1.5TiB'), 1.5 * 1024 ** 4);
  assert.equal(parseSize('64MiB'), 64 * 1024 * 1024);
  assert.equal(parseSize('10 kb'), 10_000);
});

test('parseSize refuses garbage with a UsageError naming the input', () => {
  for (const bad of ['', 'G', '12X', '-5G', '1.2.3', '5 GiBs']) {
    assert.throws(
      () => parseSize(bad),
      (e: unknown) => e instanceof UsageError && e.message.includes(`'${bad}'`),
    );
  }
});

test('parseRate takes sizes per second', () => {
  assert.equal(parseRate('50M'), 50e6);
  assert.equal(parseRate('20MB/s'), 20e6);
  assert.throws(() => parseRate('0'), UsageError);
});

test('parseDuration takes days, hours, minutes and combinations', () => {
  assert.equal(parseDuration('30d'), 30 * 86_400_000);
  assert.equal(parseDuration('12h'), 12 * 3_600_000);
  assert.equal(parseDuration('1h30m'), 90 * 60_000);
  assert.equal(parseDuration('45s'), 45_000);
  for (const bad of ['', '12', 'd', '3x', '1h 30']) assert.throws(() => parseDuration(bad), UsageError);
});

test('allocatedSize rounds up to 4 KiB and adds 4 KiB, as the Python distbackup counts', () => {
  assert.equal(allocatedSize(0), 4096);
  assert.equal(allocatedSize(1), 8192);
  assert.equal(allocatedSize(4096), 8192);
  assert.equal(allocatedSize(4097), 12288);
});

test('formatCount groups thousands exactly as en-US Intl does', () => {
  const samples = [0, -0, 1, 7, 12, 999, 1000, -1000, 12345, 123456, 1234567, -987654321, 2 ** 53 - 1, -(2 ** 53) + 1];
  for (let k = 0; k < 16; k++) samples.push(10 ** k - 1, 10 ** k, -(10 ** k) + 1);
  samples.push(1.5, 1234.5678, -0.25, 2 ** 60, Number.NaN, Number.POSITIVE_INFINITY);
  for (const n of samples) assert.equal(formatCount(n), n.toLocaleString('en-US'), String(n));
});

test('formatDuration writes seconds, minutes, hours, and days past two days', () => {
  assert.equal(formatDuration(12_400), '12s');
  assert.equal(formatDuration(185_000), '3m05s');
  assert.equal(formatDuration(3_720_000), '1h02m');
  assert.equal(formatDuration(47 * 3_600_000), '47h00m');
  assert.equal(formatDuration(3 * 86_400_000 + 4 * 3_600_000), '3d04h');
  assert.equal(formatDuration(-1), '--');
});
