/**
 * Ctrl-C for the long commands (update, sync, verify, restore). The first SIGINT, SIGTERM or
 * SIGHUP aborts the run's signal, so the run stops soon with what is durable kept and recorded,
 * and says so once on stderr. A second one ends the process at once, with 128 + its number, after
 * putting a terminal back as it was: the progress bar hides the cursor and turns line wrap off,
 * and a process that dies by its signal never shows them again. `stop()` removes the handlers.
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
    if (!ac.signal.aborted) {
      process.stderr.write(`\ninterrupted: ${what} (Ctrl-C again to stop at once)\n`);
      ac.abort();
      return;
    }
    if (process.stderr.isTTY) process.stderr.write('\x1b[?25h\x1b[?7h\n');
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
