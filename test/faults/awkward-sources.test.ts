/**
 * Fault 10: awkward sources (RELIABILITY.md test 14, failure modes 15–17). Names that are not
 * UTF-8 (three that a UTF-8 decoder would confuse), newlines, shell syntax, a leading `-`, a
 * 255-byte name, a path deeper than PATH_MAX (made with relative `cd`), symlink loops and
 * dangling links, a FIFO (never opened, no hang), hard links, a sparse 10 GB file, and a file
 * unreadable by an unprivileged user. Every regular file comes back byte-exact under its exact
 * name; links come back as links; the FIFO and unreadable files are reported, not fatal.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { cli, countFault, countViolations, expectExit, have, IS_ROOT, rngFor, skipTest } from '../helpers/faults.js';
import { makeFixture, seededBytes } from '../helpers/faults-fixture.js';
import { skipUnlessCommands } from '../helpers/faults-kill.js';
import { checkInvariants, readHome } from '../helpers/invariants.js';
import { faultDir, sweepStaleMounts } from '../helpers/mounts.js';

sweepStaleMounts();

const FAULT = 'awkward source names and types';
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const B = (s: string | number[]): Buffer => (typeof s === 'string' ? Buffer.from(s) : Buffer.from(s));
const join = (...parts: Buffer[]): Buffer => Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [p] : [B('/'), p])));

/** Every regular file and link under `dir`, by relative path as bytes (hex) → digest. */
function digestBytes(dir: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: Buffer, rel: Buffer): void => {
    let names: Buffer[];
    try {
      names = fs.readdirSync(d, { encoding: 'buffer' });
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      const r = rel.length === 0 ? n : join(rel, n);
      let st: fs.Stats;
      try {
        st = fs.lstatSync(p);
      } catch {
        continue; // deeper than PATH_MAX: checked separately with relative cd
      }
      if (st.isSymbolicLink())
        out.set(r.toString('hex'), `link:${fs.readlinkSync(p, { encoding: 'buffer' }).toString('hex')}`);
      else if (st.isDirectory()) walk(p, r);
      else if (st.isFile() && st.size > 64 * 1024 * 1024) out.set(r.toString('hex'), `size:${st.size}`);
      else if (st.isFile()) out.set(r.toString('hex'), sha(fs.readFileSync(p)));
      else out.set(r.toString('hex'), 'special');
    }
  };
  walk(dir, Buffer.alloc(0));
  return out;
}

const DEEP_NAME = 'd'.repeat(200);
const DEEP_LEVELS = 24; // 24 × 201 bytes: a path longer than PATH_MAX (4096)

/** Make `<dir>/ddd…/ddd…/…/deep.txt` deeper than PATH_MAX with relative `cd` (mkdir -p cannot). */
function makeDeep(dir: string, content: string): void {
  const script = `cd "$1" && i=0; while [ $i -lt ${DEEP_LEVELS} ]; do mkdir ${DEEP_NAME} && cd -P ${DEEP_NAME} || exit 1; i=$((i+1)); done; printf %s "$2" > deep.txt`;
  const r = spawnSync('sh', ['-c', script, 'sh', dir, content], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`making the deep path failed: ${r.stderr}`);
}

