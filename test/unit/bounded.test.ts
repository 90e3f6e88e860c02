import assert from 'node:assert/strict';
import { test } from 'node:test';
import { boundedMap, type Settled } from '../../src/pipeline/bounded.js';

/** A promise resolved from outside, so tests order completions without timers. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

async function collect<T, R>(it: AsyncIterable<Settled<T, R>>): Promise<Settled<T, R>[]> {
  const out: Settled<T, R>[] = [];
  for await (const s of it) out.push(s);
  return out;
}

test('ordered map keeps input order whatever the completion order', async () => {
  const gates = Array.from({ length: 6 }, () => deferred());
  const it = boundedMap(
    [0, 1, 2, 3, 4, 5],
    async (i) => {
      await gates[i]?.promise;
      return i * 10;
    },
    { concurrency: 6 },
  );
  const result = collect(it);
  await tick();
  for (const i of [5, 3, 1, 4, 0, 2]) gates[i]?.resolve();
  const out = await result;
  assert.deepEqual(
    out.map((s) => (s.ok ? s.value : -1)),
    [0, 10, 20, 30, 40, 50],
  );
  assert.deepEqual(
    out.map((s) => s.index),
    [0, 1, 2, 3, 4, 5],
  );
});

test('unordered map yields in completion order', async () => {
  const gates = Array.from({ length: 4 }, () => deferred());
  const it = boundedMap(
    [0, 1, 2, 3],
    async (i) => {
      await gates[i]?.promise;
      return i;
    },
    { concurrency: 4, ordered: false },
  );
  const seen: number[] = [];
  const done = (async () => {
    for await (const s of it) if (s.ok) seen.push(s.value);
  })();
  await tick();
  for (const i of [2, 0, 3, 1]) {
    gates[i]?.resolve();
    await tick();
    await tick();
  }
  await done;
  assert.deepEqual(seen, [2, 0, 3, 1]);
});

test('never more than `concurrency` in flight, and the source is pulled lazily', async () => {
  let active = 0;
  let maxActive = 0;
  let pulled = 0;
  function* source(): Generator<number> {
    for (let i = 0; i < 50; i++) {
      pulled += 1;
      yield i;
    }
  }
  const pullsAtFirstResult: number[] = [];
  const it = boundedMap(
    source(),
    async (i) => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      await tick();
      active -= 1;
      return i;
    },
    { concurrency: 3 },
  );
  const out: number[] = [];
  for await (const s of it) {
    if (out.length === 0) pullsAtFirstResult.push(pulled);
    if (s.ok) out.push(s.value);
  }
  assert.equal(maxActive, 3);
  assert.ok((pullsAtFirstResult[0] ?? 99) <= 3, `pulled ${pullsAtFirstResult[0]} before the first result`);
  assert.deepEqual(
    out,
    Array.from({ length: 50 }, (_, i) => i),
  );
});

test('ordered: a slow head item bounds what is buffered behind it', async () => {
  const head = deferred();
  let started = 0;
  const it = boundedMap(
    Array.from({ length: 20 }, (_, i) => i),
    async (i) => {
      started += 1;
      if (i === 0) await head.promise;
      return i;
    },
    { concurrency: 4 },
  );
  const result = collect(it);
  for (let k = 0; k < 10; k++) await tick();
  assert.equal(started, 4, 'three finished items wait behind the head; nothing more is started');
  head.resolve();
  const out = await result;
  assert.equal(out.length, 20);
  assert.equal(started, 20);
});

test('an error stays in its slot and the run goes on', async () => {
  const out = await collect(
    boundedMap(
      [1, 2, 3, 4],
      (i) => {
        if (i === 2) throw new Error('sync failure');
        if (i === 3) return Promise.reject(new Error('async failure'));
        return i;
      },
      { concurrency: 2 },
    ),
  );
  assert.deepEqual(
    out.map((s) => (s.ok ? s.value : (s.error as Error).message)),
    [1, 'sync failure', 'async failure', 4],
  );
  assert.deepEqual(
    out.map((s) => s.input),
    [1, 2, 3, 4],
  );
});

test('an error of the source ends the iteration with that error', async () => {
  async function* source(): AsyncGenerator<number> {
    yield 1;
    throw new Error('readdir failed');
  }
  await assert.rejects(collect(boundedMap(source(), async (i) => i, { concurrency: 2 })), /readdir failed/);
});

test('abort stops pulling, rejects the iteration and aborts the signal given to the work', async () => {
  const ac = new AbortController();
  let pulled = 0;
  let workSignalAborted = false;
  const never = deferred();
  function* source(): Generator<number> {
    for (let i = 0; i < 1000; i++) {
      pulled += 1;
      yield i;
    }
  }
  const it = boundedMap(
    source(),
    async (i, signal) => {
      if (i === 1) {
        signal.addEventListener('abort', () => {
          workSignalAborted = true;
        });
        await never.promise;
      }
      return i;
    },
    { concurrency: 2, signal: ac.signal },
  );
  const seen: number[] = [];
  const run = (async () => {
    for await (const s of it) {
      if (s.ok) seen.push(s.value);
      if (s.ok && s.value === 0) ac.abort(new Error('stop'));
    }
  })();
  await assert.rejects(run, /stop/);
  assert.deepEqual(seen, [0]);
  assert.ok(pulled <= 3, `pulled ${pulled}`);
  assert.equal(workSignalAborted, true);
});

test('abort also interrupts a pull from a slow async source', async () => {
  const ac = new AbortController();
  const gate = deferred();
  async function* source(): AsyncGenerator<number> {
    yield 1;
    await gate.promise;
    yield 2;
  }
  const run = collect(boundedMap(source(), async (i) => i, { concurrency: 1, signal: ac.signal }));
  for (let k = 0; k < 5; k++) await tick();
  ac.abort(new Error('cancelled'));
  await assert.rejects(run, /cancelled/);
  gate.resolve();
});

test('an already aborted signal throws before pulling anything', async () => {
  let pulled = 0;
  function* source(): Generator<number> {
    pulled += 1;
    yield 1;
  }
  const it = boundedMap(source(), async (i) => i, { concurrency: 1, signal: AbortSignal.abort(new Error('early')) });
  await assert.rejects(collect(it), /early/);
  assert.equal(pulled, 0);
});

test('breaking out of the loop closes the source', async () => {
  let closed = false;
  function* source(): Generator<number> {
    try {
      for (let i = 0; ; i++) yield i;
    } finally {
      closed = true;
    }
  }
  for await (const s of boundedMap(source(), async (i) => i, { concurrency: 4 })) {
    if (s.ok && s.value === 2) break;
  }
  assert.equal(closed, true);
});

test('concurrency must be a whole number of at least 1', async () => {
  await assert.rejects(collect(boundedMap([1], async (i) => i, { concurrency: 0 })), RangeError);
  await assert.rejects(collect(boundedMap([1], async (i) => i, { concurrency: 1.5 })), RangeError);
});

test('an empty source ends at once', async () => {
  assert.deepEqual(await collect(boundedMap([], async (i: number) => i, { concurrency: 3 })), []);
});
