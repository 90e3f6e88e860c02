import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import {
  contentSha256,
  DATASET_KINDS,
  type DatasetPlan,
  planDataset,
  seededRandom,
  writeDataset,
  writeOrder,
} from '../../src/bench/dataset.js';
import { guessSuite, virtualBus, virtualDevice } from '../../src/bench/device.js';
import { parseTracedOpens } from '../../src/bench/exec.js';
import { renderPlannerReport, runPlannerSuite } from '../../src/bench/planner-suite.js';
import { orderOfInodes, readOrder } from '../../src/bench/read-order.js';
import { type BenchReport, headline, type Measurement, renderReport, table } from '../../src/bench/report.js';
import { compareRestore, netRatio } from '../../src/bench/suite.js';
import { isRotational } from '../../src/disk/fsinfo.js';
import { syntheticPool } from '../../src/planner/fixture.js';
import { tempDir } from '../helpers/tmp.js';

test('seededRandom is reproducible and spread over [0, 1)', () => {
  const a = seededRandom(7);
  const b = seededRandom(7);
  const xs = Array.from({ length: 1000 }, () => a());
  assert.deepEqual(
    xs,
    Array.from({ length: 1000 }, () => b()),
  );
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(mean > 0.4 && mean < 0.6, `mean ${mean}`);
  assert.notDeepEqual(xs.slice(0, 10), Array.from({ length: 10 }, seededRandom(8)));
});

test('planDataset is deterministic and close to the size asked', () => {
  for (const kind of DATASET_KINDS) {
    const p = planDataset(kind, 20_000_000, 3);
    assert.deepEqual(planDataset(kind, 20_000_000, 3), p, kind);
    assert.ok(p.bytes >= 19_000_000 && p.bytes <= 21_000_000 + 32 * 1024 ** 2, `${kind}: ${p.bytes}`);
    assert.equal(new Set(p.files.map((f) => f.rel)).size, p.files.length, `${kind}: unique paths`);
    assert.notDeepEqual(planDataset(kind, 20_000_000, 4).files, p.files, `${kind}: the seed matters`);
  }
});

test('planDataset: large has no duplicates, small and mixed have some, with distinct totals right', () => {
  const large = planDataset('large', 50_000_000, 1);
  assert.equal(large.duplicates, 0);
  assert.equal(large.files.length, 4);
  for (const kind of ['small', 'mixed'] as const) {
    const p = planDataset(kind, 20_000_000, 1);
    assert.ok(p.duplicates > 0, `${kind} has duplicates`);
    const byContent = new Map<number, number>();
    for (const f of p.files) {
      const seen = byContent.get(f.content);
      if (seen !== undefined) assert.equal(f.sizeBytes, seen, 'duplicates have the same size');
      byContent.set(f.content, f.sizeBytes);
    }
    assert.equal(p.distinctFiles, byContent.size);
    assert.equal(
      p.distinctBytes,
      [...byContent.values()].reduce((s, x) => s + x, 0),
    );
    assert.equal(p.duplicates, p.files.length - byContent.size);
  }
  const small = planDataset('small', 20_000_000, 1);
  assert.ok(
    small.files.some((f) => f.sizeBytes === 0),
    'small has empty files',
  );
  assert.ok(small.files.every((f) => f.sizeBytes <= 32 * 1024));
});

test('planDataset grows large files past 1 GiB into more files', () => {
  const p = planDataset('large', 10 * 1024 ** 3, 1);
  assert.equal(p.files.length, 10);
  assert.ok(p.files.every((f) => f.sizeBytes <= 1024 ** 3));
});

test('writeDataset writes the planned bytes, mtimes and duplicates', async (t) => {
  const root = tempDir(t);
  const plan = planDataset('mixed', 3_000_000, 5);
  await writeDataset(path.join(root, 'data'), plan);
  const seen = new Map<number, string>();
  for (const f of plan.files) {
    const p = path.join(root, 'data', ...f.rel.split('/'));
    const st = fs.statSync(p);
    assert.equal(st.size, f.sizeBytes, f.rel);
    assert.equal(Math.floor(st.mtimeMs / 1000), f.mtimeS, f.rel);
    const h = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
    assert.equal(h, contentSha256(f.content, f.sizeBytes), f.rel);
    const twin = seen.get(f.content);
    if (twin !== undefined) assert.equal(h, twin, `${f.rel} duplicates its twin`);
    seen.set(f.content, h);
  }
  assert.equal(compareRestore(plan, path.join(root, 'data')), undefined);
});

