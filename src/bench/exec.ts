/**
 * Running and timing one external command for the benchmark: wall time from spawn to exit,
 * peak RSS (polled from /proc, Linux only), stdout kept or only counted, an abort signal that
 * ends the whole process group, and an optional strace of the file opens (for the read-order
 * figure of the hdd suite). Not thread-safe; one call per command.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface ExecOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, then closed (e.g. a NUL-separated file list for xargs). */
  readonly input?: Buffer | string;
  /** Keep stdout as text (up to 64 MiB); otherwise only bytes and lines are counted. */
  readonly keepStdout?: boolean;
  /** Kill the process group when aborted. */
  readonly signal?: AbortSignal;
  /** Record every file open of the command and its children (strace) into this file. */
  readonly traceFile?: string;
}

export interface ExecResult {
  /** Exit code, or null when ended by a signal. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Wall time from spawn to exit, seconds. */
  readonly seconds: number;
  readonly stdout: string;
  readonly stdoutBytes: number;
  readonly stdoutLines: number;
  /** The last 4 KiB of stderr (the error a failing tool printed). */
  readonly stderrTail: string;
  /** Peak resident memory of the top process (VmHWM), bytes; undefined when not measurable. */
  readonly peakRssBytes: number | undefined;
}

const STDOUT_CAP = 64 * 1024 * 1024;
const STDERR_TAIL = 4096;
/** RSS poll interval: VmHWM is a running peak, so only the last interval can be missed. */
const RSS_POLL_MS = 50;

/** Thrown when the run was aborted (Ctrl-C). */
export class AbortedError extends Error {
  constructor() {
    super('interrupted');
    this.name = 'AbortedError';
  }
}

/** Run `cmd args` and time it; rejects only on abort or when the command cannot be started. */
export function execTimed(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  if (opts.signal?.aborted === true) return Promise.reject(new AbortedError());
  const argv =
    opts.traceFile === undefined
      ? [cmd, ...args]
      : ['strace', '-f', '-qq', '--seccomp-bpf', '-y', '-e', 'trace=open,openat', '-o', opts.traceFile, cmd, ...args];
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    // A process group of its own: abort ends xargs and its children too, and a Ctrl-C typed at
    // the terminal reaches only the benchmark, which then ends the group and cleans up.
    const child = spawn(argv[0] ?? cmd, argv.slice(1), {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stdoutBytes = 0;
    let stdoutLines = 0;
    let stderr = '';
    let peak: number | undefined;
    child.stdout.on('data', (d: Buffer) => {
      stdoutBytes += d.length;
      for (let i = d.indexOf(10); i !== -1; i = d.indexOf(10, i + 1)) stdoutLines++;
      if (opts.keepStdout === true && stdout.length < STDOUT_CAP) stdout += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString('utf8')).slice(-STDERR_TAIL);
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
    const poll =
      child.pid === undefined || opts.traceFile !== undefined
        ? undefined
        : setInterval(() => {
            const hwm = readPeakRss(child.pid ?? 0);
            if (hwm !== undefined && (peak === undefined || hwm > peak)) peak = hwm;
          }, RSS_POLL_MS);
    const onAbort = (): void => {
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGTERM');
        } catch {}
      }
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => {
      if (poll !== undefined) clearInterval(poll);
      opts.signal?.removeEventListener('abort', onAbort);
      reject(err);
    });
    child.on('close', (code, signal) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (poll !== undefined) clearInterval(poll);
      opts.signal?.removeEventListener('abort', onAbort);
      if (opts.signal?.aborted === true) {
        reject(new AbortedError());
        return;
      }
      resolve({ code, signal, seconds, stdout, stdoutBytes, stdoutLines, stderrTail: stderr, peakRssBytes: peak });
    });
  });
}

/** VmHWM of a live process in bytes, or undefined (not Linux, or it already exited). */
export function readPeakRss(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? undefined : Number(m[1]) * 1024;
  } catch {
    return undefined;
  }
}

/** Absolute path of an executable found on PATH, or undefined. */
export function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {}
  }
  return undefined;
}

/** First line of `cmd --version` (or `cmd version`), for the report; '' when it says nothing. */
export function toolVersion(cmd: string, args: readonly string[] = ['--version']): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  const text = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.trim();
  return text.split('\n')[0]?.trim() ?? '';
}

/** True when strace can trace opens here (installed, ptrace allowed, seccomp filter supported). */
export function straceWorks(): boolean {
  if (which('strace') === undefined) return false;
  const r = spawnSync('strace', ['-f', '-qq', '--seccomp-bpf', '-e', 'trace=openat', '-o', '/dev/null', 'true'], {
    timeout: 10_000,
  });
  return r.status === 0;
}

/**
 * The regular files a traced command opened for reading, in order, as absolute paths, from
 * `strace -y` output (`openat(…, O_RDONLY…) = 5</abs/path>`). Only paths under one of `roots`.
 */
export function parseTracedOpens(traceText: string, roots: readonly string[]): string[] {
  const out: string[] = [];
  const re = /open(?:at)?\(.*?O_RDONLY.*?\)\s+=\s+\d+<(.+)>$/;
  for (const line of traceText.split('\n')) {
    if (line.includes('O_DIRECTORY')) continue;
    const m = re.exec(line);
    const p = m?.[1];
    if (p === undefined) continue;
    const abs = unescapeStrace(p);
    if (roots.some((r) => abs.startsWith(r.endsWith('/') ? r : `${r}/`))) out.push(abs);
  }
  return out;
}

function unescapeStrace(s: string): string {
  return s.replace(/\\x([0-9a-f]{2})/gi, (_m, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
}
