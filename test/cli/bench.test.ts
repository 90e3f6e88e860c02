/**
 * bench through the CLI: the hdd table, runs without peers or with a peer past its time box,
 * the planner suite, bad flags and Ctrl-C. The default run and the all-stages run are in
 * bench-default.test.ts and bench-stages.test.ts.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import type { PlannerReport } from '../../src/bench/planner-suite.js';
import { type BenchReport, STAGES } from '../../src/bench/report.js';
import { leftovers } from '../helpers/bench.js';
import { runCli, runCliJson, startCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

test('bench prints a table per dataset with the ratio legend and the headline', (t) => {
  const root = tempDir(t);
  const r = runCli(path.join(root, 'home'), [
    'bench',
    '--suite',
    'hdd',
    '--size',
    '3M',
    '--datasets',
    'small',
    '--target',
    root,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^distbackup bench, hdd suite/m);
  assert.match(r.stdout, /^start-up, paid by every run before it reads any data: distbackup \d+\.\d+ s/m);
  assert.match(r.stdout, /ratio = distbackup time \/ that tool time/);
  assert.match(r.stdout, /^net = the same ratio with each tool's start-up taken off both times/m);
  assert.match(r.stdout, /^small files: [\d,]+ files, [\d.]+ MB \([\d,]+ duplicates/m);
  assert.match(r.stdout, /^stage\s+command\s+seconds\s+MB\/s\s+files\/s\s+ratio\s+net/m);
  for (const stage of STAGES) assert.match(r.stdout, new RegExp(`^${stage}\\s+distbackup`, 'm'), stage);
  assert.match(r.stdout, /^hash\s+sha256sum ×1\s+\d+\.\d+/m, 'the hdd suite hashes with one process');
  assert.match(r.stdout, /^total [\d.]+ s$/m);
  assert.match(r.stderr, /bench: small: generating/);
  assert.deepEqual(leftovers(root), []);
});

test('bench runs without the optional peers and names the ones it did not find', (t) => {
  const root = tempDir(t);
  const bin = path.join(root, 'bin');
  fs.mkdirSync(bin);
  // Only coreutils, find and xargs: no rsync, openssl, restic, borg, rclone, strace.
  for (const tool of ['cp', 'sync', 'find', 'xargs', 'sha256sum', 'sh', 'lsblk', 'cat']) {
    for (const dir of ['/usr/bin', '/bin', '/usr/local/bin']) {
      const p = path.join(dir, tool);
      if (fs.existsSync(p)) {
        fs.symlinkSync(p, path.join(bin, tool));
        break;
      }
    }
  }
  const r = runCliJson<BenchReport>(
    path.join(root, 'home'),
    ['bench', '--suite', 'ssd', '--size', '2M', '--datasets', 'small', '--target', root],
    { PATH: bin },
  );
  assert.equal(r.code, 0, r.stderr);
  for (const tool of ['rsync', 'openssl', 'restic', 'borg', 'rclone']) {
    assert.ok(r.json.tools.missing.includes(tool), `${tool} reported missing`);
    assert.ok(!r.json.results.some((m) => m.tool === tool), `no ${tool} rows`);
  }
  assert.ok(r.json.results.some((m) => m.tool === 'cp' && m.ok));
  const human = runCli(
    path.join(root, 'home2'),
    ['bench', '--suite', 'ssd', '--size', '2M', '--datasets', 'small', '--target', root, '-q'],
    { PATH: bin },
  );
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^peers not found \(rows left out\): .*rsync.*restic.*borg.*/m);
  assert.equal(human.stderr, '', '--quiet prints no progress');
});

