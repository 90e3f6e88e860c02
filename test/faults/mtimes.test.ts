/**
 * Fault 11: clock and time (RELIABILITY.md test 18). Files with mtimes in the far future and
 * before 1970 (negative) are catalogued, synced and restored with their mtime; a second update of
 * the unchanged source sees nothing changed (no false "changed" from a lossy mtime round trip);
 * a tree restored onto a FAT filesystem (2-second mtimes) keeps mtimes within that granularity.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { countFault, countViolations, expectExit, rngFor } from '../helpers/faults.js';
import { makeFixture, seededBytes } from '../helpers/faults-fixture.js';
import { skipUnlessCommands } from '../helpers/faults-kill.js';
import { checkInvariants } from '../helpers/invariants.js';
import { mountFuse, sweepStaleMounts } from '../helpers/mounts.js';

sweepStaleMounts();

const FAULT = 'mtimes in the future, before 1970, on FAT';

const TIMES: [string, number][] = [
  ['future-2100.bin', Date.UTC(2100, 0, 1, 12, 0, 0, 500) / 1000],
  ['past-1960.bin', Date.UTC(1960, 5, 15, 8, 30, 0, 250) / 1000],
  ['epoch-minus-1.bin', -1],
  ['y2038.bin', 2 ** 31 + 10],
];

test('mtimes in the future and before 1970 survive update, sync and restore; the next update sees no change', {
  timeout: 120_000,
}, (t) => {
  if (skipUnlessCommands(t, ['update', 'sync', 'restore'])) return;
  const fx = makeFixture(t, { rng: rngFor('mtimes'), scale: 0.05, only: ['d1'] });
  if (fx === null) return;
  const times = path.join(fx.src, 'times');
  fs.mkdirSync(times);
  for (const [name, s] of TIMES) {
    const p = path.join(times, name);
    fs.writeFileSync(p, seededBytes(name, 2000));
    fs.utimesSync(p, s, s);
  }
  countFault(FAULT, 'utimes to 2100, 1960, -1 s, 2038+; restore onto fusefat', TIMES.length);
  fx.update();
  const v: string[] = [];
  const second = fx.json<{ changed: number; new: number; unchanged: number }>(['update']);
  if ((second.json?.changed ?? -1) !== 0 || (second.json?.new ?? -1) !== 0) {
    v.push(`a second update of an unchanged tree: ${JSON.stringify(second.json)}`);
  }
  fx.sync('d1');
  const dest = path.join(fx.root, 'dest');
  expectExit(fx.run(['restore', '--to', dest, '--disk', fx.disk('d1').path, '--quiet']), 0, 'restore');
  for (const [name] of TIMES) {
    const a = fs.statSync(path.join(times, name), { bigint: true });
    const b = fs.statSync(path.join(dest, 'data', 'times', name), { bigint: true });
    const diffMs = Number(a.mtimeNs - b.mtimeNs) / 1e6;
    if (Math.abs(diffMs) >= 1) v.push(`${name}: restored mtime differs by ${diffMs} ms`);
  }
  v.push(...checkInvariants(fx).violations);
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});

for (const kind of ['vfat', 'exfat'] as const) {
  const label = kind === 'vfat' ? 'FAT (fusefat, 2-second mtimes)' : 'exFAT (1-second mtimes)';
  test(`a restore onto ${label} keeps every mtime within 2 s`, { timeout: 120_000 }, (t) => {
    if (skipUnlessCommands(t, ['update', 'sync', 'restore'])) return;
    const fx = makeFixture(t, { rng: rngFor('mtimes-fat'), scale: 0.05, only: ['d1'] });
    if (fx === null) return;
    const m = mountFuse(t, kind, 64 << 20);
    if (m === null) return;
    const odd = path.join(fx.src, 'fat');
    fs.mkdirSync(odd);
    const fatTimes: [string, number][] = [
      ['odd-second.bin', Date.UTC(2020, 1, 2, 3, 4, 5, 500) / 1000],
      ['old.bin', Date.UTC(1990, 0, 1, 0, 0, 1) / 1000],
    ];
    for (const [name, s] of fatTimes) {
      fs.writeFileSync(path.join(odd, name), seededBytes(name, 3000));
      fs.utimesSync(path.join(odd, name), s, s);
    }
    countFault(FAULT, 'utimes to 2100, 1960, -1 s, 2038+; restore onto fusefat', fatTimes.length);
    fx.update();
    fx.sync('d1');
    const dest = path.join(m.dir, 'dest');
    const r = fx.run(['restore', '/data/fat', '--to', dest, '--disk', fx.disk('d1').path, '--quiet']);
    const v: string[] = [];
    if (r.code !== 0) v.push(`restore onto FAT exited ${r.code}: ${r.stderr.slice(0, 300)}`);
    for (const [name, s] of fatTimes) {
      const p = path.join(dest, 'data', 'fat', name);
      if (!fs.existsSync(p)) {
        v.push(`${name} not restored onto FAT`);
        continue;
      }
      const got = fs.statSync(p).mtimeMs / 1000;
      if (Math.abs(got - s) > 2) v.push(`${name}: mtime on FAT ${got}, source ${s}`);
    }
    countViolations(FAULT, v);
    assert.deepEqual(v, []);
  });
}
