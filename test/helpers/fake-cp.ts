/** A `cp` of a test's own, first on PATH, for the copies by `cp` of sync and restore. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { tempDir } from './tmp.js';

/** The real coreutils `cp`. */
export const REAL_CP = ['/usr/bin/cp', '/bin/cp'].find((p) => fs.existsSync(p)) ?? 'cp';

/**
 * A `cp` first on PATH until the test `t` ends, running `script` (sh; its arguments are the
 * copier's: --reflink=never -T -- SOURCE TARGET, so the source is $4 and the target $5) and then,
 * unless the script exits, the real `cp`.
 */
export function fakeCp(t: TestContext, script: string): void {
  const dir = path.join(tempDir(t), 'bin');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'cp'), `#!/bin/sh\n${script}\nexec ${REAL_CP} "$@"\n`, { mode: 0o755 });
  const old = process.env.PATH;
  process.env.PATH = `${dir}:${old ?? ''}`;
  t.after(() => {
    process.env.PATH = old;
  });
}
