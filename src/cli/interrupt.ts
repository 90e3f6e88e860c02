/**
 * Ctrl-C for the long commands (update, sync, verify, restore). The first SIGINT, SIGTERM or
 * SIGHUP aborts the run's signal, so the run stops soon with what is durable kept and recorded,
 * and says so once on stderr. A second one ends the process at once, with 128 + its number, after
 * putting a terminal back as it was: the progress bar hides the cursor and turns line wrap off,
 * and a process that dies by its signal never shows them again. A handler runs on the event
 * loop: a second signal takes effect once a synchronous step in progress ends. `stop()` removes
 * the handlers.
 */

const EXIT_CODES: Readonly<Record<string, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export interface Interrupt {
  readonly signal: AbortSignal;
  stop(): void;
}

/** Take the signals over for a run; `what` says what the first one does ("recording what is restored"). */
export function onInterrupt(what: string): Interrupt {
  const ac = new AbortController();
  const handler = (sig: NodeJS.Signals): void => {
    if (sig === 'SIGHUP') {
      // The terminal may be gone: a write to it fails (EIO), and an 'error' nobody listens to
      // would end the process there and then (stderr may be a log file, still written).
      for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
    }
    if (!ac.signal.aborted) {
      // The cursor is saved below the line: a progress bar's stop() puts it back where it was
      // saved last, and the closing lines would be written over this one.
      process.stderr.write(`\ninterrupted: ${what} (again to stop at once)\n${process.stderr.isTTY ? '\x1b7' : ''}`);
      ac.abort();
      return;
    }
    if (process.stderr.isTTY && sig !== 'SIGHUP') process.stderr.write('\x1b[?25h\x1b[?7h\n');
    // 'exit' handlers still run: the copying shells are ended there (pipeline/copy-io.ts).
    process.exit(EXIT_CODES[sig] ?? 130);
  };
  for (const s of SIGNALS) process.on(s, handler);
  return {
    signal: ac.signal,
    stop: () => {
      for (const s of SIGNALS) process.removeListener(s, handler);
    },
  };
}
