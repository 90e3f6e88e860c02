/**
 * The demo (SPEC §3 `demo`): a complete cycle in a temporary folder, each step printed as the
 * command a user would type, followed by its output. It runs the real CLI (this same
 * installation, `process.execPath bin/run.js`) so what it shows is what a user gets: map,
 * update, three small disks, sync each, status, one object corrupted, verify (finds it, exit 3),
 * sync (heals it), the home catalogue moved away, restore guided across two disks, and a byte
 * for byte comparison with the source. Every step's result is checked; the demo fails (and says
 * which step) when one is wrong.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CATALOGUE_FILE } from '../catalog/db.js';
import { allocatedSize } from '../core/units.js';
import { OBJECTS_DIR } from '../disk/layout.js';
import { counted } from '../ui/format.js';
import { compareTrees } from './compare.js';

/** What running one command gave. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `distbackup ARGS` with the given environment additions; see `spawnCli`. */
export type CliRunner = (args: string[], env: Record<string, string>) => Promise<CliRun>;

/** Run the CLI of this installation as a child process (`process.execPath bin/run.js`). */
export const spawnCli: CliRunner = async (args, env) => {
  const r = spawnSync(process.execPath, [cliPath(), ...args], {
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', OCLIF_SKIP_NEW_VERSION_CHECK: 'true', ...env },
    maxBuffer: 64 * 1024 * 1024,
  });
  return {
    code: r.status ?? 1,
    stdout: r.stdout ?? '',
    stderr: `${r.stderr ?? ''}${r.error === undefined ? '' : r.error.message}`,
  };
};

export interface DemoOptions {
  /** Receives every line the demo prints. */
  out: (line: string) => void;
  /** How each command runs (default: a child process per command). */
  cli?: CliRunner;
  /** Keep the temporary folder (its path is printed). */
  keep?: boolean;
  /** Run in this folder instead of a fresh temporary one (must be empty or missing). */
  dir?: string;
  /** Ctrl-C: the demo stops after the step in progress (which stops itself), and cleans up. */
  signal?: AbortSignal;
}

/** How the demo ended. */
export interface DemoResult {
  ok: boolean;
  dir: string;
  steps: number;
  /** The step that went wrong, if any. */
  failed: string | null;
  /** Stopped by Ctrl-C (not a wrong result). */
  interrupted: boolean;
}

class StepFailed extends Error {}
class Interrupted extends Error {}

/** A plain progress line of update, sync, verify or restore (src/ui/progress.ts). */
const PROGRESS_LINE = /^(update|sync|verify|restore): \d/;

/** The CLI entry of this installation (bin/run.js beside dist/ and src/). */
function cliPath(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'run.js');
}

/** Deterministic pseudo-random bytes (SHA-256 in counter mode), so every demo run is the same. */
function bytesFor(seed: string, size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let off = 0;
  for (let i = 0; off < size; i++) {
    const block = createHash('sha256').update(`${seed}:${i}`).digest();
    off += block.copy(out, off);
  }
  return out;
}

/** Write the demo's source tree; returns its total allocated size (as the planner counts it). */
function generateTree(root: string): { files: number; allocatedBytes: number } {
  let files = 0;
  let allocatedBytes = 0;
  const put = (rel: string | Buffer, content: Buffer | string, mode = 0o644): void => {
    const p = Buffer.concat([Buffer.from(`${root}/`), typeof rel === 'string' ? Buffer.from(rel) : rel]);
    fs.mkdirSync(path.dirname(p.toString('latin1')) === '' ? root : path.dirname(p.toString()), { recursive: true });
    fs.writeFileSync(p, content, { mode });
    fs.chmodSync(p, mode);
    files += 1;
    allocatedBytes += allocatedSize(typeof content === 'string' ? Buffer.byteLength(content) : content.length);
  };
  // Small on purpose: every file costs fsyncs in each step, and the demo shows the cycle, not speed.
  for (let i = 1; i <= 9; i++) {
    const month = String(1 + (i % 3)).padStart(2, '0');
    put(`photos/2024-${month}/img_${String(i).padStart(4, '0')}.jpg`, bytesFor(`photo${i}`, 20_000 + i * 3_000));
  }
  put('photos/2024-01/img_0003-copy.jpg', bytesFor('photo3', 29_000)); // a duplicate: one object, two files
  for (let i = 1; i <= 3; i++)
    put(`documents/letters/letter-${i}.txt`, `Dear reader,\n${'lorem ipsum '.repeat(40 * i)}\n`);
  put('documents/taxes/2023.pdf', bytesFor('taxes', 150_000), 0o600);
  put('documents/notes.md', '# notes\n\n- back up everything twice\n');
  put('bin/backup.sh', '#!/bin/sh\nexec distbackup sync "$@"\n', 0o755);
  put(
    Buffer.concat([Buffer.from('documents/caf'), Buffer.from([0xe9]), Buffer.from('-latin1.txt')]),
    'a name that is not UTF-8\n',
  );
  fs.mkdirSync(path.join(root, 'documents', 'empty-folder'), { recursive: true });
  fs.symlinkSync('notes.md', path.join(root, 'documents', 'notes-link.md'));
  // Older mtimes for a few files, so that restored times are visibly kept.
  const t = new Date('2021-06-01T12:00:00.250Z');
  fs.utimesSync(path.join(root, 'documents', 'notes.md'), t, t);
  fs.utimesSync(path.join(root, 'documents', 'letters'), t, t);
  return { files, allocatedBytes };
}

