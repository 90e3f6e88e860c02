/**
 * The one bounded-concurrency helper of the pipeline, after node core's stream `map`
 * (lib/internal/streams/operators.js): pull-based (an item is taken from the source only when
 * there is room, so a fast source waits for slow work: backpressure), at most `concurrency`
 * items being worked on or finished-but-not-yet-taken at any time (memory stays bounded
 * whatever the source's size), results ordered like the input or in completion order, a
 * failure of one item delivered in its own slot (the run goes on), and an AbortSignal that
 * stops pulling at once. Runs on the calling thread; `fn` decides where the work happens.
 */

/** The outcome of one item: its value or its error, with the item and its input position. */
export type Settled<T, R> =
  | { readonly ok: true; readonly value: R; readonly input: T; readonly index: number }
  | { readonly ok: false; readonly error: unknown; readonly input: T; readonly index: number };

export interface BoundedMapOptions {
  /** Items in flight plus finished items not yet taken by the consumer (≥ 1). */
  readonly concurrency: number;
  /** true (default): yield in input order; false: yield as items finish. */
  readonly ordered?: boolean;
  /**
   * Abort: no item is pulled any more, the iteration throws the signal's reason, and the
   * signal passed to `fn` aborts so work in flight can stop early.
   */
  readonly signal?: AbortSignal;
}

/**
 * Map `source` through `fn` with at most `opts.concurrency` items in flight (see the module
 * comment). Errors thrown by `fn` are yielded as `{ ok: false }`; an error of the source itself
 * ends the iteration with that error. Breaking out of the loop stops pulling and closes the
 * source; work already started is not awaited.
 */
export async function* boundedMap<T, R>(
  source: Iterable<T> | AsyncIterable<T>,
  fn: (item: T, signal: AbortSignal) => Promise<R> | R,
  opts: BoundedMapOptions,
): AsyncGenerator<Settled<T, R>, void, undefined> {
  const limit = opts.concurrency;
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`concurrency must be a whole number ≥ 1: ${limit}`);
  const ordered = opts.ordered ?? true;
  const outer = opts.signal;
  outer?.throwIfAborted();

  const inner = new AbortController();
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onAbort = (): void => {
    inner.abort(outer?.reason);
    notify();
  };
  outer?.addEventListener('abort', onAbort, { once: true });

  const it: Iterator<T> | AsyncIterator<T> =
    Symbol.asyncIterator in source
      ? (source as AsyncIterable<T>)[Symbol.asyncIterator]()
      : (source as Iterable<T>)[Symbol.iterator]();
  let sourceDone = false;
  let nextIndex = 0;
  let active = 0;
  // Ordered: finished results by index, emitted from `emitIndex` on. Unordered: a FIFO.
  const byIndex = new Map<number, Settled<T, R>>();
  let emitIndex = 0;
  const fifo: Settled<T, R>[] = [];
  const buffered = (): number => (ordered ? byIndex.size : fifo.length);

  const start = (input: T): void => {
    const index = nextIndex++;
    active += 1;
    let p: Promise<R>;
    try {
      p = Promise.resolve(fn(input, inner.signal));
    } catch (error) {
      p = Promise.reject(error);
    }
    void p
      .then(
        (value): Settled<T, R> => ({ ok: true, value, input, index }),
        (error: unknown): Settled<T, R> => ({ ok: false, error, input, index }),
      )
      .then((s) => {
        active -= 1;
        if (ordered) byIndex.set(s.index, s);
        else fifo.push(s);
        notify();
      });
  };

  const takeReady = (): Settled<T, R> | undefined => {
    if (!ordered) return fifo.shift();
    const s = byIndex.get(emitIndex);
    if (s === undefined) return undefined;
    byIndex.delete(emitIndex);
    emitIndex += 1;
    return s;
  };

  const aborted = (): boolean => outer?.aborted === true;
  // A pull from a slow async source must not delay an abort.
  const abortPromise =
    outer === undefined
      ? undefined
      : new Promise<undefined>((resolve) => {
          if (outer.aborted) resolve(undefined);
          else outer.addEventListener('abort', () => resolve(undefined), { once: true });
        });
  const nextOrAbort = async (): Promise<IteratorResult<T> | undefined> => {
    const p = Promise.resolve(it.next());
    if (abortPromise === undefined) return p;
    p.catch(() => {});
    return Promise.race([p, abortPromise]);
  };

  try {
    for (;;) {
      if (aborted()) throw outer?.reason;
      // Hand out what is ready first, so the consumer (often the catalogue writer) keeps up.
      const ready = takeReady();
      if (ready !== undefined) {
        yield ready;
        continue;
      }
      if (!sourceDone && active + buffered() < limit) {
        const r = await nextOrAbort();
        if (aborted() || r === undefined) throw outer?.reason;
        if (r.done === true) sourceDone = true;
        else start(r.value);
        continue;
      }
      if (sourceDone && active === 0 && buffered() === 0) return;
      // Wait for an item to finish (or an abort).
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    outer?.removeEventListener('abort', onAbort);
    inner.abort(outer?.reason);
    if (!sourceDone) {
      sourceDone = true;
      // Close the source (runs its finally blocks). After an abort a pull may still be pending,
      // and an async generator's return() would wait for it: do not wait then.
      const closing = Promise.resolve(it.return?.());
      if (aborted()) closing.catch(() => {});
      else await closing;
    }
  }
}
