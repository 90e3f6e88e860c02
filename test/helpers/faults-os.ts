/**
 * OS-level fault tools around a real CLI process (RELIABILITY.md §1, layer L2): libfiu's POSIX
 * preload driven at run time through its control FIFOs, a hold on the home catalogue that parks
 * the CLI at a known point (after its modules are loaded, before it reads anything), waiting for
 * a child to open a file or to start copying, and a parser for `strace -f -y` traces.
 */

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { have, type Started, sleep } from './faults.js';

/** Why libfiu cannot be used here (null when it can). */
export function fiuMissing(): string | null {
  const missing = ['fiu-run', 'fiu-ctrl'].filter((c) => !have(c));
  if (missing.length > 0) return `${missing.join(', ')} not installed (fiu-utils)`;
  if (!fs.existsSync('/usr/lib/fiu/fiu_posix_preload.so')) return 'libfiu POSIX preload not found';
  return null;
}

/**
 * The command prefix that runs the CLI under libfiu's POSIX preload with remote control on
 * `ctl-<pid>.in/.out` (fiu-run execs the program, so the CLI's pid is the child's pid), and
 * failure points enabled from the start with `commands`.
 */
export function fiuPrefix(ctl: string, commands: readonly string[] = []): string[] {
  return ['fiu-run', '-x', '-f', ctl, ...commands.flatMap((c) => ['-c', c])];
}

/**
 * Send one libfiu control command (`enable name=…,failinfo=5`, `enable_stack_by_name …`,
 * `disable name=…`) to the process `pid` started with `fiuPrefix(ctl)`. Throws when libfiu
 * refuses it or the process does not answer within 10 s.
 */
export function fiuCtrl(ctl: string, pid: number, command: string): void {
  const r = spawnSync('timeout', ['10', 'fiu-ctrl', '-f', ctl, '-c', command, String(pid)], { encoding: 'utf8' });
  const out = `${r.stdout}${r.stderr}`.trim();
  if (r.status !== 0 || /error/i.test(out)) throw new Error(`fiu-ctrl ${command} → ${pid}: exit ${r.status} ${out}`);
}

/** Wait until `cond()` holds, the child exits, or `timeoutMs` passes; true when `cond()` held. */
export async function waitUntil(s: Started, cond: () => boolean, timeoutMs = 30_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (cond()) return true;
    if (s.child.exitCode !== null || s.child.signalCode !== null) return cond();
    await sleep(5);
  }
  return false;
}

/** Does process `pid` hold a descriptor on a path ending with `suffix`? */
export function hasOpen(pid: number, suffix: string): boolean {
  let fds: string[];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  for (const fd of fds) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`).endsWith(suffix)) return true;
    } catch {}
  }
  return false;
}

/** True once the disk folder's `.tmp/` holds a partial object (the copy has started). */
export function copying(diskPath: string): () => boolean {
  const tmp = path.join(diskPath, 'distbackup-objects', '.tmp');
  return () => {
    try {
      return fs.readdirSync(tmp).length > 0;
    } catch {
      return false;
    }
  };
}

/**
 * Hold the home catalogue of `dataDir` with an exclusive SQLite lock (locking_mode=EXCLUSIVE
 * and an open BEGIN EXCLUSIVE): a CLI started meanwhile loads its modules, opens the catalogue
 * and then waits in SQLite's busy handler (5 s) until `release()`. That parks it at a known
 * point, before it has read an object, so a fault can be switched on exactly there.
 */
export function holdCatalogue(dataDir: string): { release(): void } {
  const db = new Database(path.join(dataDir, 'distbackup.sqlite'));
  db.pragma('locking_mode = EXCLUSIVE');
  db.exec('BEGIN EXCLUSIVE');
  db.prepare('SELECT count(*) FROM sqlite_master').get();
  let open = true;
  return {
    release() {
      if (!open) return;
      open = false;
      db.exec('COMMIT');
      db.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// strace

/** One completed system call of an `strace -f -y` trace, in completion order. */
export interface Syscall {
  /** Position in completion order. */
  readonly seq: number;
  readonly pid: number;
  readonly name: string;
  /** The raw argument text (with `-y`, descriptors read `26</path>`). */
  readonly args: string;
  /** The return value text (`0`, `-1 EIO (…)`, `26</path>`). */
  readonly ret: string;
  /** The path of the first descriptor argument (from `-y`), if any. */
  readonly fdPath: string | undefined;
  /** Quoted string arguments (paths of openat, rename, mkdir, unlink). */
  readonly strings: string[];
}

const QUOTED = /"((?:[^"\\]|\\.)*)"/g;

function unquote(s: string): string {
  return s.replace(/\\(x[0-9a-f]{2}|[0-7]{1,3}|.)/g, (_m, e: string) => {
    if (e.startsWith('x')) return String.fromCharCode(Number.parseInt(e.slice(1), 16));
    if (/^[0-7]+$/.test(e)) return String.fromCharCode(Number.parseInt(e, 8));
    return e === 'n' ? '\n' : e === 't' ? '\t' : e;
  });
}

/**
 * Parse an `strace -f -y -o FILE` trace. A call split by another thread (`<unfinished ...>` …
 * `<... name resumed>`) is joined and placed where it completed, which is the order that matters
 * for durability (a rename must follow the *end* of the fsync). Signals, exits and calls
 * that never completed are dropped.
 */
export function parseStrace(text: string): Syscall[] {
  const out: Syscall[] = [];
  const pending = new Map<number, { name: string; args: string }>();
  for (const line of text.split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (m === null) continue;
    const pid = Number(m[1]);
    const rest = m[2] ?? '';
    let name: string;
    let args: string;
    let ret: string;
    const unfinished = /^(\w+)\((.*) <unfinished \.\.\.>$/.exec(rest);
    if (unfinished !== null) {
      pending.set(pid, { name: unfinished[1] ?? '', args: unfinished[2] ?? '' });
      continue;
    }
    const resumed = /^<\.\.\. (\w+) resumed>(.*)\)\s+= (.*)$/.exec(rest);
    if (resumed !== null) {
      const p = pending.get(pid);
      pending.delete(pid);
      name = resumed[1] ?? '';
      args = `${p?.args ?? ''}${resumed[2] ?? ''}`;
      ret = resumed[3] ?? '';
    } else {
      const full = /^(\w+)\((.*)\)\s+= (.*)$/.exec(rest);
      if (full === null) continue;
      name = full[1] ?? '';
      args = full[2] ?? '';
      ret = full[3] ?? '';
    }
    const fd = /^-?\d+<([^>]*)>/.exec(args);
    const strings = [...args.matchAll(QUOTED)].map((q) => unquote(q[1] ?? ''));
    out.push({ seq: out.length, pid, name, args, ret, fdPath: fd?.[1], strings });
  }
  return out;
}

/** Did the call succeed (return value not -1)? */
export function succeeded(c: Syscall): boolean {
  return !c.ret.startsWith('-1');
}
