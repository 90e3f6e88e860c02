import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderStatus } from '../../src/status/render.js';
import { type StatusDisk, type StatusDoc, verdictOf } from '../../src/status/status.js';

function disk(name: string, degraded: number, lost = 0): StatusDisk {
  return {
    name,
    uuid: '00000000-0000-0000-0000-000000000000',
    size: 1e12,
    used: 5e11,
    objects: 100,
    lastSeen: null,
    lastSync: null,
    lastVerify: null,
    dropped: null,
    lossIfDead: { objects: lost, bytes: lost * 10, files: lost },
    degradedIfDead: { objects: degraded, bytes: degraded * 10, files: degraded },
    notSeenStale: false,
    staleCopies: 0,
    neverVerified: 0,
  };
}

function doc(min: number | null, disks: StatusDisk[], zeroFiles = 0): StatusDoc {
  return {
    files: 5000,
    objects: 4000,
    bytes: 1e9,
    minCopies: min,
    unhashed: 0,
    histogram: [
      { copies: 0, objects: zeroFiles, bytes: 0, files: zeroFiles },
      { copies: 1, objects: 0, bytes: 0, files: 0 },
      { copies: 2, objects: 4000, bytes: 1e9, files: 5000 },
      { copies: 3, objects: 0, bytes: 0, files: 0 },
    ],
    saturated: null,
    notBackedUp: { objects: 0, bytes: 0, files: 0 },
    disks,
    worstPair: null,
    staleDays: 90,
    staleMs: 90 * 86_400_000,
    verdict: '',
  };
}

test('the verdict names the disk whose loss leaves the most files with one copy', () => {
  const v = verdictOf(doc(2, [disk('backup-01', 10), disk('backup-02', 1204), disk('backup-03', 7)]));
  assert.equal(v, 'every file has at least 2 copies; losing backup-02 would leave 1,204 files with one copy');
});

test('the verdict says what has no copy, and what a single copy puts at risk', () => {
  assert.match(verdictOf(doc(0, [disk('a', 0)], 12)), /^12 files \(12 objects\) have no copy on any disk/);
  assert.equal(
    verdictOf(doc(1, [disk('a', 30), disk('b', 3)])),
    'every file has at least 1 copy; losing a would lose 30 files',
  );
  assert.equal(verdictOf(doc(3, [disk('a', 0)])), 'every file has at least 3 copies');
  assert.equal(verdictOf({ ...doc(null, []), files: 0 }), 'nothing catalogued yet: map a source and run update');
});

test('the verdict claims only the hashed files when some are not, and gives the stale period as given', () => {
  assert.equal(
    verdictOf({ ...doc(2, [disk('a', 0)]), unhashed: 3 }),
    'every hashed file has at least 2 copies; 3 files not hashed yet (run update)',
  );
  const d = { ...disk('a', 0), staleCopies: 4 };
  assert.equal(
    verdictOf({ ...doc(2, [d]), staleDays: 1, staleMs: 12 * 3_600_000 }),
    'every file has at least 2 copies; 4 copies not verified for over 12h00m (run verify)',
  );
  assert.equal(
    verdictOf({ ...doc(2, [d]), staleDays: 1, staleMs: 86_400_000 }),
    'every file has at least 2 copies; 4 copies not verified for over 1 day (run verify)',
  );
});

test('the rendered status has a bar per copy count and a row per disk', () => {
  const lines = renderStatus({ ...doc(2, [disk('backup-01', 1)]), verdict: 'v' });
  assert.ok(lines.some((l) => /^\s+2\s+█+/.test(l)));
  assert.ok(lines.some((l) => l.startsWith('backup-01')));
  assert.equal(lines[lines.length - 1], 'v');
});

test('with -v the rendered status adds a line per disk on verification and what its loss degrades', () => {
  const d = { ...disk('backup-01', 7), neverVerified: 3, staleCopies: 2 };
  const plain = renderStatus({ ...doc(2, [d]), verdict: 'v' });
  const detail = renderStatus({ ...doc(2, [d]), verdict: 'v' }, { detail: true });
  assert.equal(detail.length, plain.length + 2);
  assert.ok(
    detail.includes(
      'backup-01: 3 copies never verified, 2 not verified for over 90 days, losing it leaves 7 files with 1 copy',
    ),
    detail.join('\n'),
  );
});
