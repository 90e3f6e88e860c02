/**
 * The default bench run (no --suite, no --datasets) through the CLI: every stage of every default
 * dataset timed, every figure present, nothing left behind. In its own file: with the peers it
 * is one of the longest runs of the suite, and the runner starts it beside the others.
 * The size only scales the data (the stages, peers and figures are the same at 10M as at 50M).
 * It also checks that every distbackup stage succeeds on the two default shapes.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { type BenchReport, STAGES } from '../../src/bench/report.js';
import { leftovers, stagesMissing } from '../helpers/bench.js';
import { runCliJson } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

test('bench --size 10M --json times every stage of every default dataset, with every figure, and cleans up', (t) => {
  const root = tempDir(t);
  const target = path.join(root, 'target');
  const r = runCliJson<BenchReport>(path.join(root, 'home'), ['bench', '--size', '10M', '--target', target]);
  assert.equal(r.code, 0, r.stderr);
  const doc = r.json;
  assert.ok(doc.suite === 'ssd' || doc.suite === 'hdd');
  assert.equal(doc.cache, 'warm', 'the default run keeps the page cache');
  assert.equal(doc.sizeBytes, 10e6);
  assert.deepEqual(
    doc.datasets.map((d) => d.kind),
    ['large', 'small'],
  );
  // Start-up timed once, apart from the rows: distbackup's and every peer's found.
  assert.equal(doc.startup.command, 'distbackup source list --json');
  assert.equal(doc.startup.runs.length, 3);
  assert.ok((doc.startup.seconds.distbackup ?? 0) > 0, 'distbackup start-up measured');
  for (const peer of Object.keys(doc.tools.found)) {
    assert.ok((doc.startup.seconds[peer] ?? -1) >= 0, `${peer}: start-up measured`);
  }
  assert.equal(doc.peerTimeoutSeconds, 30);
  const total = doc.datasets.reduce((s, d) => s + d.bytes, 0);
  assert.ok(total >= 9.8e6 && total < 12e6, `generated ${total} bytes`);
  assert.ok(doc.datasets.every((d) => d.files > 0 && d.distinctBytes <= d.bytes));
  assert.ok(doc.machine.cpus >= 1 && doc.machine.node.startsWith('v'));
  for (const tool of doc.tools.missing) assert.equal(doc.tools.found[tool], undefined);
  for (const ds of doc.datasets) {
    const rows = doc.results.filter((m) => m.dataset === ds.kind);
    for (const stage of STAGES) {
      const ours = rows.filter((m) => m.stage === stage && m.primary);
      assert.equal(ours.length, 1, `${ds.kind}/${stage}: one distbackup row`);
      assert.ok(
        rows.some((m) => m.stage === stage && m.tool !== 'distbackup'),
        `${ds.kind}/${stage}: a peer row`,
      );
    }
    for (const m of rows) {
      assert.ok(Number.isFinite(m.seconds) && m.seconds >= 0, `${m.label}: seconds`);
      assert.ok(m.bytes > 0 && m.files > 0, `${m.label}: bytes and files`);
      if (m.ok) {
        assert.ok(m.seconds > 0 && m.mbPerSecond > 0 && m.filesPerSecond > 0, `${m.label}: rates`);
        if (m.tool !== 'distbackup') {
          const ours = rows.find((o) => o.stage === m.stage && o.primary);
          if (ours?.ok === true) {
            assert.ok(m.ratio !== null && m.ratio > 0, `${m.label}: ratio`);
            assert.ok(m.netRatio === null || m.netRatio > 0, `${m.label}: net ratio`);
          }
        }
      } else {
        assert.ok((m.note ?? '') !== '', `${m.label}: a failed row says why`);
      }
    }
    for (const peer of ['cp', 'find', 'sha256sum', 'openssl', 'rsync', 'restic', 'borg', 'rclone']) {
      if (doc.tools.found[peer] === undefined) continue;
      const runs = rows.filter((m) => m.tool === peer);
      assert.ok(runs.length > 0, `${ds.kind}: ${peer} ran`);
      if (peer === 'cp' || peer === 'find' || peer === 'sha256sum' || peer === 'openssl') {
        for (const m of runs.filter((x) => x.stage !== 'verify')) assert.ok(m.ok, `${ds.kind}: ${m.label}: ${m.note}`);
      }
    }
  }
  // Every distbackup stage succeeds on both default shapes (the mixed one: bench-stages.test.ts).
  if (stagesMissing().length === 0) {
    assert.deepEqual(
      doc.results.filter((m) => m.tool === 'distbackup' && !m.ok).map((m) => `${m.dataset}/${m.label}: ${m.note}`),
      [],
    );
  }
  assert.deepEqual(leftovers(target), [], 'the generated data and outputs are removed');
});