test('files are created in a seeded shuffle, so inode order is not name order', async (t) => {
  const root = tempDir(t);
  const plan = planDataset('small', 400_000, 9);
  assert.deepEqual(writeOrder(plan), writeOrder(plan));
  assert.deepEqual(
    writeOrder(plan)
      .map((f) => f.rel)
      .sort(),
    plan.files.map((f) => f.rel).sort(),
  );
  await writeDataset(root, plan);
  const byName = plan.files.map((f) => path.join(root, ...f.rel.split('/'))).sort();
  assert.ok(readOrder(byName).ascendingFraction < 0.8, 'reading in name order is not reading in inode order');
});

test('generated content is incompressible and differs between ids', async (t) => {
  const root = tempDir(t);
  const plan: DatasetPlan = {
    kind: 'large',
    seed: 1,
    files: [
      { rel: 'a', sizeBytes: 3 * 1024 * 1024 + 5, content: 1, mtimeS: 1_700_000_000 },
      { rel: 'b', sizeBytes: 1000, content: 2, mtimeS: 1_700_000_000 },
    ],
    bytes: 3 * 1024 * 1024 + 1005,
    distinctBytes: 3 * 1024 * 1024 + 1005,
    distinctFiles: 2,
    duplicates: 0,
  };
  await writeDataset(root, plan);
  const a = fs.readFileSync(path.join(root, 'a'));
  const b = fs.readFileSync(path.join(root, 'b'));
  assert.notDeepEqual(a.subarray(0, 1000), b);
  const counts = new Uint32Array(256);
  for (const x of a) counts[x] = (counts[x] ?? 0) + 1;
  const expected = a.length / 256;
  assert.ok(
    counts.every((c) => Math.abs(c - expected) < expected * 0.1),
    'bytes evenly spread',
  );
});

test('compareRestore names a missing file, a wrong size and changed content', async (t) => {
  const root = tempDir(t);
  const plan = planDataset('small', 200_000, 2);
  await writeDataset(root, plan);
  const [first, second] = plan.files.filter((f) => f.sizeBytes > 0);
  assert.ok(first !== undefined && second !== undefined);
  const p1 = path.join(root, ...first.rel.split('/'));
  const bytes = fs.readFileSync(p1);
  bytes[0] = (bytes[0] ?? 0) ^ 0xff;
  fs.writeFileSync(p1, bytes);
  fs.utimesSync(p1, first.mtimeS, first.mtimeS);
  assert.match(compareRestore(plan, root) ?? '', /content differs/);
  fs.rmSync(p1);
  assert.match(compareRestore(plan, root) ?? '', /lacks/);
});

test('writeDataset stops when aborted', async (t) => {
  const root = tempDir(t);
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(writeDataset(root, planDataset('small', 1_000_000, 1), { signal: ac.signal }), {
    name: 'AbortError',
  });
});

test('orderOfInodes counts ascending pairs and backward jumps', () => {
  assert.deepEqual(orderOfInodes([1n, 2n, 3n, 10n]), { files: 4, ascendingFraction: 1, backwardJumps: 0 });
  assert.deepEqual(orderOfInodes([5n, 4n, 3n]), { files: 3, ascendingFraction: 0, backwardJumps: 2 });
  assert.deepEqual(orderOfInodes([1n, 3n, 2n, 4n, 5n]), { files: 5, ascendingFraction: 0.75, backwardJumps: 1 });
  assert.deepEqual(orderOfInodes([]), { files: 0, ascendingFraction: 1, backwardJumps: 0 });
});

test('readOrder maps opened paths to inodes, counting each file once', (t) => {
  const root = tempDir(t);
  const names = ['a', 'b', 'c', 'd'];
  for (const n of names) fs.writeFileSync(path.join(root, n), n);
  const byInode = names.map((n) => path.join(root, n)).sort((x, y) => Number(fs.statSync(x).ino - fs.statSync(y).ino));
  assert.equal(readOrder(byInode).ascendingFraction, 1);
  assert.equal(readOrder([...byInode, ...byInode]).files, 4);
  assert.equal(readOrder([...byInode].reverse()).ascendingFraction, 0);
  assert.equal(readOrder([path.join(root, 'gone'), ...byInode]).files, 4);
});

