import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ThrottleClock, TokenBucket } from '../../src/pipeline/throttle.js';

/** A clock that only moves when the bucket sleeps (or the test advances it). */
function fakeClock(): ThrottleClock & { t: number; slept: number } {
  const c = {
    t: 0,
    slept: 0,
    now: () => c.t,
    sleep: async (ms: number) => {
      c.t += ms;
      c.slept += ms;
    },
  };
  return c;
}

test('the mean rate holds whatever the chunk sizes (debt is slept off)', async () => {
  const clock = fakeClock();
  const rate = 20e6;
  const b = new TokenBucket(rate, { clock, burstBytes: 64 * 1024 });
  let total = 0;
  const sizes = [1, 4096, 1 << 20, 7 << 20, 333, 65536, 3 << 20];
  for (let i = 0; i < 200; i++) {
    const n = sizes[i % sizes.length] ?? 1;
    await b.take(n);
    total += n;
  }
  const seconds = clock.t / 1000;
  const achieved = total / seconds;
  assert.ok(Math.abs(achieved - rate) / rate < 0.01, `achieved ${achieved} B/s`);
});

test('the rate can change while running', async () => {
  const clock = fakeClock();
  const b = new TokenBucket(10e6, { clock, burstBytes: 1 });
  for (let i = 0; i < 10; i++) await b.take(1e6);
  const t1 = clock.t;
  b.setRate(1e6, 1);
  for (let i = 0; i < 10; i++) await b.take(1e6);
  const t2 = clock.t - t1;
  assert.ok(Math.abs(t1 - 1000) < 2, `10 MB at 10 MB/s took ${t1} ms`);
  assert.ok(Math.abs(t2 - 10_000) < 2, `10 MB at 1 MB/s took ${t2} ms`);
  assert.equal(b.rateBytesPerS, 1e6);
});

test('idle time refills up to the burst only', async () => {
  const clock = fakeClock();
  const b = new TokenBucket(1e6, { clock, burstBytes: 100_000 });
  clock.t += 60_000; // a minute idle
  await b.take(100_000);
  assert.equal(clock.slept, 0);
  await b.take(1_000_000);
  assert.ok(Math.abs(clock.slept - 1000) < 1);
});

test('a rate of 0 or less is refused', () => {
  assert.throws(() => new TokenBucket(0), RangeError);
  assert.throws(() => new TokenBucket(-5), RangeError);
});

test('a short copy at the default burst averages no more than the limit: the bucket starts empty', async () => {
  const clock = fakeClock();
  const rate = 50e6;
  const b = new TokenBucket(rate, { clock });
  let total = 0;
  while (total < 100e6) {
    await b.take(1 << 20);
    total += 1 << 20;
    clock.t += 1; // the copy itself takes time too
  }
  const achieved = total / (clock.t / 1000);
  assert.ok(achieved <= rate * 1.01, `achieved ${(achieved / 1e6).toFixed(1)} MB/s at a limit of 50 MB/s`);
});
