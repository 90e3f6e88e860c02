/**
 * Fault 10 (sparse file): a 10 GB sparse file is catalogued with its apparent size (10 GB, the
 * SHA-256 of 10 GB of zeros), planned by that size, so it is never copied to a disk too small
 * for it, and the sync of that disk still completes for everything else.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { countFault, countViolations, expectExit, noteFault, rngFor } from '../helpers/faults.js';
import { makeFixture } from '../helpers/faults-fixture.js';
import { skipUnlessCommands } from '../helpers/faults-kill.js';
import { checkClean, checkInvariants, withReadonlyDb } from '../helpers/invariants.js';
import { sweepStaleMounts } from '../helpers/mounts.js';

sweepStaleMounts();

const FAULT = 'awkward source names and types';
/** SHA-256 of 10 × 1024³ zero bytes. */
const SIZE = 10 * 1024 ** 3;

test('a sparse 10 GB file: catalogued at its apparent size, never squeezed onto a small disk', {
  timeout: 150_000,
}, (t) => {
  if (skipUnlessCommands(t, ['update', 'sync'])) return;
  const fx = makeFixture(t, { rng: rngFor('sparse'), scale: 0.05, only: ['d1'] });
  if (fx === null) return;
  const sp = path.join(fx.root, 'sparse');
  fs.mkdirSync(sp);
  fs.writeFileSync(path.join(sp, 'sparse-10G.bin'), '');
  fs.truncateSync(path.join(sp, 'sparse-10G.bin'), SIZE);
  expectExit(fx.run(['source', 'map', '/sparse', sp]), 0, 'map');
  countFault(FAULT, 'non-UTF-8, newline, shell, 255-byte, >PATH_MAX, loops, FIFO, hard links, sparse 10 GB', 1);
  const u = fx.run(['update', '--quiet'], { timeoutMs: 140_000 });
  noteFault(FAULT, `update with a sparse 10 GB file took ${u.ms} ms`);
  const v: string[] = [];
  if (u.code !== 0) v.push(`update exited ${u.code} ${u.signal ?? ''}: ${u.stderr.slice(0, 200)}`);
  const size = withReadonlyDb(path.join(fx.dataDir, 'distbackup.sqlite'), (db) =>
    db.prepare(`SELECT size FROM files WHERE vpath = ?`).pluck().get(Buffer.from('/sparse/sparse-10G.bin')),
  );
  if (Number(size) !== SIZE) v.push(`catalogued size ${String(size)}, expected ${SIZE}`);
  const s = fx.run(['sync', 'd1', '--quiet'], { timeoutMs: 60_000 });
  if (s.code !== 0) v.push(`sync of a disk too small for it exited ${s.code}: ${s.stderr.slice(0, 200)}`);
  const after = checkInvariants(fx);
  v.push(...after.violations, ...checkClean(after.truth));
  const used = after.truth.disks[0]?.objects.size ?? 0;
  if (used === 0) v.push('nothing was copied to d1');
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});
