/** The global flags through the built CLI: -v counting, the run log, and piped stdin. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { CLI, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const pad = (n: number): string => String(n).padStart(2, '0');
/** Today's default log file of `data` (local date, as the CLI names it). */
function todayLog(data: string): string {
  const d = new Date();
  return path.join(data, 'logs', `distbackup-${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}.log`);
}

function world(t: import('node:test').TestContext): { root: string; data: string; real: string } {
  const root = tempDir(t);
  const real = path.join(root, 'real');
  fs.mkdirSync(real);
  return { root, data: path.join(root, 'data'), real };
}

test('-v, -vv and -v -v: debug lines from two, error stacks from one', (t) => {
  const { data, real } = world(t);
  assert.equal(runCli(data, ['source', 'map', '/r', real]).code, 0);
  const zero = runCli(data, ['status']);
  const one = runCli(data, ['status', '-v']);
  const two = runCli(data, ['status', '-vv']);
  const twoApart = runCli(data, ['status', '-v', '-v']);
  const long = runCli(data, ['status', '--verbose', '--verbose']);
  for (const r of [zero, one, two, twoApart, long]) assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(zero.stderr, /^debug: /m);
  assert.doesNotMatch(one.stderr, /^debug: /m);
  for (const r of [two, twoApart, long]) {
    assert.match(r.stderr, new RegExp(`^debug: data folder ${data.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'm'));
    assert.match(r.stderr, /^debug: catalogue .*distbackup\.sqlite opened read-only$/m);
  }
  // An error: one line without -v; the stack from -v on.
  const bad = runCli(data, ['source', 'unmap', '/nothing-here']);
  const badV = runCli(data, ['source', 'unmap', '/nothing-here', '-v']);
  assert.equal(bad.code, badV.code);
  assert.notEqual(bad.code, 0);
  assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  assert.match(badV.stderr, /^\s+at /m);
  // A usage error is counted from the raw command line (parsing failed): -vv still shows the stack.
  const usage = runCli(data, ['status', '--no-such-flag', '-vv']);
  assert.equal(usage.code, 1);
  assert.match(usage.stderr, /^\s+at /m);
});

test('the run log: a line at the start, each warning and error, the end with exit code and summary', (t) => {
  const { root, data, real } = world(t);
  const ok = runCli(data, ['source', 'map', '/r', real]);
  assert.equal(ok.code, 0, ok.stderr);
  const file = todayLog(data);
  const first = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  assert.equal(first.length, 2, first.join('\n'));
  assert.match(
    first[0] ?? '',
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d start pid=\d+ version=\d+\.\d+\.\d+/,
  );
  assert.ok(first[0]?.endsWith(`argv: distbackup source map /r ${real}`), first[0]);
  assert.match(first[1] ?? '', / end pid=\d+ exit=0 in \d+\.\d s: mapped \/r -> /);

  // A failure: its error line and exit code are appended; nothing before is lost.
  const fail = runCli(data, ['source', 'map', '/s', path.join(root, 'missing')]);
  assert.equal(fail.code, 1);
  // A warning printed by the command (a mapping whose folder does not exist yet, via config import).
  const conf = path.join(root, 'conf.json');
  fs.writeFileSync(conf, JSON.stringify({ path_map: { '/r': real, '/later': path.join(root, 'later') } }));
  const warned = runCli(data, ['config', 'import', conf]);
  assert.equal(warned.code, 0, warned.stderr);
  assert.match(warned.stderr, /^distbackup: warning: .*later does not exist/m);
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  assert.equal(lines.slice(0, 2).join('\n'), first.join('\n'), 'appended, never truncated');
  const text = lines.join('\n');
  assert.match(text, /start .*argv: distbackup source map \/s /);
  assert.match(text, /\n\S+ {3}distbackup: .*missing.*\n\S+ end pid=\d+ exit=1 in/);
  assert.match(text, /\n\S+ {3}distbackup: warning: .*later does not exist/);
  assert.equal(lines.filter((l) => / start pid=/.test(l)).length, 3);
  assert.equal(lines.filter((l) => / end pid=/.test(l)).length, 3);
});

test('read-only commands and dry runs log only with -v; --no-log writes nothing', (t) => {
  const { data, real } = world(t);
  assert.equal(runCli(data, ['source', 'map', '/r', real, '--no-log']).code, 0);
  assert.equal(fs.existsSync(path.join(data, 'logs')), false, '--no-log: no log folder');
  for (const args of [['status'], ['source', 'list'], ['tree'], ['ls'], ['source', 'map', '/s', real, '-n']]) {
    const r = runCli(data, args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  }
  assert.equal(fs.existsSync(path.join(data, 'logs')), false, 'read-only runs log nothing');
  assert.equal(runCli(data, ['status', '-v']).code, 0);
  assert.match(fs.readFileSync(todayLog(data), 'utf8'), /argv: distbackup status -v\n.* end pid=\d+ exit=0/);
});

test('--log PATTERN: relative to the data folder or absolute; a bad one is one warning, not a failure', (t) => {
  const { root, data, real } = world(t);
  const y = String(new Date().getFullYear());
  assert.equal(runCli(data, ['source', 'map', '/r', real, '--log', 'mine/%Y/run-%m.log']).code, 0);
  const rel = path.join(data, 'mine', y, `run-${pad(new Date().getMonth() + 1)}.log`);
  assert.match(fs.readFileSync(rel, 'utf8'), /argv: distbackup source map \/r /);
  const abs = path.join(root, 'elsewhere', 'x-%Y%%.log');
  assert.equal(runCli(data, ['source', 'set', '/r', '--priority', '2', '--log', abs]).code, 0);
  assert.match(fs.readFileSync(path.join(root, 'elsewhere', `x-${y}%.log`), 'utf8'), /source set \/r --priority 2/);
  // Under a regular file: the folder cannot be made. The command still succeeds.
  const blocker = path.join(root, 'a-file');
  fs.writeFileSync(blocker, '');
  const r = runCli(data, ['source', 'set', '/r', '--priority', '3', '--log', path.join(blocker, 'x.log')]);
  assert.equal(r.code, 0, r.stderr);
  const warnings = r.stderr.split('\n').filter((l) => l.includes('cannot write the log'));
  assert.equal(warnings.length, 1, r.stderr);
  assert.match(warnings[0] ?? '', /^distbackup: warning: cannot write the log .*a-file\/x\.log: (ENOTDIR|EEXIST)/);
  const shown = runCli(data, ['config', 'export']);
  assert.deepEqual(JSON.parse(shown.stdout).path_config, { '/r': { priority: 3 } });
});

test('piped stdin is never read as an argument', (t) => {
  const { data, real } = world(t);
  assert.equal(runCli(data, ['source', 'map', '/r', real]).code, 0);
  const run = (args: string[], input: string) =>
    spawnSync(process.execPath, [CLI, ...args], {
      encoding: 'utf8',
      input,
      env: { ...process.env, DISTBACKUP_PATH: data, NO_COLOR: '1' },
    });
  const plain = run(['status', '--json'], '');
  const piped = run(['status', '--json'], '/x\n');
  assert.equal(piped.status, 0, piped.stderr);
  assert.deepEqual(JSON.parse(piped.stdout), JSON.parse(plain.stdout));
  // An optional argument stays unset: `disk refresh` with no NAME, not a disk named 'zzz'.
  const refresh = run(['disk', 'refresh'], 'zzz\n');
  assert.notEqual(refresh.status, 0);
  assert.doesNotMatch(refresh.stderr, /zzz/);
  const tree = run(['tree', '--json'], '/nothing\n');
  assert.equal(tree.status, 0, tree.stderr);
  assert.equal(JSON.parse(tree.stdout).path, '/');
});

test('on a fresh machine, commands that write nothing leave no data folder, log included', (t) => {
  const { data } = world(t);
  for (const args of [
    ['--help'],
    ['--version'],
    ['status'],
    ['status', '-v'],
    ['tree', '-vv'],
    ['update', '-n', '-v'],
  ]) {
    runCli(data, args);
    assert.equal(fs.existsSync(data), false, `${args.join(' ')} created ${data}`);
  }
  // The first command that creates the data folder keeps the lines its log held until then.
  const real = path.join(path.dirname(data), 'real');
  assert.equal(runCli(data, ['source', 'map', '/r', real, '-v']).code, 0);
  assert.match(fs.readFileSync(todayLog(data), 'utf8'), /start .*argv: distbackup source map \/r \S+ -v\n/);
});

test('a missing argument or flag is one line naming it and the help to read, exit 1', (t) => {
  const { data } = world(t);
  const args = runCli(data, ['disk', 'add']);
  assert.equal(args.code, 1);
  assert.equal(
    args.stderr.trim(),
    "distbackup: missing required arguments: name, path (see 'distbackup disk add --help')",
  );
  const one = runCli(data, ['disk', 'add', 'x']);
  assert.equal(one.stderr.trim(), "distbackup: missing required argument: path (see 'distbackup disk add --help')");
  const flag = runCli(data, ['restore', '/photos']);
  assert.equal(flag.code, 1);
  assert.equal(flag.stderr.trim(), "distbackup: missing required flag --to (see 'distbackup restore --help')");
});