/** Read `deep.txt` under `dir` with relative `cd` (null when it is not there). */
function readDeep(dir: string): string | null {
  const script = `cd "$1" && i=0; while [ $i -lt ${DEEP_LEVELS} ]; do cd -P ${DEEP_NAME} || exit 1; i=$((i+1)); done; cat deep.txt`;
  const r = spawnSync('sh', ['-c', script, 'sh', dir], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : null;
}

test('awkward names, symlink loops, dangling links, a FIFO and hard links: back byte-exact', {
  timeout: 180_000,
}, (t) => {
  if (skipUnlessCommands(t, ['update', 'sync', 'restore'])) return;
  const fx = makeFixture(t, { rng: rngFor('awkward'), scale: 0.05, only: ['d1'] });
  if (fx === null) return;
  const odd = path.join(fx.root, 'odd');
  fs.mkdirSync(odd);
  const oddB = B(odd);
  const names: Buffer[] = [
    B([0x62, 0x61, 0x64, 0xff]), // "bad\xff"
    B([0x62, 0x61, 0x64, 0xfe]), // "bad\xfe"
    B('bad\uFFFD'), // a real U+FFFD: the one a lossy decoder maps the two above to
    B('new\nline.txt'),
    B('tab\there'),
    B('100%25 %0A'),
    B('$(id);id'),
    B('`id`'),
    B('-leading-dash'),
    B('caf\u00e9'),
    B('cafe\u0301'),
    B(`${'n'.repeat(251)}.bin`),
  ];
  for (const [i, n] of names.entries()) fs.writeFileSync(join(oddB, n), seededBytes(`odd${i}`, 1000 + i));
  fs.symlinkSync('loop-b', path.join(odd, 'loop-a'));
  fs.symlinkSync('loop-a', path.join(odd, 'loop-b'));
  fs.symlinkSync('does/not/exist', path.join(odd, 'dangling'));
  fs.writeFileSync(path.join(odd, 'hard1.bin'), seededBytes('hard', 5000));
  fs.linkSync(path.join(odd, 'hard1.bin'), path.join(odd, 'hard2.bin'));
  spawnSync('mkfifo', [path.join(odd, 'fifo')]);
  countFault(
    FAULT,
    'non-UTF-8, newline, shell, 255-byte, >PATH_MAX, loops, FIFO, hard links, sparse 10 GB',
    names.length + 6,
  );
  expectExit(fx.run(['source', 'map', '/odd', odd]), 0, 'map the odd source');
  const v: string[] = [];
  const u = fx.json<{ errors: { path: string; error: string }[] }>(['update'], { timeoutMs: 120_000 });
  if (u.signal !== null) v.push(`update was killed after ${u.ms} ms (a hang on the FIFO?)`);
  if (u.code !== 0 && u.code !== 1) v.push(`update exited ${u.code}: ${u.stderr.slice(0, 300)}`);
  const home = readHome(fx.dataDir);
  const at = (rel: Buffer): string | null | undefined => home?.files.get(join(B('/odd'), rel).toString('hex'));
  for (const n of names) if (at(n) === undefined) v.push(`not catalogued: ${JSON.stringify(n.toString('latin1'))}`);
  const bads = names.slice(0, 3).map((n) => at(n));
  if (new Set(bads).size !== 3) v.push('the three names a UTF-8 decoder confuses did not stay three files');
  if (at(B('hard1.bin')) !== at(B('hard2.bin')) || at(B('hard1.bin')) === undefined)
    v.push('hard links are not one object');
  if (at(B('fifo')) !== undefined) v.push('the FIFO was catalogued as a regular file');
  // Sync and restore.
  const s = fx.run(['sync', 'd1', '--quiet'], { timeoutMs: 120_000 });
  if (s.code !== 0 && s.code !== 1) v.push(`sync exited ${s.code}: ${s.stderr.slice(0, 300)}`);
  v.push(...checkInvariants(fx).violations);
  const dest = path.join(fx.root, 'dest');
  const r = fx.run(['restore', '/odd', '--to', dest, '--disk', fx.disk('d1').path, '--quiet'], { timeoutMs: 60_000 });
  if (r.signal !== null) v.push(`restore killed: ${r.signal}`);
  const want = digestBytes(oddB);
  const got = digestBytes(B(path.join(dest, 'odd')));
  for (const [k, h] of want) {
    const name = Buffer.from(k, 'hex').toString('latin1');
    if (name === 'fifo') continue;
    if (got.get(k) !== h)
      v.push(`not restored byte-exact: ${JSON.stringify(name)} (${got.has(k) ? 'differs' : 'missing'})`);
  }
  if (got.has(B('fifo').toString('hex'))) v.push('a FIFO was restored');
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});

test('a file deeper than PATH_MAX (made with relative cd) is catalogued under its full path, backed up and restored', {
  timeout: 90_000,
}, (t) => {
  if (skipUnlessCommands(t, ['update', 'sync', 'restore'])) return;
  const fx = makeFixture(t, { rng: rngFor('awkward-deep'), scale: 0.05, only: ['d1'] });
  if (fx === null) return;
  const deep = path.join(fx.root, 'deep');
  fs.mkdirSync(deep);
  makeDeep(deep, 'deep content');
  countFault(FAULT, 'non-UTF-8, newline, shell, 255-byte, >PATH_MAX, loops, FIFO, hard links, sparse 10 GB', 1);
  expectExit(fx.run(['source', 'map', '/deep', deep]), 0, 'map the deep source');
  const v: string[] = [];
  const u = fx.json<{ errors: { path: string; error: string }[] }>(['update']);
  if (u.code !== 0) v.push(`update exited ${u.code}: ${JSON.stringify(u.json?.errors ?? []).slice(0, 300)}`);
  const want = `/deep/${Array.from({ length: DEEP_LEVELS }, () => DEEP_NAME).join('/')}/deep.txt`;
  const got = readHome(fx.dataDir)?.files.get(B(want).toString('hex'));
  if (got !== sha(B('deep content'))) v.push(`the file deeper than PATH_MAX is catalogued with ${String(got)}`);
  fx.sync('d1');
  const dest = path.join(fx.root, 'dest');
  fx.run(['restore', '/deep', '--to', dest, '--disk', fx.disk('d1').path, '--quiet']);
  if (readDeep(path.join(dest, 'deep')) !== 'deep content') v.push('the file deeper than PATH_MAX was not restored');
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});

test('a file and a folder without read permission, checked as nobody: reported, the rest backed up', {
  timeout: 90_000,
}, (t) => {
  if (skipUnlessCommands(t, ['update'])) return;
  if (!IS_ROOT || !have('setpriv')) {
    skipTest(t, 'needs root and setpriv to run as nobody', have('setpriv'));
    return;
  }
  const root = faultDir(t, 'perm');
  fs.chmodSync(root, 0o755);
  const home = path.join(root, 'home');
  const src = path.join(root, 'src');
  fs.mkdirSync(path.join(src, 'locked'), { recursive: true });
  fs.writeFileSync(path.join(src, 'ok.bin'), seededBytes('ok', 3000));
  fs.writeFileSync(path.join(src, 'secret.bin'), seededBytes('secret', 3000));
  fs.writeFileSync(path.join(src, 'locked', 'inside.bin'), seededBytes('inside', 3000));
  fs.chmodSync(path.join(src, 'secret.bin'), 0o000);
  fs.chmodSync(path.join(src, 'locked'), 0o000);
  fs.mkdirSync(home);
  fs.chownSync(home, 65534, 65534);
  const nobody = { prefix: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'], timeoutMs: 60_000 };
  expectExit(cli(home, ['source', 'map', '/s', src], nobody), 0, 'source map as nobody');
  const u = cli(home, ['update', '--json'], nobody);
  countFault(FAULT, 'chmod 000 file and folder, update as nobody (setpriv)', 2);
  const v: string[] = [];
  if (u.code !== 1) v.push(`update as nobody exited ${u.code}, expected 1: ${u.stderr.slice(0, 200)}`);
  let doc: { errors?: { path: string; error: string }[] } = {};
  try {
    doc = JSON.parse(u.stdout);
  } catch {
    v.push('update printed no JSON');
  }
  const errs = doc.errors ?? [];
  if (!errs.some((e) => e.path.includes('secret.bin') && /EACCES/.test(e.error)))
    v.push(`secret.bin not reported with EACCES: ${JSON.stringify(errs)}`);
  if (!errs.some((e) => e.path.includes('locked') && /EACCES/.test(e.error)))
    v.push(`locked/ not reported with EACCES: ${JSON.stringify(errs)}`);
  const h = readHome(home);
  if (h?.files.get(B('/s/ok.bin').toString('hex')) !== sha(seededBytes('ok', 3000))) v.push('ok.bin was not hashed');
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});

test('a file its owner may not read (mode 000, 200), restored by nobody from the disk alone, ends with its bytes and its mode', {
  timeout: 90_000,
}, (t) => {
  if (skipUnlessCommands(t, ['update', 'sync', 'restore'])) return;
  if (!IS_ROOT || !have('setpriv')) {
    skipTest(t, 'needs root and setpriv to restore as nobody', have('setpriv'));
    return;
  }
  const root = faultDir(t, 'modes');
  fs.chmodSync(root, 0o755);
  const home = path.join(root, 'home');
  const src = path.join(root, 'src');
  fs.mkdirSync(src);
  const files: Record<string, [Buffer, number]> = {
    'none.bin': [seededBytes('none', 5000), 0o000],
    'write-only.bin': [seededBytes('write', 7000), 0o200],
    'plain.bin': [seededBytes('plain', 3000), 0o644],
  };
  for (const [name, [bytes, mode]] of Object.entries(files)) {
    fs.writeFileSync(path.join(src, name), bytes);
    fs.chmodSync(path.join(src, name), mode);
  }
  const disk = path.join(root, 'disk');
  expectExit(cli(home, ['source', 'map', '/s', src]), 0, 'source map');
  expectExit(cli(home, ['update']), 0, 'update');
  expectExit(cli(home, ['disk', 'add', 'd', disk, '--size', '1G']), 0, 'disk add');
  expectExit(cli(home, ['sync', 'd']), 0, 'sync');
  // The disk as another machine's user finds it: readable by all, the home catalogue gone.
  spawnSync('chmod', ['-R', 'a+rX', disk]);
  const out = path.join(root, 'out');
  fs.mkdirSync(out);
  fs.chownSync(out, 65534, 65534);
  const nobody = { prefix: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'], timeoutMs: 60_000 };
  const r = cli(
    path.join(root, 'no-home'),
    ['restore', '--disk', disk, '--catalogue', 'disk', '--to', path.join(out, 'dest')],
    nobody,
  );
  countFault('restore of unreadable modes', 'files of mode 000 and 200 restored as nobody (setpriv)', 2);
  const v: string[] = [];
  if (r.code !== 0) v.push(`restore as nobody exited ${r.code}: ${r.stderr.slice(0, 300)}`);
  for (const [name, [bytes, mode]] of Object.entries(files)) {
    const p = path.join(out, 'dest', 's', name);
    if (!fs.existsSync(p)) {
      v.push(`${name} not restored`);
      continue;
    }
    if (!fs.readFileSync(p).equals(bytes)) v.push(`${name}: other bytes`);
    const got = fs.statSync(p).mode & 0o7777;
    if (got !== mode) v.push(`${name}: mode ${got.toString(8)}, not ${mode.toString(8)}`);
  }
  countViolations('restore of unreadable modes', v);
  assert.deepEqual(v, []);
});
