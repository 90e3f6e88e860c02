/**
 * Resource limits on the real CLI process (RELIABILITY.md test 17, failure mode 19), set with
 * util-linux `prlimit`:
 * - RLIMIT_FSIZE below the largest objects: a write across the limit is short, the next one
 *   fails with EFBIG (node ignores SIGXFSZ). Each object too large is skipped and listed, every
 *   other one is copied, nothing truncated is stored under a name (I1), and once the limit is
 *   gone the next sync copies the rest.
 * - RLIMIT_NOFILE = 64 during `update --jobs 8` and `sync` of a few hundred files: EMFILE may stop
 *   update (exit 1, one line) or not, but it must not hang, lose a hash or count a copy that is
 *   not there. sync must complete every object under the limit: with every file fsynced on its
 *   own (`DISTBACKUP_FSYNC=file`, the FUSE order, whose batches hold a descriptor per file until
 *   their fsync: the batch is capped from the real limit and flushed early on EMFILE) and with
 *   the syncfs batches. The next run without the limit has nothing left to do.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type TestContext, test } from 'node:test';
import {
  countFault,
  countViolations,
  errorLines,
  expectExit,
  have,
  type Run,
  rngFor,
  skipTest,
} from '../helpers/faults.js';
import { type Fixture, makeFixture, seededBytes } from '../helpers/faults-fixture.js';
import { skipUnlessCommands } from '../helpers/faults-kill.js';
import { checkClean, checkInvariants, groundTruth, readHome } from '../helpers/invariants.js';
import { sweepStaleMounts } from '../helpers/mounts.js';

sweepStaleMounts();

const FAULT = 'resource limits (prlimit)';
const HOW = 'prlimit --fsize below the largest objects (EFBIG, short writes); --nofile=64 (EMFILE)';

function setup(t: TestContext, name: string, scale: number, only: string[] = ['d1']): Fixture | null {
  if (skipUnlessCommands(t, ['update', 'sync'])) return null;
  if (!have('prlimit')) {
    // util-linux is in every image CI uses: a missing prlimit under CI=true is a failure.
    skipTest(t, 'prlimit not installed (util-linux)', true);
    return null;
  }
  return makeFixture(t, { rng: rngFor(name), scale, only });
}

/** The next sync without the limit completes and d1 holds every referenced object. */
function converges(fx: Fixture, before: ReturnType<typeof groundTruth>): string[] {
  const v: string[] = [];
  const again = fx.run(['sync', 'd1', '--quiet']);
  if (again.code !== 0) v.push(`the sync without the limit exited ${again.code}: ${again.stderr.slice(0, 300)}`);
  const after = checkInvariants(fx, { before, disksWithCatalogue: ['d1'] });
  v.push(...after.violations, ...checkClean(after.truth));
  const held = after.truth.disks.find((d) => d.name === 'd1')?.objects.size ?? 0;
  const referenced = after.truth.home?.referenced.size ?? 0;
  if (held < referenced) v.push(`d1 holds ${held} of ${referenced} referenced objects after the re-run`);
  return v;
}

test('RLIMIT_FSIZE below the largest objects: each is skipped with EFBIG, the others copied, none truncated', {
  timeout: 120_000,
}, (t) => {
  const fx = setup(t, 'prlimit-fsize', 0.1);
  if (fx === null) return;
  fx.update();
  const limit = 300 * 1024;
  const sizes = new Map<string, number>();
  for (const c of fx.tree.values()) sizes.set(createHash('sha256').update(c).digest('hex'), c.length);
  const tooBig = [...sizes].filter(([, s]) => s > limit).map(([h]) => h);
  assert.ok(tooBig.length > 0, 'the fixture has no object above the limit');
  const before = groundTruth(fx);
  const r = fx.json<{ skipped: { path: string; error: string }[]; copied: number }>(
    ['sync', 'd1', '--fsync-batch', '8'],
    { prefix: ['prlimit', `--fsize=${limit}`] },
  );
  countFault(FAULT, HOW);
  const v: string[] = [];
  if (r.signal !== null) v.push(`the sync died of ${r.signal} (SIGXFSZ not ignored?)`);
  if (r.code !== 1) v.push(`exit ${r.code}, expected 1 (objects skipped): ${r.stderr.slice(0, 300)}`);
  const skipped = r.json?.skipped ?? [];
  for (const h of tooBig) {
    // Each skip names the source file (not the object): the file whose content has hash h.
    const s = skipped.find(
      (x) => fs.existsSync(x.path) && createHash('sha256').update(fs.readFileSync(x.path)).digest('hex') === h,
    );
    if (s === undefined) v.push(`object ${h.slice(0, 12)}… (${sizes.get(h)} bytes) is not listed in skipped`);
    else if (!/EFBIG/.test(s.error)) v.push(`object ${h.slice(0, 12)}… skipped without naming EFBIG: ${s.error}`);
  }
  if (skipped.length !== tooBig.length)
    v.push(`${skipped.length} skipped, ${tooBig.length} above the limit: ${JSON.stringify(skipped).slice(0, 300)}`);
  const mid = checkInvariants(fx, { before });
  v.push(...mid.violations);
  const d1 = mid.truth.disks.find((d) => d.name === 'd1');
  const fits = [...sizes].filter(([, s]) => s <= limit).map(([h]) => h);
  const missing = fits.filter((h) => !(d1?.objects.has(h) ?? false));
  if (missing.length > 0) v.push(`${missing.length} objects under the limit were not copied`);
  const counted = readHome(fx.dataDir)?.copies.get('d1') ?? new Set<string>();
  for (const h of tooBig) if (counted.has(h)) v.push(`object ${h.slice(0, 12)}… above the limit is counted on d1`);
  process.stdout.write(
    `# prlimit --fsize=${limit}: exit ${r.code}, ${r.json?.copied} copied, ${skipped.length} skipped\n`,
  );
  v.push(...converges(fx, before));
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});

