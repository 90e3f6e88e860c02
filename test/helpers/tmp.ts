/** Temp folders for tests: real directories under the OS temp dir, removed after the test. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';

/** A fresh temp folder removed when the test `t` ends. */
export function tempDir(t: TestContext, prefix = 'distbackup-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => {
    // Restore permissions a test may have removed, so cleanup never fails.
    try {
      fs.chmodSync(dir, 0o755);
    } catch {}
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Write files from a map of relative path → content (string or Buffer); creates folders. */
export function writeTree(root: string, files: Record<string, string | Buffer>): void {
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
  }
}

/** A time well before any test run: files dated so are clear of update's racy window. */
export const PAST = new Date('2021-03-04T05:06:07.123Z');

/** Set the mtime of everything under `dir` (and `dir`) to PAST; symlinks keep theirs. */
export function ageTree(dir: string): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) ageTree(p);
    if (!e.isSymbolicLink()) fs.utimesSync(p, PAST, PAST);
  }
  fs.utimesSync(dir, PAST, PAST);
}

/** Wait (on the file system, no timer) until the kernel's coarse clock has moved: the next change gets a new ctime. */
export function nextClockTick(scratch: string): void {
  fs.writeFileSync(scratch, '');
  const c0 = fs.statSync(scratch, { bigint: true }).ctimeNs;
  while (fs.statSync(scratch, { bigint: true }).ctimeNs === c0) fs.chmodSync(scratch, 0o644);
}

/** The paths of everything but folders under `root`, relative, sorted. */
export function filesUnder(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) walk(r);
      else out.push(r);
    }
  };
  walk('');
  return out.sort();
}

/** Whether `p` exists, a dangling symlink included. */
export function lexists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}
