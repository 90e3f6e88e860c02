/**
 * A token bucket over bytes (`--bwlimit`). `take(n)` always grants at once and records a debt
 * when the bucket runs dry; the debt is slept off before the call returns, so the mean rate holds
 * whatever the chunk sizes (NODE20.md measured such a bucket within 5 % of the target). The rate
 * may change while running. The clock and sleep are injectable for tests. Main thread only.
 */

/** Clock and sleep, injectable for tests. */
export interface ThrottleClock {
  now(): number;
  /** Resolve after `ms`, or as soon as `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

const realClock: ThrottleClock = {
  now: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      if (signal?.aborted === true) {
        resolve();
        return;
      }
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
    }),
};

/** A byte-rate limiter shared by every copy lane of one run. */
export class TokenBucket {
  private rate: number;
  private burst: number;
  private tokens: number;
  private last: number;
  private readonly clock: ThrottleClock;

  /**
   * `rateBytesPerS` > 0; `burstBytes` is how much may pass at once after an idle time
   * (default: a quarter of a second's worth, at least 64 KiB); none at the start.
   */
  constructor(rateBytesPerS: number, options: { burstBytes?: number; clock?: ThrottleClock } = {}) {
    if (!(rateBytesPerS > 0)) throw new RangeError('rate must be above 0');
    this.clock = options.clock ?? realClock;
    this.rate = rateBytesPerS;
    this.burst = options.burstBytes ?? Math.max(64 * 1024, rateBytesPerS / 4);
    // Empty at the start: a full bucket let a run's first quarter second pass at once, and a
    // short copy then averaged above the limit (100 MB at 50 MB/s: 57 MB/s).
    this.tokens = 0;
    this.last = this.clock.now();
  }

  /** Bytes per second now. */
  get rateBytesPerS(): number {
    return this.rate;
  }

  /** Change the rate; bytes already granted keep the debt they made. */
  setRate(rateBytesPerS: number, burstBytes?: number): void {
    if (!(rateBytesPerS > 0)) throw new RangeError('rate must be above 0');
    this.refill();
    this.rate = rateBytesPerS;
    this.burst = burstBytes ?? Math.max(64 * 1024, rateBytesPerS / 4);
    this.tokens = Math.min(this.tokens, this.burst);
  }

  /**
   * Account for `bytes` and wait until the mean rate allows them; an abort of `signal` ends the
   * wait at once (Ctrl-C must not wait for a slow rate's debt).
   */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    this.refill();
    this.tokens -= bytes;
    if (this.tokens < 0 && signal?.aborted !== true) {
      const waitMs = (-this.tokens / this.rate) * 1000;
      await this.clock.sleep(waitMs, signal);
    }
  }

  private refill(): void {
    const now = this.clock.now();
    const elapsed = (now - this.last) / 1000;
    this.last = now;
    this.tokens = Math.min(this.burst, this.tokens + elapsed * this.rate);
  }
}
