/**
 * A moved clock (RELIABILITY.md test 18, failure modes 18 and 22): the real CLI runs under
 * libfaketime (`faketime '+N days'`, with FAKETIME_NO_CACHE=1 and DONT_FAKE_MONOTONIC=1 so node's
 * timers still run). Copies verified 41 days before the faked now are re-verified by
 * `verify --older-than 30d` and counted stale by `status --stale 30d`, copies verified a day before
 * are not. Back on the real clock (a backward jump of 41 days) every stamp is in the future:
 * `status` counts those copies stale (their age is unknown), `verify` moves the stamps back by the
 * 41 days of the newest, so `--older-than` selects again the copies stamped a day before it, and
 * a full `verify` still checks every copy.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countFault, countViolations, have, type RunOptions, rngFor, skipTest } from '../helpers/faults.js';
import { makeFixture } from '../helpers/faults-fixture.js';
import { skipUnlessCommands } from '../helpers/faults-kill.js';
import { checkInvariants, groundTruth } from '../helpers/invariants.js';
import { sweepStaleMounts } from '../helpers/mounts.js';

sweepStaleMounts();

const FAULT = 'clock moved (faketime)';
const HOW = "faketime '+40 days' / '+41 days' on the CLI process, then the real clock again";

function at(days: number): RunOptions {
  return {
    prefix: ['faketime', `+${days} days`],
    env: { FAKETIME_NO_CACHE: '1', DONT_FAKE_MONOTONIC: '1' },
  };
}

interface VerifyDoc {
  checked: number;
  bad: string[];
  copies: number;
}
interface StatusDoc {
  disks: { name: string; staleCopies: number; neverVerified?: number }[];
}

test('verify --older-than and status --stale with the clock moved 40 and 41 days ahead, then back', {
  timeout: 120_000,
}, (t) => {
  if (skipUnlessCommands(t, ['update', 'sync', 'verify', 'status'])) return;
  if (!have('faketime')) {
    // .ci/run installs faketime: under CI=true its absence is a failure, not a skip.
    skipTest(t, 'faketime not installed', true);
    return;
  }
  const fx = makeFixture(t, { rng: rngFor('faketime'), scale: 0.1, only: ['d1'] });
  if (fx === null) return;
  fx.update();
  fx.sync('d1');
  const before = groundTruth(fx);
  const v: string[] = [];
  const verify = (args: string[], o?: RunOptions): VerifyDoc | undefined => {
    const r = fx.json<VerifyDoc>(['verify', 'd1', ...args], o);
    if (r.code !== 0 || r.json === undefined)
      v.push(`verify ${args.join(' ')}: exit ${r.code}: ${r.stderr.slice(0, 300)}`);
    return r.json;
  };
  const stale = (o?: RunOptions): number | undefined => {
    const r = fx.json<StatusDoc>(['status', '--stale', '30d'], o);
    if (r.code !== 0 || r.json === undefined) v.push(`status --stale 30d: exit ${r.code}: ${r.stderr.slice(0, 300)}`);
    return r.json?.disks.find((d) => d.name === 'd1')?.staleCopies;
  };
  // Today (the real clock): every copy verified now.
  const all = verify([])?.checked ?? 0;
  if (all === 0) v.push('the first verify checked nothing');
  const half = Math.ceil(all / 2);
  // 40 days later: half of the copies verified again (least recently verified first).
  const p = verify(['--percent', '50'], at(40));
  countFault(FAULT, HOW);
  if (p !== undefined && p.checked !== half) v.push(`verify --percent 50 at +40 d checked ${p.checked}, not ${half}`);
  // 41 days later: the other half was verified 41 days ago, this half 1 day ago.
  const staleBefore = stale(at(41));
  countFault(FAULT, HOW);
  if (staleBefore !== all - half) v.push(`status --stale 30d at +41 d: ${staleBefore} stale copies, not ${all - half}`);
  const old = verify(['--older-than', '30d'], at(41));
  countFault(FAULT, HOW);
  if (old !== undefined && old.checked !== all - half)
    v.push(`verify --older-than 30d at +41 d checked ${old.checked}, not the ${all - half} verified 41 days ago`);
  const staleAfter = stale(at(41));
  if (staleAfter !== 0) v.push(`status --stale 30d at +41 d after verifying: ${staleAfter} stale copies, not 0`);
  // Back to the real clock: every stamp is now 40 or 41 days in the future, so every copy's age
  // is unknown and counted stale. verify moves the stamps back by the newest one's lead: the
  // copies stamped at +40 d then look a day old, those at +41 d new.
  countFault(FAULT, HOW);
  const staleNow = stale();
  if (staleNow !== all) v.push(`status --stale 30d back on the real clock: ${staleNow} stale copies, not ${all}`);
  const back = verify(['--older-than', '12h']);
  if (back !== undefined && back.checked !== half)
    v.push(`verify --older-than 12h back on the real clock checked ${back.checked}, not the ${half} stamped at +40 d`);
  const staleBack = stale();
  if (staleBack !== 0) v.push(`status --stale 30d back on the real clock, after verify: ${staleBack} stale copies`);
  // A full verify still checks every copy (no copy starves behind a future stamp).
  const full = verify([]);
  if (full !== undefined && full.checked !== all)
    v.push(`a full verify back on the real clock checked ${full.checked} of ${all}`);
  process.stdout.write(
    `# faketime: ${all} copies; +40 d --percent 50 → ${p?.checked}; +41 d stale ${staleBefore}, --older-than 30d → ${old?.checked}; real clock stale ${staleNow}, --older-than 12h → ${back?.checked}, full → ${full?.checked}\n`,
  );
  v.push(...checkInvariants(fx, { before, disksWithCatalogue: ['d1'] }).violations);
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});