test('parseTracedOpens keeps read-only opens of regular files under the roots', () => {
  const trace = [
    '123 openat(AT_FDCWD, "/data/a.bin", O_RDONLY|O_CLOEXEC) = 3</data/a.bin>',
    '123 openat(AT_FDCWD, "/data", O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY) = 4</data>',
    '124 openat(5</data/sub>, "b\\x20c", O_RDONLY|O_NOFOLLOW) = 6</data/sub/b\\x20c>',
    '124 openat(AT_FDCWD, "/out/x", O_WRONLY|O_CREAT|O_EXCL, 0600) = 7</out/x>',
    '125 openat(AT_FDCWD, "/data/missing", O_RDONLY) = -1 ENOENT (No such file or directory)',
    '125 openat(AT_FDCWD, "/database/z", O_RDONLY) = 8</database/z>',
    '125 openat(AT_FDCWD, "/usr/lib/libc.so.6", O_RDONLY|O_CLOEXEC) = 3</usr/lib/libc.so.6>',
  ].join('\n');
  assert.deepEqual(parseTracedOpens(trace, ['/data']), ['/data/a.bin', '/data/sub/b c']);
});

function sampleReport(): BenchReport {
  const m = (over: Partial<Measurement>): Measurement => ({
    dataset: 'large',
    stage: 'sync',
    tool: 'distbackup',
    primary: false,
    label: 'x',
    seconds: 1,
    flushSeconds: 0,
    bytes: 100e6,
    files: 4,
    mbPerSecond: 100,
    filesPerSecond: 4,
    ratio: null,
    netRatio: null,
    peakRssBytes: 80e6,
    readOrder: null,
    ok: true,
    note: null,
    ...over,
  });
  return {
    suite: 'hdd',
    date: '2026-11-27T22:00:00.000Z',
    target: '/tmp',
    sizeBytes: 100e6,
    seed: 1,
    cache: 'cold',
    hashProcesses: 1,
    machine: { cpus: 2, cpuModel: 'AMD EPYC', memoryBytes: 24 * 1024 ** 3, node: 'v20.20.2', platform: 'linux' },
    tools: { found: { cp: 'cp (GNU coreutils) 9.1' }, missing: ['restic'] },
    readOrderMethod: 'strace',
    startup: {
      command: 'distbackup source list --json',
      runs: [0.5, 0.4, 0.6],
      seconds: { distbackup: 0.5, cp: 0.001 },
    },
    peerTimeoutSeconds: 30,
    datasets: [
      {
        kind: 'large',
        files: 4,
        bytes: 100e6,
        distinctFiles: 4,
        distinctBytes: 100e6,
        duplicates: 0,
        generateSeconds: 0.1,
      },
    ],
    results: [
      m({
        primary: true,
        label: 'distbackup sync --profile hdd',
        seconds: 1.5,
        mbPerSecond: 66.7,
        readOrder: { files: 4, ascendingFraction: 1, backwardJumps: 0 },
      }),
      m({
        tool: 'cp',
        label: 'cp -a + sync',
        seconds: 2,
        flushSeconds: 0.5,
        mbPerSecond: 50,
        ratio: 0.75,
        netRatio: 0.5,
        readOrder: { files: 4, ascendingFraction: 1 / 3, backwardJumps: 2 },
      }),
      m({ tool: 'rsync', label: 'rsync -a + sync', ok: false, seconds: 0, note: 'exit 23: some error' }),
    ],
    seconds: 12.3,
    notes: ['warm cache'],
  };
}

test('renderReport prints every figure: seconds, MB/s, files/s, ratio, RSS, read order, failures and missing peers', () => {
  const text = renderReport(sampleReport()).join('\n');
  for (const want of [
    'hdd suite',
    'peers not found (rows left out): restic',
    'distbackup sync --profile hdd',
    '1.50',
    '66.7',
    '0.75×',
    '80 MB',
    '100%',
    '33%',
    'failed',
    'exit 23: some error',
    'fastest peer cp -a + sync 2.00 s: 0.75× (net 0.50×)',
    '0.50×',
    'start-up, paid by every run before it reads any data: distbackup 0.50 s (`distbackup source list --json`, fastest of 3), cp under 0.01 s',
    'note: warm cache',
    'total 12.3 s',
  ]) {
    assert.ok(text.includes(want), `missing ${JSON.stringify(want)} in:\n${text}`);
  }
});

