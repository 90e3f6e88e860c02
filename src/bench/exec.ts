/**
 * Running and timing external commands for every benchmark (`distbackup bench` and the scripts
 * under bench/): wall time from spawn to exit, peak RSS (polled from /proc, Linux only), stdout
 * kept or only counted, an abort signal and a time box that end the whole process group, an
 * optional strace of the file opens (for the read-order figure of the hdd suite), and the page
 * cache drop that makes a run read cold. Not thread-safe; one call per command.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { READ_FLAGS } from '../pipeline/batch-thread.js';

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
  /** Time box, seconds: past it the process group is ended and the result says `timedOut`. */
  readonly timeoutSeconds?: number;
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
  /** True when the time box ended it (`code` is then null, `signal` SIGKILL or SIGTERM). */
  readonly timedOut: boolean;
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
    const killGroup = (sig: NodeJS.Signals): void => {
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, sig);
        } catch {}
      }
    };
    const onAbort = (): void => killGroup('SIGTERM');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let timedOut = false;
    // SIGTERM first so a backup tool can remove its lock; SIGKILL 2 s later if it lingers.
    let lingering: NodeJS.Timeout | undefined;
    const box =
      opts.timeoutSeconds === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            killGroup('SIGTERM');
            lingering = setTimeout(() => killGroup('SIGKILL'), 2000);
          }, opts.timeoutSeconds * 1000);
    const stop = (): void => {
      if (poll !== undefined) clearInterval(poll);
      if (box !== undefined) clearTimeout(box);
      if (lingering !== undefined) clearTimeout(lingering);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    child.on('error', (err) => {
      stop();
      reject(err);
    });
    child.on('close', (code, signal) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      stop();
      if (opts.signal?.aborted === true) {
        reject(new AbortedError());
        return;
      }
      resolve({
        code,
        signal,
        seconds,
        stdout,
        stdoutBytes,
        stdoutLines,
        stderrTail: stderr,
        peakRssBytes: peak,
        timedOut,
      });
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
  return firstLine(`${r.stdout ?? ''}\n${r.stderr ?? ''}`);
}

/** The arguments that make `tool` print its version (openssl and restic take a subcommand). */
export function versionArgs(tool: string): string[] {
  return tool === 'openssl' || tool === 'restic' ? ['version'] : ['--version'];
}

/**
 * A tool's version line and its start-up time: the fastest of `runs` runs of its version command
 * (a process that loads the program and does no work), seconds. Undefined when it cannot start.
 */
export async function probeTool(
  tool: string,
  runs = 2,
  signal?: AbortSignal,
): Promise<{ version: string; startupSeconds: number } | undefined> {
  let best = Number.POSITIVE_INFINITY;
  let version = '';
  for (let i = 0; i < runs; i++) {
    let r: ExecResult;
    try {
      r = await execTimed(tool, versionArgs(tool), {
        keepStdout: true,
        timeoutSeconds: 10,
        ...(signal === undefined ? {} : { signal }),
      });
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      return undefined;
    }
    version = firstLine(`${r.stdout}\n${r.stderrTail}`);
    best = Math.min(best, r.seconds);
  }
  return { version, startupSeconds: best };
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0]?.trim() ?? '';
}

/**
 * Flush dirty pages (`sync`), then drop the clean page cache, dentries and inodes (Linux, root),
 * so the next run reads from the disk. True when the drop worked.
 */
export function dropCaches(): boolean {
  spawnSync('sync');
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

/**
 * Read every regular file under `roots` once (links not followed), so that a warm-cache run
 * finds its input in the page cache whichever tool ran before it: without this, the first tool
 * of a stage read what the earlier stages' writes had pushed out, and the tools after it read
 * it warm. Opened with O_NOATIME where allowed, so the reads dirty no inode for the timed run's
 * flush to write back. Errors are skipped (the timed run meets them). Gives the event loop a
 * turn every 256 files, and stops there once `signal` is aborted. Memory: one 1 MiB buffer and
 * the names of the folders still to read.
 */
export async function warmTree(roots: readonly string[], signal?: AbortSignal): Promise<void> {
  const buf = Buffer.allocUnsafe(1 << 20);
  const dirs = [...roots];
  let files = 0;
  for (let dir = dirs.pop(); dir !== undefined; dir = dirs.pop()) {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) dirs.push(p);
      else if (e.isFile()) {
        readWhole(p, buf);
        if (++files % 256 === 0) {
          await new Promise((resolve) => setImmediate(resolve));
          if (signal?.aborted === true) return;
        }
      }
    }
  }
}

/** O_NOATIME until an open is refused with EPERM (it is for the file's owner, or root, only). */
let noAtime = fs.constants.O_NOATIME;

function readWhole(file: string, buf: Buffer): void {
  let fd: number;
  try {
    fd = fs.openSync(file, READ_FLAGS | noAtime);
  } catch (err) {
    if (noAtime === 0 || (err as NodeJS.ErrnoException).code !== 'EPERM') return;
    noAtime = 0;
    try {
      fd = fs.openSync(file, READ_FLAGS);
    } catch {
      return;
    }
  }
  try {
    while (fs.readSync(fd, buf, 0, buf.length, null) > 0) {}
  } catch {
    // unreadable: the timed run says so
  } finally {
    fs.closeSync(fd);
  }
}

/** True when this user may drop the page cache (tries it once). */
export function canDropCaches(): boolean {
  try {
    fs.accessSync('/proc/sys/vm/drop_caches', fs.constants.W_OK);
  } catch {
    return false;
  }
  return dropCaches();
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

/** The median of `xs` (the upper one of an even count); NaN when empty. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

/**
 * Run `ours` and `theirs` one after the other, who goes first alternating with `round`: the
 * second run of a round may find the machine in another state (caches, write-back, load).
 */
export async function inTurns<T>(round: number, ours: () => Promise<T>, theirs: () => Promise<T>): Promise<[T, T]> {
  if (round % 2 === 0) {
    const d = await ours();
    return [d, await theirs()];
  }
  const o = await theirs();
  return [await ours(), o];
}
