/**
 * Shared by the restore fault tests that trace or inject with strace: their common start, large
 * files on a disk of their own, and a reader of what the restore state in DEST records.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { parseLogLine, STATE_LOG_RE } from '../../src/catalog/restore-state.js';
import { expectExit, have, rngFor, skipTest } from './faults.js';
import { type Fixture, makeFixture } from './faults-fixture.js';
import { skipUnlessCommands } from './faults-kill.js';

/** Kinds and paths recorded in the restore state of `dest` (every log segment, in order). */
export function recorded(dest: string): { kind: number; vpath: string }[] {
  const dir = path.join(dest, '.distbackup-restore');
  const out: { kind: number; vpath: string }[] = [];
  for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    if (!STATE_LOG_RE.test(name)) continue;
    for (const line of fs.readFileSync(path.join(dir, name), 'latin1').split('\n')) {
      const r = parseLogLine(line);
      if (r !== undefined) out.push({ kind: r.kind, vpath: r.vpath.toString('utf8') });
    }
  }
  return out;
}

/**
 * A seeded fixture named `name` for a restore test run under strace, or null when the test was
 * skipped (the CLI not built, strace missing).
 */
export function straceRestoreFixture(
  t: TestContext,
  name: string,
  opts: { scale: number; only: string[] },
): Fixture | null {
  if (skipUnlessCommands(t, ['update', 'sync', 'restore'])) return null;
  if (!have('strace')) {
    skipTest(t, 'strace is not installed', false);
    return null;
  }
  return makeFixture(t, { rng: rngFor(name), ...opts });
}

/**
 * Write `files` (name to bytes) under `src/big` of `fx`, update, and sync them to a new disk
 * `name` of their own, sized for them (d1 is sized for the fixture's tree only). Returns the
 * disk's path; the files restore under `/data/big`.
 */
export function bigFilesOnOwnDisk(fx: Fixture, name: string, files: ReadonlyMap<string, Buffer>): string {
  const dir = path.join(fx.src, 'big');
  fs.mkdirSync(dir);
  let bytes = 0;
  for (const [file, b] of files) {
    fs.writeFileSync(path.join(dir, file), b);
    bytes += b.length + 8192;
  }
  fx.update();
  const disk = path.join(fx.root, 'mnt', name, 'backup');
  fs.mkdirSync(disk, { recursive: true });
  expectExit(
    fx.run(['disk', 'add', name, disk, '--size', String(fx.allocatedBytes * 2 + bytes * 2)]),
    0,
    `disk add ${name}`,
  );
  fx.sync(name);
  return disk;
}
