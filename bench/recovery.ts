/**
 * Benchmark of the recovery side (issue targets): `verify` against `openssl dgst -sha256` and
 * `sha256sum` over the same objects, and `restore` of large files against `cp -a` of the same
 * bytes (with `sync` after it, since restore makes its files durable before recording them).
 * The page cache is dropped before every timed run where allowed, so each tool reads cold.
 *
 *   npx tsx bench/recovery.ts [--dir DIR] [--mib N] [--file-mib N] [--keep]
 *   npm run bench -- recovery
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openCatalog } from '../src/catalog/db.js';
import { OBJECTS_DIR } from '../src/disk/layout.js';
import { addDisk } from '../src/disks/disks.js';
import { runRestore } from '../src/restore/restore.js';
import { mapSource } from '../src/sources/sources.js';
import { runSync } from '../src/sync/sync.js';
import { runUpdate } from '../src/update/update.js';
import { runVerify } from '../src/verify/verify.js';

interface Args {
  dir: string;
  mib: number;
  fileMib: number;
  keep: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { dir: os.tmpdir(), mib: 1024, fileMib: 64, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === '--keep') {
      a.keep = true;
      continue;
    }
    if (v === undefined) continue;
    if (k === '--dir') a.dir = v;
    else if (k === '--mib') a.mib = Number(v);
    else if (k === '--file-mib') a.fileMib = Number(v);
    else continue;
    i += 1;
  }
  return a;
}

function dropCaches(): boolean {
  spawnSync('sync');
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** Time `fn` in seconds after dropping the page cache. */
async function timed(fn: () => unknown): Promise<number> {
  dropCaches();
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`${cmd} exited with ${r.status}`);
}

function objectFiles(disk: string): string[] {
  const root = path.join(disk, OBJECTS_DIR);
  const out: string[] = [];
  for (const pre of fs.readdirSync(root).sort()) {
    if (pre.startsWith('.')) continue;
    for (const f of fs.readdirSync(path.join(root, pre)).sort()) out.push(path.join(root, pre, f));
  }
  return out;
}

/** Run the benchmark; prints one line per measurement and the ratios against the targets. */
export async function main(argv: string[]): Promise<void> {
  const a = parseArgs(argv);
  const base = fs.mkdtempSync(path.join(a.dir, 'distbackup-bench-recovery-'));
  try {
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    const files = Math.max(1, Math.round(a.mib / a.fileMib));
    const chunk = 8 * 1024 * 1024;
    for (let i = 0; i < files; i++) {
      const fd = fs.openSync(path.join(src, `large-${String(i).padStart(4, '0')}.bin`), 'w');
      for (let off = 0; off < a.fileMib * 1024 * 1024; off += chunk) fs.writeSync(fd, randomBytes(chunk));
      fs.closeSync(fd);
    }
    const bytes = files * a.fileMib * 1024 * 1024;
    const mb = bytes / 1e6;
    console.log(`recovery bench: ${files} files of ${a.fileMib} MiB (${(bytes / 2 ** 30).toFixed(2)} GiB) in ${base}`);
    console.log(`page cache dropped before each run: ${dropCaches() ? 'yes' : 'no (not root): figures are warm'}`);
    const cat = openCatalog(path.join(base, 'home'));
    mapSource(cat, '/bench', src);
    await runUpdate(cat, {});
    const disk = path.join(base, 'disk');
    addDisk(cat, 'bench', disk, { sizeBytes: bytes * 2 + 1e9 });
    await runSync(cat, { name: 'bench' });
    const objs = objectFiles(disk);
    const line = (what: string, s: number): void =>
      console.log(`  ${what.padEnd(34)} ${s.toFixed(2).padStart(7)} s  ${(mb / s).toFixed(0).padStart(6)} MB/s`);

    console.log('verify (full re-read and SHA-256 of every object):');
    const tVerify = await timed(() => runVerify(cat, { name: 'bench' }));
    line('distbackup verify', tVerify);
    let tOpenssl: number | undefined;
    if (have('openssl')) {
      tOpenssl = await timed(() => run('openssl', ['dgst', '-sha256', ...objs]));
      line('openssl dgst -sha256 (1 process)', tOpenssl);
    }
    if (have('sha256sum')) line('sha256sum', await timed(() => run('sha256sum', objs)));
    cat.close();

    console.log('restore (large files, from the disk into an empty folder):');
    const dest = path.join(base, 'restored');
    const tRestore = await timed(() =>
      runRestore({ dest, vpaths: [], diskPath: disk, dataDir: path.join(base, 'home'), catalogue: 'home' }),
    );
    line('distbackup restore (fsynced)', tRestore);
    const cpDest = path.join(base, 'cp');
    const tCp = await timed(() => run('cp', ['-a', path.join(disk, OBJECTS_DIR), cpDest]));
    line('cp -a', tCp);
    fs.rmSync(cpDest, { recursive: true, force: true });
    const tCpSync = await timed(() => {
      run('cp', ['-a', path.join(disk, OBJECTS_DIR), cpDest]);
      run('sync', []);
    });
    line('cp -a && sync', tCpSync);

    console.log('targets:');
    if (tOpenssl !== undefined) {
      console.log(`  verify / openssl  = ${(tVerify / tOpenssl).toFixed(2)}x the time (target: at most 1.0x)`);
    }
    console.log(`  restore / cp -a   = ${(tRestore / tCp).toFixed(2)}x the time (target: at most 1.3x)`);
    console.log(`  restore / cp -a && sync = ${(tRestore / tCpSync).toFixed(2)}x the time`);
  } finally {
    if (a.keep) console.log(`kept ${base}`);
    else fs.rmSync(base, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main(process.argv.slice(2));
}