/** Run the demo; never throws for a failed step (the result says which). */
export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const out = opts.out;
  const dir = opts.dir ?? fs.mkdtempSync(path.join(demoParent(), 'distbackup-demo-'));
  fs.mkdirSync(dir, { recursive: true });
  const home = path.join(dir, 'home');
  const source = path.join(dir, 'source');
  const disks = ['disk1', 'disk2', 'disk3'].map((n) => ({ name: n, path: path.join(dir, 'disks', n) }));
  const restored = path.join(dir, 'restored');
  const cli = opts.cli ?? spawnCli;
  let steps = 0;
  const short = (s: string): string => s.split(dir).join('$DEMO');

  /** Print and run `distbackup ARGS`; check its exit code; return its stdout. */
  const run = async (args: string[], expectCode: number, why?: string): Promise<string> => {
    steps += 1;
    out('');
    if (why !== undefined) out(`# ${why}`);
    out(
      `$ distbackup ${args
        .map((a) => (/[\s'"$]/.test(a) ? `'${a}'` : a))
        .map(short)
        .join(' ')}`,
    );
    const stopped = (): boolean => opts.signal?.aborted === true;
    if (stopped()) throw new Interrupted();
    const r = await cli(args, { DISTBACKUP_PATH: home });
    // A step stopped by the same Ctrl-C (exit 130) is not a wrong result.
    if (stopped()) throw new Interrupted();
    // Progress lines are left out: captured apart from stdout they would print after the result.
    const shown = r.stderr
      .split('\n')
      .filter((l) => !PROGRESS_LINE.test(l))
      .join('\n');
    const text = `${r.stdout}${shown}`.trimEnd();
    for (const line of text.split('\n')) if (line !== '') out(`  ${short(line)}`);
    if (r.code !== expectCode) {
      throw new StepFailed(`'distbackup ${args.slice(0, 2).join(' ')}' exited with ${r.code}, expected ${expectCode}`);
    }
    return r.stdout;
  };
  const say = (line: string): void => {
    out('');
    out(`# ${short(line)}`);
  };
  const check = (cond: boolean, what: string): void => {
    if (!cond) throw new StepFailed(what);
  };

  try {
    out(`distbackup demo in ${dir} (shown as $DEMO)`);
    fs.mkdirSync(source);
    const tree = generateTree(source);
    say(`generated ${tree.files} files in $DEMO/source: photos, documents, a script, a symlink, an empty folder`);
    await run(['source', 'map', '/demo', source], 0, 'map the folder into the virtual tree');
    await run(['update'], 0, 'scan and hash it');
    // Each disk holds three quarters of the data: every object fits on two of the three disks.
    const size = Math.ceil(tree.allocatedBytes * 0.8);
    for (const d of disks) {
      fs.mkdirSync(d.path, { recursive: true });
      await run(
        ['disk', 'add', d.name, d.path, '--size', String(size)],
        0,
        d === disks[0] ? 'three small disks' : undefined,
      );
    }
    for (const d of disks) await run(['sync', d.name], 0, d === disks[0] ? 'sync each disk in turn' : undefined);
    const st = await run(['status'], 0, 'how well is everything protected?');
    check(/every file has at least 2 copies/.test(st), 'after three syncs every file should have 2 copies');

    // Corrupt one object on disk1: flip a byte, as bit rot would.
    const victim = firstObject(disks[0]?.path ?? '');
    check(victim !== undefined, 'disk1 holds no object to corrupt');
    const bytes = fs.readFileSync(victim as string);
    bytes[0] = (bytes[0] ?? 0) ^ 0x01;
    fs.chmodSync(victim as string, 0o644);
    fs.writeFileSync(victim as string, bytes);
    say(`bit rot: one byte of ${victim} flipped`);
    await run(['verify', 'disk1'], 3, 'verify reads every object back; it finds the damage (exit code 3)');
    const healed = await run(['sync', 'disk1'], 0, 'the next sync copies the lost copy again');
    check(/ [1-9]\d* objects? copied/.test(healed), 'the healing sync copied nothing');
    const st2 = await run(['status'], 0);
    check(/every file has at least 2 copies/.test(st2), 'after the healing sync every file should have 2 copies');

    say('the home machine dies: its catalogue is gone');
    out(`$ mv $DEMO/home $DEMO/home.lost`);
    fs.renameSync(home, `${home}.lost`);
    const first = await run(
      ['restore', '--to', restored, '--disk', disks[2]?.path ?? ''],
      4,
      'restore from disk3 alone',
    );
    const next = /connect (\S+) next/.exec(first)?.[1];
    check(next !== undefined, 'restore did not name the next disk');
    const nextDisk = disks.find((d) => d.name === next);
    check(nextDisk !== undefined, `restore named an unknown disk '${next}'`);
    await run(['restore', '--to', restored, '--disk', nextDisk?.path ?? ''], 0, `connect ${next}, as told`);
    check(!fs.existsSync(path.join(home, CATALOGUE_FILE)), 'restore must not create a home catalogue');

    say('compare the restored tree with the source, byte for byte');
    const cmp = compareTrees(source, path.join(restored, 'demo'));
    out(
      `  ${counted(cmp.files, 'file')}, ${counted(cmp.dirs, 'folder')}, ${counted(cmp.symlinks, 'symlink')} compared (content, mode, mtime, link targets)`,
    );
    for (const d of cmp.diffs.slice(0, 20)) out(`  DIFFERENT: ${d}`);
    check(cmp.diffs.length === 0, `${cmp.diffs.length} differences between the source and the restore`);
    check(cmp.files === tree.files, `${cmp.files} files compared, expected ${tree.files}`);
    out('');
    out(`demo complete: ${steps} commands, every step gave the expected result`);
    return { ok: true, dir, steps, failed: null, interrupted: false };
  } catch (err) {
    if (err instanceof Interrupted) {
      out('');
      out(`demo interrupted at step ${steps}; nothing outside its folder was touched`);
      return { ok: false, dir, steps, failed: null, interrupted: true };
    }
    const what = err instanceof StepFailed ? err.message : `${(err as Error).message}`;
    out('');
    out(`demo FAILED at step ${steps}: ${short(what)}`);
    return { ok: false, dir, steps, failed: what, interrupted: false };
  } finally {
    if (opts.keep === true) out(`the demo folder is kept: ${dir}`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Where the demo folder goes: a memory filesystem (/dev/shm) when there is one with room, so
 * that the fsyncs every step makes for durability cost nothing (on a busy disk they made the
 * demo take most of a minute); else the temporary folder.
 */
function demoParent(): string {
  const shm = '/dev/shm';
  try {
    fs.accessSync(shm, fs.constants.W_OK);
    const st = fs.statfsSync(shm);
    if (st.bavail * st.bsize >= 256 * 1024 * 1024) return shm;
  } catch {
    // no /dev/shm here
  }
  return os.tmpdir();
}

/** Path of the first object on the disk at `root`, in on-disk order, or undefined. */
function firstObject(root: string): string | undefined {
  const objs = path.join(root, OBJECTS_DIR);
  for (const pre of fs.readdirSync(objs).sort()) {
    if (pre.startsWith('.')) continue;
    const names = fs.readdirSync(path.join(objs, pre)).sort();
    if (names[0] !== undefined) return path.join(objs, pre, names[0]);
  }
  return undefined;
}
