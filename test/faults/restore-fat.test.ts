/**
 * Restore onto FAT over FUSE (fusefat), RELIABILITY.md test 14: names FAT refuses and modes it
 * cannot keep. Each file that cannot be created is one line naming its path and the errno, the
 * rest is restored byte-exact, modes lost are one warning, and a second run (the restore state
 * kept on FAT itself) goes on without redoing anything.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { countFault, countViolations, rngFor } from '../helpers/faults.js';
import { makeFixture, seededBytes } from '../helpers/faults-fixture.js';
import { skipUnlessCommands } from '../helpers/faults-kill.js';
import { mountFuse, sweepStaleMounts } from '../helpers/mounts.js';

sweepStaleMounts();

const FAULT = 'restore onto FAT: refused names, lost modes';
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('restore onto fusefat: each name FAT refuses is one line with its errno, the rest is restored', {
  timeout: 180_000,
}, (t) => {
  if (skipUnlessCommands(t, ['update', 'sync', 'restore'])) return;
  const fx = makeFixture(t, { rng: rngFor('restore-fat'), scale: 0.05, only: ['d1'] });
  if (fx === null) return;
  const m = mountFuse(t, 'vfat', 64 << 20);
  if (m === null) return;
  const dir = path.join(fx.src, 'fat');
  fs.mkdirSync(dir);
  const good = ['plain.txt', 'Mixed Case.bin', 'exec.sh'];
  const refused = ['colon:name.txt', 'question?.txt', 'star*.txt', 'angle<.txt'];
  for (const n of [...good, ...refused]) fs.writeFileSync(path.join(dir, n), seededBytes(n, 2000 + n.length));
  fs.chmodSync(path.join(dir, 'exec.sh'), 0o755);
  countFault(FAULT, 'names with : ? * <, a 0755 file, onto fusefat', refused.length + 1);
  fx.update();
  fx.sync('d1');
  const dest = path.join(m.dir, 'dest');
  const args = ['restore', '/data/fat', '--to', dest, '--disk', fx.disk('d1').path, '--quiet'];
  const r = fx.json<{ restored: number; errors: { path: string; error: string }[]; warnings: string[] }>(args);
  const v: string[] = [];
  if (r.code !== 4) v.push(`restore onto FAT exited ${r.code}, expected 4 (files missing): ${r.stderr.slice(0, 300)}`);
  if (/disk I\/O error/.test(r.stderr)) v.push(`a SQLite error on FAT: ${r.stderr.slice(0, 200)}`);
  const errors = r.json?.errors ?? [];
  for (const n of refused) {
    const e = errors.find((x) => x.path === `/data/fat/${n}`);
    if (e === undefined || !/E[A-Z]+/.test(e.error))
      v.push(`${n}: not listed with its errno (${JSON.stringify(errors)})`);
  }
  for (const n of good) {
    const p = path.join(dest, 'data', 'fat', n);
    if (!fs.existsSync(p) || sha(fs.readFileSync(p)) !== sha(seededBytes(n, 2000 + n.length))) {
      v.push(`${n} not restored byte-exact onto FAT`);
    }
  }
  if (!(r.json?.warnings ?? []).some((w) => /modes are not preserved/.test(w))) {
    v.push(`no warning that modes are lost: ${JSON.stringify(r.json?.warnings)}`);
  }
  // Text output: one line per refused file, naming it.
  const text = fx.run(args.filter((a) => a !== '--quiet'));
  for (const n of refused) {
    if (!text.stderr.split('\n').some((l) => l.startsWith('error: ') && l.includes(n))) {
      v.push(`no error line naming ${n}: ${text.stderr.slice(0, 300)}`);
    }
  }
  // The second run read the state kept on FAT: nothing was written again.
  const again = fx.json<{ restored: number; alreadyRestored: number }>(args);
  if ((again.json?.restored ?? -1) !== 0) v.push(`a third run restored ${again.json?.restored} files again`);
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});
