/**
 * The rhythm of a long synchronous loop on the main thread: yield to the event loop (where
 * SIGINT is delivered) often enough that Ctrl-C is seen within a file, and tell whether the
 * run was asked to stop.
 */

/** Yield to the event loop (where SIGINT is delivered) at least this often, in ms. */
const YIELD_MS = 50;

/** Yields and abort checks for one run. */
export class Pace {
  private lastYield = performance.now();

  constructor(private readonly signal: AbortSignal | undefined) {}

  /** Whether the run was asked to stop (Ctrl-C). */
  aborted(): boolean {
    return this.signal?.aborted === true;
  }

  /** Let the event loop run when the last chance is YIELD_MS old. */
  async breathe(): Promise<void> {
    const now = performance.now();
    if (now - this.lastYield < YIELD_MS) return;
    await new Promise((resolve) => setImmediate(resolve));
    this.lastYield = performance.now();
  }
}
