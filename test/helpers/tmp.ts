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
