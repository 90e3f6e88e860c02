#!/usr/bin/env node
// Start-up of the built CLI against another build, in the same run: alternates one run of each
// root per round, then prints per root the median and range of the wall time and of its ratio
// to the first root's run in the same round (the machine's load moves both alike), and, where
// /usr/bin/time exists, the median CPU time (user + system), which other work moves less.
//   node scripts/startup-ab.mjs ROUNDS 'ARGS' ROOT...
// e.g. node scripts/startup-ab.mjs 21 'status --json' /tmp/base .   (a ROOT holds bin/run.js
// and the dist/ it loads; DISTBACKUP_PATH and the rest of the environment pass through).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const [roundsText, argsText, ...roots] = process.argv.slice(2);
const rounds = Number(roundsText);
if (!(rounds > 0) || argsText === undefined || roots.length === 0) {
  process.stderr.write("usage: startup-ab.mjs ROUNDS 'ARGS' ROOT...\n");
  process.exit(1);
}
const args = argsText.split(' ').filter((a) => a !== '');
const TIME = '/usr/bin/time';
const timed = fs.existsSync(TIME);
const cpuFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'startup-ab-')), 'cpu');
const ms = roots.map(() => []);
const cpuMs = roots.map(() => []);
const exits = roots.map(() => new Set());
for (let r = 0; r < rounds; r++) {
  for (const [i, root] of roots.entries()) {
    const cli = [process.execPath, path.join(root, 'bin', 'run.js'), ...args];
    const start = process.hrtime.bigint();
    const run = timed
      ? spawnSync(TIME, ['-f', '%U %S', '-o', cpuFile, ...cli], { stdio: 'ignore' })
      : spawnSync(cli[0], cli.slice(1), { stdio: 'ignore' });
    ms[i].push(Number(process.hrtime.bigint() - start) / 1e6);
    exits[i].add(run.status);
    if (timed) {
      const [user, sys] = fs.readFileSync(cpuFile, 'utf8').trim().split('\n').at(-1).split(' ').map(Number);
      cpuMs[i].push((user + sys) * 1000);
    }
  }
}
fs.rmSync(path.dirname(cpuFile), { recursive: true, force: true });
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const range = (a, digits) => `${Math.min(...a).toFixed(digits)}-${Math.max(...a).toFixed(digits)}`;
for (const [i, root] of roots.entries()) {
  const ratios = ms[i].map((t, r) => t / ms[0][r]);
  process.stdout.write(
    `${argsText}  ${root}: median ${median(ms[i]).toFixed(0)} ms (${range(ms[i], 0)}), ` +
      `ratio ${median(ratios).toFixed(2)} (${range(ratios, 2)}), ` +
      (timed ? `CPU median ${median(cpuMs[i]).toFixed(0)} ms (${range(cpuMs[i], 0)}), ` : '') +
      `exit ${[...exits[i]].join('/')}\n`,
  );
}
