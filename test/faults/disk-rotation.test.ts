/**
 * Disks take turns at one mount point (one drive connected at a time), and one drive is one
 * disk: `disk add` at the mount point of a registered disk that is not there (another
 * filesystem mounted in its place) registers a new disk, and a folder of a registered disk's
 * filesystem is refused wherever that filesystem is mounted. Real ext4 images on loop devices.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { cli, countFault, countViolations } from '../helpers/faults.js';
import { faultDir, mountExt4, sweepStaleMounts } from '../helpers/mounts.js';

sweepStaleMounts();

const FAULT = 'disks taking turns at one mount point';

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

test('disk add: a new drive at the mount point of an unplugged disk is a disk of its own; the same drive mounted elsewhere is refused', {
  timeout: 90_000,
}, (t) => {
  const a = mountExt4(t, { sizeBytes: 16 << 20 });
  if (a === null) return;
  const b = mountExt4(t, { sizeBytes: 16 << 20 });
  if (b === null) return;
  const home = faultDir(t, 'home');
  const v: string[] = [];
  const expect = (args: string[], code: number, what: string, re?: RegExp): void => {
    const r = cli(home, args);
    countFault(FAULT, 'disk add at a shared mount point, and the same drive mounted twice');
    if (r.code !== code || (re !== undefined && !re.test(r.stderr)))
      v.push(`${what}: exit ${r.code}, expected ${code}: ${r.stderr.trim().slice(0, 300)}`);
  };
  expect(['disk', 'add', 'first', a.dir, '--size', '8M'], 0, 'the first drive');
  // The first drive unplugged, the second mounted where it was.
  const mountPoint = a.dir;
  const bImage = b.image as string;
  sh('umount', [b.dir]);
  sh('umount', [mountPoint]);
  sh('mount', ['-o', 'loop', bImage, mountPoint]);
  fs.rmSync(path.join(mountPoint, 'lost+found'), { recursive: true, force: true });
  expect(['disk', 'add', 'second', mountPoint, '--size', '8M'], 0, 'another drive where the first was');
  expect(
    ['disk', 'add', 'inside', path.join(mountPoint, 'sub'), '--size', '8M'],
    2,
    'inside the second',
    /lies inside/,
  );
  // The second drive's filesystem mounted a second time elsewhere: its folders are refused there too.
  sh('mount', ['--bind', mountPoint, b.dir]);
  expect(
    ['disk', 'add', 'again', b.dir, '--size', '8M'],
    2,
    'the second drive at its other mount point',
    /disk 'second'/,
  );
  fs.rmSync(path.join(b.dir, 'distbackup-disk.json'), { force: true });
  expect(
    ['disk', 'add', 'again', path.join(b.dir, 'x'), '--size', '8M'],
    2,
    'inside it there, its identity file gone',
    /disk 'second'/,
  );
  sh('umount', [b.dir]);
  const list = cli(home, ['disk', 'list', '--json']);
  const names = (JSON.parse(list.stdout) as { name: string }[]).map((d) => d.name).sort();
  if (names.join() !== 'first,second') v.push(`registered: ${names.join(', ')}`);
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});
