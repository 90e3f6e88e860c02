/**
 * SIGKILL of a restore at random times over a measured run: many small files on the small-file
 * thread (restore/small-files.ts, forced on with `smallFileLaneMinFiles: 0`; the CLI starts it
 * from 10,000 files only) and on the main thread, and large files (kernel copies whose checks
 * and write-backs run behind the copies of the next files, file-writer.ts): the restore state
 * never names a file that is not in DEST with its bytes, and the re-run completes equal to the
 * source with no temp file left, also after a kill between linking a file into place and
 * removing its temp name (RELIABILITY.md failure mode 1, "recorded before durable"). The restore
 * runs in a child process of the built code (`dist/`), killed for real.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type TestContext, test } from 'node:test';
import { openCatalog } from '../../src/catalog/db.js';
import { FileKind } from '../../src/catalog/schema.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { countFault, countViolations, rngFor, SOAK } from '../helpers/faults.js';
import { seededBytes } from '../helpers/faults-fixture.js';
import { randomDelays } from '../helpers/faults-kill.js';
import { hashFile } from '../helpers/invariants.js';
import { compareTrees, onePoolDisk, sourceTreeIn } from '../helpers/pool.js';
import { recorded } from '../helpers/restore-faults.js';
import { tempDir } from '../helpers/tmp.js';

const BUILT = path.join(REPO_ROOT, 'dist', 'restore', 'restore.js');
const CHILD = `const { runRestore } = await import(process.argv[2]);
const doc = await runRestore(JSON.parse(process.argv[3]));
process.stdout.write(JSON.stringify({ restored: doc.restored, remaining: doc.remaining, errors: doc.errors.length }));`;

/**
 * Run the restore in a child process (`script`: CHILD written to a file; `-e` would hand
 * `--input-type` on to the worker thread, which refuses it); SIGKILL it after `killAfterMs` when given.
 */
function restoreChild(
  script: string,
  opts: Record<string, unknown>,
  killAfterMs?: number,
): Promise<{ ms: number; code: number | null; killed: boolean; out: string }> {
  return new Promise((resolve) => {
    const start = Date.now();
    const child = spawn(process.execPath, [script, BUILT, JSON.stringify(opts)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      out += b.toString();
    });
    let killed = false;
    const timer =
      killAfterMs === undefined
        ? undefined
        : setTimeout(() => {
            killed = child.kill('SIGKILL');
          }, killAfterMs);
    child.on('exit', (code) => {
      if (timer !== undefined) clearTimeout(timer);
      resolve({ ms: Date.now() - start, code, killed: killed && code === null, out });
    });
  });
}

function partFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((n) => n.endsWith('.part'));
}

/**
 * A source tree under `base` of 24 large files (1-12 MiB, 150 MiB in all: kernel copies, most of
 * them written back early) and a few small ones beside them.
 */
function largeTreeIn(base: string): string {
  const src = path.join(base, 'src');
  fs.mkdirSync(path.join(src, 'big'), { recursive: true });
  for (let i = 0; i < 24; i++) {
    const size = (1 + (i % 12)) * 1024 * 1024 + i;
    fs.writeFileSync(path.join(src, 'big', `large-${i}.bin`), seededBytes(`restore-kill-large-${i}`, size));
  }
  for (let i = 0; i < 8; i++)
    fs.writeFileSync(path.join(src, `small-${i}.bin`), seededBytes(`restore-kill-small-${i}`, 3000 + i));
  return src;
}

for (const [what, minFiles, tree] of [
  ['small files on the small-file thread', 0, (base: string) => sourceTreeIn(base, 600)],
  ['small files on the main thread', Number.MAX_SAFE_INTEGER, (base: string) => sourceTreeIn(base, 600)],
  ['large files', Number.MAX_SAFE_INTEGER, largeTreeIn],
] as const) {
  test(`SIGKILL of a restore of ${what}: the state names only files in DEST byte-exact; the re-run completes`, {
    timeout: 180_000,
  }, async (t: TestContext) => {
    const FAULT = `SIGKILL restore (${what})`;
    if (!fs.existsSync(BUILT)) {
      t.skip('dist/ is not built (npm run build)');
      return;
    }
    const rng = rngFor(`restore-lane-kill-${what === 'large files' ? 'large' : minFiles}`);
    const base = tempDir(t);
    const src = tree(base);
    const home = path.join(base, 'home');
    const d1 = path.join(base, 'd1');
    const cat = openCatalog(home);
    onePoolDisk(cat, src, d1);
    cat.close();
    const opts = (dest: string) => ({
      dest,
      vpaths: [],
      diskPath: d1,
      dataDir: home,
      catalogue: 'home',
      smallFileLaneMinFiles: minFiles,
    });
    const script = path.join(base, 'restore-child.mjs');
    fs.writeFileSync(script, CHILD);
    const all: string[] = [];
    const ref = await restoreChild(script, opts(path.join(base, 'reference')));
    if (ref.code !== 0) all.push(`reference restore exited ${ref.code}: ${ref.out.slice(0, 300)}`);
    all.push(...compareTrees(src, path.join(base, 'reference', 'data')).map((d) => `reference: ${d}`));
    let landed = 0;
    for (const [i, d] of randomDelays(rng, 3 * SOAK, ref.ms).entries()) {
      const dest = path.join(base, `dest-${i}`);
      const label = `restore killed after ${d} ms`;
      const o = await restoreChild(script, opts(dest), d);
      if (o.killed) landed += 1;
      // Whatever the state records is in DEST with its bytes.
      for (const r of recorded(dest).filter((x) => x.kind === FileKind.file)) {
        const inDest = path.join(dest, r.vpath);
        const inSrc = path.join(src, r.vpath.replace(/^\/data\//, ''));
        if (!fs.existsSync(inDest)) all.push(`${label}: ${r.vpath} recorded but not in DEST`);
        else if (hashFile(inDest) !== hashFile(inSrc)) all.push(`${label}: ${r.vpath} recorded with other bytes`);
      }
      const again = await restoreChild(script, opts(dest));
      if (again.code !== 0) all.push(`${label}: re-run exited ${again.code}: ${again.out.slice(0, 300)}`);
      all.push(...compareTrees(src, path.join(dest, 'data')).map((x) => `${label}: ${x}`));
      const left = partFiles(dest);
      if (left.length > 0) all.push(`${label}: temp files left: ${left.join(', ')}`);
    }
    t.diagnostic(`reference run ${ref.ms} ms; ${landed} kills landed mid-run`);
    countFault(FAULT, `SIGKILL at random times over a measured restore of ${what}`, landed);
    countViolations(FAULT, all);
    if (all.length > 0) throw new Error(all.slice(0, 20).join('\n'));
  });
}
