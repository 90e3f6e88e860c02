/**
 * The polish a user of rclone or restic expects, checked on the built CLI: no colour with
 * NO_COLOR even on a terminal, and Ctrl-C (SIGINT) ending the long commands at once with what
 * was durable kept, so the next run goes on from there.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { planDataset, writeDataset } from '../../src/bench/dataset.js';
import { compareRestore } from '../../src/bench/suite.js';
import { CLI, REPO_ROOT, runCli, runCliJson, startCli } from '../helpers/cli.js';

const SGR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`);
const hasScript = spawnSync('sh', ['-c', 'command -v script']).status === 0;
const manifest = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'oclif.manifest.json'), 'utf8')) as {
  commands: Record<string, unknown>;
};
const ids = Object.keys(manifest.commands).sort();

/** Run a shell line under a pseudo-terminal (util-linux `script`), so stdout and stderr are TTYs. */
function onTty(line: string, env: NodeJS.ProcessEnv): string {
  const r = spawnSync('script', ['-qec', line, '/dev/null'], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    maxBuffer: 64 * 1024 * 1024,
  });
  return r.stdout;
}

test('--help on a terminal is coloured, and NO_COLOR turns colour off for every command', {
  skip: !hasScript && 'util-linux script is not installed',
}, () => {
  // CI=true makes supports-color turn colour off even on a terminal; this test is about NO_COLOR.
  const env = { NO_COLOR: undefined, FORCE_COLOR: undefined, CI: undefined, OCLIF_SKIP_NEW_VERSION_CHECK: 'true' };
  const coloured = onTty(`node ${CLI} sync --help`, env);
  assert.match(coloured, SGR, 'control: a terminal gets colour by default');
  const all = ids.map((id) => `node ${CLI} ${id.replaceAll(':', ' ')} --help`).join('; ');
  const plain = onTty(`${all}; node ${CLI} --help`, { ...env, NO_COLOR: '1' });
  assert.match(plain, /USAGE/);
  assert.doesNotMatch(plain, SGR);
});

// ---------------------------------------------------------------------------------------------
// Ctrl-C: one tree, one home catalogue and one disk shared by the steps below, in order.

let root = '';
let home = '';
let data = '';
const disk = (): string => path.join(root, 'disk');
const small = planDataset('small', 30_000_000, 11);
// 60 MB of large files: with the small files' 30 MB, the sync throttled to 40 MB/s runs over
// 2 s and restore well past the 20 ms poll, so every Ctrl-C lands mid-run (4x less to write,
// copy, verify and restore than the former 240 MB).
const large = planDataset('large', 60_000_000, 11);

before(async () => {
  root = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'distbackup-sigint-'));
  home = path.join(root, 'home');
  data = path.join(root, 'data');
  await writeDataset(path.join(data, 'small'), small);
  await writeDataset(path.join(data, 'large'), large);
  spawnSync('sync');
});
after(() => {
  if (root !== '') fs.rmSync(root, { recursive: true, force: true });
});

interface Interrupted {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Milliseconds from SIGINT to exit; null when it ended before being interrupted. */
  msAfterSigint: number | null;
  stderr: string;
}

/** Start `args`, send SIGINT once `ready()` holds (polled), and wait for the exit. */
async function interrupt(args: string[], ready: () => boolean): Promise<Interrupted> {
  const { child, done } = startCli(home, args);
  let exited = false;
  void done.then(() => {
    exited = true;
  });
  const started = Date.now();
  while (!exited && !ready() && Date.now() - started < 120_000) await new Promise((r) => setTimeout(r, 20));
  if (exited) {
    const end = await done;
    return { code: end.code, signal: end.signal, msAfterSigint: null, stderr: end.stderr };
  }
  const sent = Date.now();
  child.kill('SIGINT');
  // A hang guard, not a timing assertion: the figure itself goes to the diagnostics.
  const guard = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const end = await done;
  clearTimeout(guard);
  return { code: end.code, signal: end.signal, msAfterSigint: Date.now() - sent, stderr: end.stderr };
}

function assertInterrupted(t: import('node:test').TestContext, what: string, r: Interrupted): void {
  if (r.msAfterSigint === null) {
    t.skip(`${what} finished before it could be interrupted (exit ${r.code}); nothing to check`);
    return;
  }
  t.diagnostic(`${what}: exit ${r.code ?? r.signal} ${r.msAfterSigint} ms after SIGINT`);
  assert.notEqual(r.signal, 'SIGKILL', `${what} ignored SIGINT for 30 s`);
  // 130 as every command ends on Ctrl-C; 0 when it had finished as the signal came; SIGINT's
  // default action when it came before the command took the signal over (start-up).
  assert.ok(
    r.code === 130 || r.code === 0 || r.signal === 'SIGINT',
    `${what}: exit ${r.code ?? r.signal} after Ctrl-C, expected 130: ${r.stderr.slice(0, 300)}`,
  );
}

