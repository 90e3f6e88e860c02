/**
 * Every distbackup stage of the ssd suite succeeds on the mixed dataset. The large and small
 * shapes are checked the same way on the default run of bench-default.test.ts (ssd unless the
 * target spins), so each shape is generated and timed once in the suite, not twice.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import type { BenchReport } from '../../src/bench/report.js';
import { stagesMissing } from '../helpers/bench.js';
import { runCliJson } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

test(
  'bench: every distbackup stage succeeds on the mixed dataset',
  stagesMissing().length > 0 ? { todo: `commands not written yet: ${stagesMissing().join(', ')}` } : {},
  (t) => {
    const root = tempDir(t);
    const r = runCliJson<BenchReport>(path.join(root, 'home'), [
      'bench',
      '--suite',
      'ssd',
      // The mixed share of the former 8M three-shape run: the same files, now alone.
      '--size',
      '3M',
      '--datasets',
      'mixed',
      '--target',
      root,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.json.datasets.map((d) => d.kind),
      ['mixed'],
    );
    const failed = r.json.results.filter((m) => m.tool === 'distbackup' && !m.ok);
    assert.deepEqual(
      failed.map((m) => `${m.dataset}/${m.label}: ${m.note}`),
      [],
    );
  },
);
