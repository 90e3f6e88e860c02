/**
 * Named crash points for the fault suite (SnapRAID's `--test-kill-*`). With
 * `DISTBACKUP_TEST_KILL=after-rename:17` the process SIGKILLs itself at the 17th time it passes
 * `killPoint('after-rename')`; `name:last` is not supported (the harness counts hits from a
 * fault-free run with `DISTBACKUP_TEST_KILL_COUNT=FILE`, which appends one line per hit).
 * `name:k:SIGINT` sends that signal instead (a Ctrl-C that lands at a known point).
 * Unset, each call costs one comparison.
 */
import { appendFileSync } from 'node:fs';

const spec = process.env.DISTBACKUP_TEST_KILL;
const countFile = process.env.DISTBACKUP_TEST_KILL_COUNT;
const [killName, killAtText, killSignal] = spec === undefined ? [undefined, undefined, undefined] : spec.split(':');
const killAt = killAtText === undefined ? 1 : Number(killAtText);
let hits = 0;

/** Mark a crash point; kills the process here when the environment asks for it. */
export function killPoint(name: string): void {
  if (countFile !== undefined) appendFileSync(countFile, `${name}\n`);
  if (killName === undefined || name !== killName) return;
  hits += 1;
  if (hits === killAt) process.kill(process.pid, (killSignal ?? 'SIGKILL') as NodeJS.Signals);
}
