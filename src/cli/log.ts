/**
 * The run log: one file per day in the data folder (`logs/distbackup-%Y-%m-%d.log` unless
 * `--log PATTERN`), appended one short line at a time with appendFileSync (O_APPEND: lines of
 * concurrent runs never overwrite each other, and nothing is ever truncated). It holds a line
 * when a run starts (time, pid, version, command line), every warning and error line the run
 * printed, and a line when it ends (exit code, elapsed time, the last summary line). A log that
 * cannot be written costs one warning on stderr, never the command. A log inside a data folder
 * that does not exist yet creates nothing: its lines wait in memory until the command itself
 * has made the folder (the catalogue), and are dropped at the end if it never did, so `--help`,
 * `status -v` or a refused first command leave no trace on a fresh machine. Not thread-safe: one
 * per process, on the main thread.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeError } from '../core/errors.js';

/** The default `--log` pattern, relative to the data folder. */
export const DEFAULT_LOG_PATTERN = 'logs/distbackup-%Y-%m-%d.log';

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/**
 * Expand the strftime-style fields of `pattern` with the local date of `when`: `%Y` year, `%m`
 * month, `%d` day, `%H` hour, `%%` a percent sign; any other `%x` is left as it is. A relative
 * result is taken from `dataDir`.
 */
export function expandLogPattern(pattern: string, dataDir: string, when: Date): string {
  const fields: Record<string, string> = {
    Y: String(when.getFullYear()),
    m: pad(when.getMonth() + 1),
    d: pad(when.getDate()),
    H: pad(when.getHours()),
    '%': '%',
  };
  const expanded = pattern.replace(/%(.)/g, (all, c: string) => fields[c] ?? all);
  return path.resolve(dataDir, expanded);
}

/** Local time with its UTC offset, to the millisecond: `2026-11-28T00:12:03.123+01:00`. */
export function localTimestamp(when: Date): string {
  const off = -when.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const abs = Math.abs(off);
  return (
    `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}` +
    `T${pad(when.getHours())}:${pad(when.getMinutes())}:${pad(when.getSeconds())}.${pad(when.getMilliseconds(), 3)}` +
    `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}

/** Quote one command-line word the way a POSIX shell would read it back. */
export function shellWord(word: string): string {
  if (word !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** What a run log needs to know about the run. */
export interface RunLogOptions {
  /** The log file pattern (`--log`), see expandLogPattern. */
  pattern: string;
  dataDir: string;
  version: string;
  /** The command line as typed after the program name. */
  argv: readonly string[];
  /** Called once with a one-line warning if the log cannot be written; then logging stops. */
  onWriteError: (line: string) => void;
  /** The clock; injectable for tests. */
  now?: () => Date;
}

/** A run's log: `start()`, `line()` for each warning or error, `end()`. */
export class RunLog {
  private readonly opts: RunLogOptions;
  private readonly now: () => Date;
  private readonly startedMs: number;
  private started = false;
  private broken = false;
  private ended = false;
  /** Lines (file, text) held while the data folder does not exist; null once written through. */
  private pending: [string, string][] | null = [];

  constructor(opts: RunLogOptions) {
    this.opts = opts;
    this.now = opts.now ?? (() => new Date());
    this.startedMs = this.now().getTime();
  }

  /** The file the next line goes to (the date decides it). */
  get file(): string {
    return expandLogPattern(this.opts.pattern, this.opts.dataDir, this.now());
  }

  /** Write the start line (once; `line()` and `end()` write it first if needed). */
  start(): void {
    if (this.started) return;
    this.started = true;
    const words = this.opts.argv.map(shellWord).join(' ');
    this.append(`start pid=${process.pid} version=${this.opts.version} argv: distbackup ${words}`);
  }

  /** Record one line the run printed to stderr (a warning, an error). */
  line(text: string): void {
    if (this.ended) return;
    this.start();
    for (const l of text.split('\n')) if (l.trim() !== '') this.append(`  ${l.trimEnd()}`);
  }

  /** Write the end line: the exit code, the elapsed time and the run's last summary line. */
  end(exitCode: number, summary?: string): void {
    if (this.ended) return;
    this.start();
    this.ended = true;
    const elapsedS = ((this.now().getTime() - this.startedMs) / 1000).toFixed(1);
    const tail = summary === undefined || summary.trim() === '' ? '' : `: ${summary.trim()}`;
    this.append(`end pid=${process.pid} exit=${exitCode} in ${elapsedS} s${tail}`);
    // Still held: the run wrote nothing in the data folder, so neither does its log.
    this.pending = null;
  }

  private append(text: string): void {
    if (this.broken) return;
    const when = this.now();
    const file = expandLogPattern(this.opts.pattern, this.opts.dataDir, when);
    // One line per call, never a control character: a log line is one line of the file.
    const clean = text.replaceAll(String.fromCharCode(27), '').replace(/[\r\n\t]/g, ' ');
    const line = `${localTimestamp(when)} ${clean}\n`;
    if (this.pending !== null) {
      if (this.waitsForDataDir(file)) {
        // Bounded: a run that prints more before creating its data folder keeps the first lines.
        if (this.pending.length < MAX_PENDING_LINES) this.pending.push([file, line]);
        return;
      }
      const held = this.pending;
      this.pending = null;
      for (const [f, l] of held) if (!this.write(f, l)) return;
    }
    this.write(file, line);
  }

  /** Whether `file` lies in the data folder and that folder does not exist yet. */
  private waitsForDataDir(file: string): boolean {
    const rel = path.relative(this.opts.dataDir, file);
    const inside = rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
    return inside && !fs.existsSync(this.opts.dataDir);
  }

  /** Append one line to `file`; false (and one warning, then silence) when it cannot. */
  private write(file: string, line: string): boolean {
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      fs.appendFileSync(file, line, { mode: 0o600 });
      return true;
    } catch (err) {
      this.broken = true;
      this.opts.onWriteError(`cannot write the log ${file}: ${describeError(err)}`);
      return false;
    }
  }
}

/** Lines held at most while the data folder does not exist (a start line and a few warnings). */
const MAX_PENDING_LINES = 256;