test('a peer run past --peer-timeout is stopped, and its row and the rows that need its backup say so', (t) => {
  const root = tempDir(t);
  const bin = path.join(root, 'bin');
  fs.mkdirSync(bin);
  for (const tool of ['cp', 'sync', 'find', 'xargs', 'sha256sum', 'sh', 'sleep', 'lsblk', 'cat']) {
    for (const dir of ['/usr/bin', '/bin', '/usr/local/bin']) {
      const p = path.join(dir, tool);
      if (fs.existsSync(p)) {
        fs.symlinkSync(p, path.join(bin, tool));
        break;
      }
    }
  }
  // An rclone that starts at once but never finishes a copy.
  const fake = path.join(bin, 'rclone');
  fs.writeFileSync(
    fake,
    '#!/bin/sh\ncase "$1" in version|--version) echo "rclone v0-fake";; lsf) ;; *) exec sleep 60;; esac\n',
  );
  fs.chmodSync(fake, 0o755);
  const r = runCliJson<BenchReport>(
    path.join(root, 'home'),
    ['bench', '--suite', 'ssd', '--size', '2M', '--datasets', 'small', '--target', root, '--peer-timeout', '1s'],
    { PATH: bin },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.peerTimeoutSeconds, 1);
  const rclone = r.json.results.filter((m) => m.tool === 'rclone');
  const sync = rclone.find((m) => m.stage === 'sync');
  assert.equal(sync?.ok, false);
  assert.equal(sync?.note, 'time box: stopped after 1 s');
  for (const m of rclone.filter((x) => x.stage !== 'sync')) {
    assert.equal(m.ok, false, m.label);
    assert.match(m.note ?? '', /skipped: rclone's backup failed/, m.label);
  }
  assert.ok(
    r.json.results.some((m) => m.tool === 'cp' && m.stage === 'sync' && m.ok),
    'the other peers ran',
  );
});

test('bench --suite planner plans a synthetic pool and reports time and memory', (t) => {
  const r = runCliJson<PlannerReport>(tempDir(t), ['bench', '--suite', 'planner', '--objects', '20000,40000']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    r.json.runs.map((x) => [x.objects, x.disks]),
    [
      [20000, 30],
      [40000, 30],
    ],
  );
  for (const run of r.json.runs) {
    assert.ok(run.planSeconds >= 0 && run.copies > 0 && run.minCopiesAfter >= run.minCopiesBefore);
  }
});

test('bench refuses bad flags with one line and exit 1', (t) => {
  const data = tempDir(t);
  for (const [args, re] of [
    [['--size', '10'], /at least 1M/],
    [['--size', 'lots'], /invalid size 'lots'/],
    [['--datasets', 'large,huge'], /--datasets large,huge/],
    [['--suite', 'nvme'], /nvme/],
    [['--peer-timeout', 'soon'], /invalid duration 'soon'/],
  ] as const) {
    const r = runCli(data, ['bench', ...args]);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

test('Ctrl-C ends bench within moments, removes what it generated and exits 130', async (t) => {
  const root = tempDir(t);
  const target = path.join(root, 'target');
  const { child, done } = startCli(path.join(root, 'home'), [
    'bench',
    '--suite',
    'ssd',
    '--size',
    '100M',
    '--target',
    target,
  ]);
  let stderr = '';
  await new Promise<void>((resolve) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      // Interrupt once the first timed run has finished: a tool is running or about to.
      if (/bench: large: hash: /.test(stderr)) resolve();
    });
    child.on('exit', () => resolve());
  });
  assert.ok(fs.existsSync(target) && leftovers(target).length === 1, 'the work folder exists while running');
  const sent = Date.now();
  child.kill('SIGINT');
  const end = await done;
  const took = Date.now() - sent;
  t.diagnostic(`exited ${took} ms after SIGINT`);
  assert.equal(end.code, 130, end.stderr);
  assert.match(end.stderr, /interrupted, cleaning up/);
  assert.deepEqual(leftovers(target), []);
  // No tool left running in its own process group.
  assert.doesNotMatch(
    fs
      .readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .map((p) => {
        try {
          return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
        } catch {
          return '';
        }
      })
      .join('\n'),
    new RegExp(target.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')),
  );
});
