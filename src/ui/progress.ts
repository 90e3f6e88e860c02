/**
 * One progress display for every long command (update, sync, verify, restore): a live bar on
 * stderr when it is a terminal, a plain line every few seconds otherwise, nothing when disabled
 * (`--quiet`, `--json`). Format after rclone: `sync: 1.2 GB / 5.6 GB, 22%, 45.6 MB/s, ETA 1m39s,
 * 1234/5000 files`. Not thread-safe (one per command, on the main thread).
 */
import { createRequire } from 'node:module';
import type cliProgressModule from 'cli-progress';
import prettyBytes from 'pretty-bytes';
import { formatDuration } from '../core/units.js';
import { formatCount } from './format.js';

export interface ProgressOptions {
  /** Short label: `update`, `sync`, `verify`, `restore`. */
  label: string;
  enabled: boolean;
  totalBytes?: number;
  totalFiles?: number;
  /** Plain-line interval when stderr is not a terminal (ms). */
  intervalMs?: number;
  /** Override the stream (tests). */
  stream?: NodeJS.WriteStream;
}

export interface Progress {
  /** Report absolute counts done so far. Cheap: call it as often as you like. */
  update(doneBytes: number, doneFiles: number): void;
  /** Change the totals (e.g. once the scan is done). */
  setTotals(totalBytes: number | undefined, totalFiles: number | undefined): void;
  /** Print a line above the bar (warnings, per-file errors). */
  note(line: string): void;
  /** Final line and cleanup. */
  stop(): void;
}

/** Create a progress display; see the module comment. */
export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  let totalBytes = opts.totalBytes;
  let totalFiles = opts.totalFiles;
  let doneBytes = 0;
  let doneFiles = 0;
  const started = Date.now();
  const line = (): string => {
    const elapsed = (Date.now() - started) / 1000;
    const rate = elapsed > 0 ? doneBytes / elapsed : 0;
    const parts: string[] = [];
    if (totalBytes !== undefined && totalBytes > 0) {
      const pct = Math.min(100, Math.floor((doneBytes / totalBytes) * 100));
      const eta = rate > 0 ? ((totalBytes - doneBytes) / rate) * 1000 : Number.NaN;
      parts.push(`${prettyBytes(doneBytes)} / ${prettyBytes(totalBytes)}, ${pct}%`);
      parts.push(`${prettyBytes(rate)}/s`, `ETA ${formatDuration(eta)}`);
    } else if (doneBytes > 0) {
      parts.push(prettyBytes(doneBytes), `${prettyBytes(rate)}/s`);
    }
    // No bytes yet and none to come (a scan, the start): the count alone, not "0 B, 0 B/s".
    parts.push(
      totalFiles !== undefined
        ? `${formatCount(doneFiles)}/${formatCount(totalFiles)} files`
        : `${formatCount(doneFiles)} files`,
    );
    return `${opts.label}: ${parts.join(', ')}`;
  };

  if (!opts.enabled) {
    return { update: () => {}, setTotals: () => {}, note: () => {}, stop: () => {} };
  }

  if (stream.isTTY) {
    const cliProgress = loadCliProgress();
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: (_o, _p, _payload) => line(),
        hideCursor: true,
        // Line wrap stays on (cli-progress turns it off by default, and a note or an error line
        // longer than the terminal was cut at its width); the bar's own line is cut to it.
        linewrap: true,
        clearOnComplete: false,
        fps: 5,
        noTTYOutput: false,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(1, 0);
    return {
      update: (b, f) => {
        doneBytes = b;
        doneFiles = f;
        bar.update(0);
      },
      setTotals: (b, f) => {
        totalBytes = b;
        totalFiles = f;
      },
      note: (text) => {
        // The bar's line is cleared, the note written, and the cursor saved again at the start
        // of the bar's new line: stop() puts the cursor back where it was saved, and the lines
        // after the run would otherwise be written over the notes.
        stream.write(`\r\x1b[2K${text}\n\x1b7`);
        bar.update(0);
      },
      stop: () => {
        bar.update(0);
        bar.stop();
      },
    };
  }

  const interval = opts.intervalMs ?? 5000;
  let last = Date.now();
  // No final line for a command that never got to its work (refused before it began).
  let begun = totalBytes !== undefined || totalFiles !== undefined;
  return {
    update: (b, f) => {
      begun = true;
      doneBytes = b;
      doneFiles = f;
      const now = Date.now();
      if (now - last >= interval) {
        last = now;
        stream.write(`${line()}\n`);
      }
    },
    setTotals: (b, f) => {
      begun = true;
      totalBytes = b;
      totalFiles = f;
    },
    note: (text) => {
      stream.write(`${text}\n`);
    },
    stop: () => {
      if (begun) stream.write(`${line()}\n`);
    },
  };
}

/** cli-progress, loaded for a bar on a terminal (~5 ms of start-up that piped and `-q` runs skip). */
function loadCliProgress(): typeof cliProgressModule {
  return createRequire(import.meta.url)('cli-progress') as typeof cliProgressModule;
}