test('RLIMIT_NOFILE=64 during update --jobs 8 and sync of 300 files: no hang, nothing lost, the next run completes', {
  timeout: 120_000,
}, (t) => {
  const fx = setup(t, 'prlimit-nofile', 0.1, ['d1', 'd2']);
  if (fx === null) return;
  const many = path.join(fx.root, 'many');
  for (let i = 0; i < 300; i++) {
    const p = path.join(many, `d${i % 7}`, `m${i}.bin`);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, seededBytes(`many-${i}`, 200 + (i % 50) * 40));
  }
  expectExit(fx.run(['source', 'map', '/many', many]), 0, 'source map /many');
  // d1 was sized for the fixture tree: give it room for 300 more objects (8 KiB each as counted).
  const room = String((fx.sizes.d1 ?? 0) + 300 * 8192 * 2);
  for (const d of ['d1', 'd2']) expectExit(fx.run(['disk', 'set', d, '--size', room]), 0, `disk set ${d} --size`);
  const limited = { prefix: ['prlimit', '--nofile=64'], timeoutMs: 60_000 };
  const v: string[] = [];
  const oneLine = (r: Run, what: string): void => {
    if (r.signal !== null) v.push(`${what} was killed (${r.signal}): a hang under EMFILE?`);
    else if (r.code !== 0 && r.code !== 1) v.push(`${what} exited ${r.code}: ${r.stderr.slice(0, 300)}`);
    else if (r.code === 1 && errorLines(r.stderr).length !== 1)
      v.push(`${what}: exit 1 with ${errorLines(r.stderr).length} error lines: ${r.stderr.slice(0, 300)}`);
  };
  const u = fx.run(['update', '--jobs', '8', '--quiet'], limited);
  countFault(FAULT, HOW);
  oneLine(u, 'update under --nofile=64');
  // Whatever update managed, an update without the limit hashes the rest: no file marked removed.
  const u2 = fx.json<{ removed: number }>(['update']);
  if (u2.code !== 0) v.push(`update without the limit exited ${u2.code}: ${u2.stderr.slice(0, 300)}`);
  if ((u2.json?.removed ?? 0) > 0) v.push(`update without the limit found ${u2.json?.removed} files removed`);
  const home = readHome(fx.dataDir);
  const unhashed = [...(home?.files.values() ?? [])].filter((h) => h === null).length;
  if (unhashed > 0) v.push(`${unhashed} files without a hash after the second update`);
  const before = groundTruth(fx);
  const referenced = before.home?.referenced.size ?? 0;
  const outcomes: string[] = [];
  for (const [disk, env] of [
    ['d1', { DISTBACKUP_FSYNC: 'file' }],
    ['d2', {}],
  ] as const) {
    const what = `sync ${disk} under --nofile=64${disk === 'd1' ? ' (DISTBACKUP_FSYNC=file)' : ''}`;
    const s = fx.json<{ copied: number; skipped: unknown[] }>(['sync', disk], { ...limited, env });
    countFault(FAULT, HOW);
    oneLine(s, what);
    if (s.code !== 0) v.push(`${what} exited ${s.code}: ${errorLines(s.stderr)[0] ?? s.stderr.slice(0, 300)}`);
    const mid = checkInvariants(fx, { before });
    v.push(...mid.violations.map((x) => `${what}: ${x}`));
    const held = mid.truth.disks.find((d) => d.name === disk)?.objects.size ?? 0;
    if (held < referenced) v.push(`${what}: ${disk} holds ${held} of ${referenced} referenced objects`);
    if ((s.json?.skipped ?? []).length > 0) v.push(`${what}: skipped ${JSON.stringify(s.json?.skipped).slice(0, 300)}`);
    outcomes.push(`${what}: exit ${s.code}, ${s.json?.copied} copied, ${disk} holds ${held} of ${referenced}`);
  }
  process.stdout.write(`# prlimit --nofile=64: update exit ${u.code}; ${outcomes.join('; ')}\n`);
  v.push(...converges(fx, before));
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});