test('headline compares with the fastest successful peer only', () => {
  const lines = headline(sampleReport());
  assert.equal(lines.length, 1);
  assert.match(lines[0] ?? '', /large\s+sync\s+distbackup 1.50 s, fastest peer cp -a \+ sync/);
});

test('table aligns columns and right-aligns numbers', () => {
  const lines = table(
    ['name', 'n'],
    [
      ['a', '1'],
      ['long name', '100'],
    ],
    [1],
  );
  assert.deepEqual(lines, ['name         n', '---------  ---', 'a            1', 'long name  100']);
});

test('the planner suite plans a synthetic pool and raises its minimum', () => {
  const input = syntheticPool(5000, 30, false, 1);
  assert.equal(input.count, 5000);
  assert.ok(input.holderSets.every((s) => s.every((d) => d >= 1 && d < 30)));
  assert.deepEqual(syntheticPool(5000, 30, false, 1), input, 'the same seed gives the same pool');
  assert.ok(input.orphans.objectId.length === 50 && input.onThisDisk.some((x) => x === 1));
  const fresh = syntheticPool(5000, 30, true, 1);
  assert.ok(fresh.orphans.objectId.length === 0 && fresh.onThisDisk.every((x) => x === 0));
  assert.throws(() => syntheticPool(10, 40), /40 disks/);
  const report = runPlannerSuite([2000, 5000], { seed: 1 });
  assert.equal(report.runs.length, 2);
  for (const r of report.runs) {
    assert.ok(r.copies > 0);
    assert.equal(r.minCopiesBefore, 0);
    assert.ok(r.planSeconds >= 0);
  }
  const text = renderPlannerReport(report).join('\n');
  assert.match(text, /5,000\s+30/);
});

test("virtualBus tells virtual machines' disks from real ones by their sysfs path", () => {
  assert.equal(virtualBus('/sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda'), 'a virtio disk');
  assert.equal(virtualBus('/sys/devices/vbd-51712/block/xvda'), 'a Xen disk');
  assert.equal(
    virtualBus('/sys/devices/LNXSYSTM:00/VMBUS:00/vmbus_1/host0/target0:0:0/0:0:0:0/block/sda'),
    'a Hyper-V disk',
  );
  assert.equal(virtualBus('/sys/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda'), undefined);
  assert.equal(virtualBus('/sys/devices/pci0000:00/0000:00:1d.0/0000:03:00.0/nvme/nvme0/nvme0n1'), undefined);
});

test('guessSuite picks hdd only for a disk that spins and is not virtual, and says why', () => {
  const dir = os.tmpdir();
  const g = guessSuite(dir);
  assert.ok(g.reason.length > 0);
  if (isRotational(dir) !== true) assert.equal(g.suite, 'ssd');
  else assert.equal(g.suite, virtualDevice(dir) === undefined ? 'hdd' : 'ssd', g.reason);
});

test("netRatio takes each tool's own start-up off both times, and gives up when a run was all start-up", () => {
  const row = (tool: string, seconds: number) => ({ tool, seconds }) as Measurement;
  const startup = { distbackup: 0.5, borg: 0.4, cp: 0.001 };
  assert.equal(netRatio(row('distbackup', 2.5), row('cp', 1.001), startup)?.toFixed(6), '2.000000');
  assert.equal(netRatio(row('distbackup', 1.5), row('borg', 2.4), startup), 0.5);
  assert.equal(netRatio(row('distbackup', 0.505), row('cp', 1), startup), null, 'distbackup did nothing but start');
  assert.equal(netRatio(row('distbackup', 2), row('borg', 0.405), startup), null, 'borg did nothing but start');
  assert.equal(
    netRatio(row('distbackup', 2), row('rsync', 1), startup),
    1.5,
    'rsync has no start-up known: none taken off',
  );
});