/** SQLite's own check of the home catalogue, whatever schema version the built CLI wrote. */
function catalogueSound(): void {
  const db = new Database(path.join(home, 'distbackup.sqlite'), { readonly: true });
  try {
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
  } finally {
    db.close();
  }
}

const allFiles = small.files.length + large.files.length;

test('Ctrl-C: update, sync, verify and restore stop at once and keep what was durable', async (t) => {
  assert.equal(runCli(home, ['source', 'map', '/bench', data]).code, 0);

  await t.test('update keeps the hashes it committed; the next run hashes only the rest', async (t) => {
    const wal = path.join(home, 'distbackup.sqlite-wal');
    // Ready once the first batch is committed (the WAL holds it).
    // Small commits (a hidden flag of update), so that the first one comes early in the run.
    const r = await interrupt(
      ['update', '--jobs', '1', '--commit-every', '200'],
      () => fs.existsSync(wal) && fs.statSync(wal).size > 0,
    );
    assertInterrupted(t, 'update', r);
    catalogueSound();
    const again = runCliJson<{ new: number; unchanged: number; bytesHashed: number }>(home, ['update']);
    assert.equal(again.code, 0, again.stderr);
    // Folders are catalogued too, so the counts are at least the files.
    assert.ok(again.json.new + again.json.unchanged >= allFiles);
    // Exit 0 is right only when the run had already finished: then nothing is left to hash.
    if (r.code === 0) assert.equal(again.json.bytesHashed, 0, 'exit 0 after Ctrl-C, yet files were left unhashed');
  });

  await t.test('sync leaves only correct objects and a catalogue that counts no partial copy', async (t) => {
    fs.mkdirSync(disk());
    assert.equal(runCli(home, ['disk', 'add', 'd1', disk()]).code, 0);
    const objects = path.join(disk(), 'distbackup-objects');
    const someObject = (): boolean => fs.existsSync(objects) && fs.readdirSync(objects).some((d) => !d.startsWith('.'));
    const r = await interrupt(['sync', '--disk', disk(), '--bwlimit', '40M'], someObject);
    assertInterrupted(t, 'sync', r);
    catalogueSound();
    for (const prefix of fs.readdirSync(objects).filter((d) => !d.startsWith('.'))) {
      for (const name of fs.readdirSync(path.join(objects, prefix))) {
        const h = createHash('sha256')
          .update(fs.readFileSync(path.join(objects, prefix, name)))
          .digest('hex');
        assert.equal(h, name, `object ${name} holds its named content`);
      }
    }
    const again = runCliJson<{ copied: number; minCopiesAfter: number }>(home, ['sync', '--disk', disk()]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.json.minCopiesAfter, 1);
    if (r.code === 0) assert.equal(again.json.copied, 0, 'exit 0 after Ctrl-C, yet objects were left to copy');
  });

  await t.test('verify stops, and a later verify checks every object', async (t) => {
    const r = await interrupt(['verify', '--disk', disk()], () => true);
    assertInterrupted(t, 'verify', r);
    catalogueSound();
    const again = runCliJson<{ checked: number; bad: string[] }>(home, ['verify', '--disk', disk()]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(again.json.bad, []);
  });

  await t.test('restore stops, and the next restore completes the tree', async (t) => {
    const dest = path.join(root, 'restored');
    const r = await interrupt(['restore', '--disk', disk(), '--to', dest], () =>
      fs.existsSync(path.join(dest, 'bench')),
    );
    assertInterrupted(t, 'restore', r);
    catalogueSound();
    const again = runCliJson<{ remaining: number; restored: number }>(home, [
      'restore',
      '--disk',
      disk(),
      '--to',
      dest,
    ]);
    if (r.code === 0) assert.equal(again.json.restored, 0, 'exit 0 after Ctrl-C, yet files were left to restore');
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.json.remaining, 0);
    assert.equal(compareRestore(small, path.join(dest, 'bench', 'small')), undefined);
    assert.equal(compareRestore(large, path.join(dest, 'bench', 'large')), undefined);
  });
});
