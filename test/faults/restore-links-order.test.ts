/**
 * Durability order of restored symlinks (RELIABILITY.md failure mode 1, "recorded before
 * durable"): a symlink is recorded as restored in the restore state only after the entry of its
 * folder is durable, so that a power cut cannot leave the state saying "restored" for a link
 * the disk never kept (the next disk's run would skip it and the link would be lost). Traced
 * with `strace -f -y`: the fsync of the folder holding the links (or a syncfs of DEST's
 * filesystem) comes before the write of the state log that names them.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { countFault, countViolations } from '../helpers/faults.js';
import { straceRestoreFixture } from '../helpers/restore-faults.js';

const FAULT = 'restored symlinks recorded before their folder is durable';
const LINKS = 12;

test('restore: symlinks are recorded only after their folder entry is durable (strace order)', {
  timeout: 180_000,
}, (t) => {
  const fx = straceRestoreFixture(t, 'restore-links-order', { scale: 0.02, only: ['d1'] });
  if (fx === null) return;
  // A folder holding only links: nothing else of the restore makes its entries durable.
  const dir = path.join(fx.src, 'links');
  fs.mkdirSync(dir);
  for (let i = 0; i < LINKS; i++) fs.symlinkSync(`target-${i}`, path.join(dir, `l${i}`));
  fx.update();
  fx.sync('d1');
  const dest = path.join(fx.root, 'dest');
  const trace = path.join(fx.root, 'restore.strace');
  countFault(FAULT, 'strace -f -y of a restore of a folder of symlinks: fsync/syncfs before the state log write');
  const r = fx.run(['restore', '/data/links', '--to', dest, '--disk', fx.disk('d1').path, '--quiet'], {
    prefix: ['strace', '-f', '-qq', '-y', '-s', '65536', '-o', trace, '-e', 'trace=fsync,fdatasync,syncfs,write'],
  });
  const v: string[] = [];
  if (r.code !== 0) v.push(`restore exited ${r.code}: ${r.stderr.slice(0, 300)}`);
  for (let i = 0; i < LINKS; i++) {
    const p = path.join(dest, 'data', 'links', `l${i}`);
    if (!fs.existsSync(path.dirname(p)) || fs.readlinkSync(p) !== `target-${i}`) v.push(`l${i} not restored`);
  }
  const lines = fs.readFileSync(trace, 'utf8').split('\n');
  const linksDir = path.join(dest, 'data', 'links');
  // The first write of a state log naming a link (its records give the virtual path in hex), and
  // the durability calls before it.
  const l0 = Buffer.from('/data/links/l0').toString('hex');
  const record = lines.findIndex(
    (l) => /restored-\d+\.log>/.test(l) && /^\d+ +write\(/.test(l) && l.includes(` ${l0} `),
  );
  if (record < 0) {
    const logs = lines.filter((l) => l.includes('restored-')).slice(0, 3);
    v.push(`no write of the restore state naming the links was traced: ${logs.join(' / ').slice(0, 600)}`);
  } else {
    const before = lines.slice(0, record);
    const durable = before.some(
      (l) => (/ fsync\(\d+</.test(l) && l.includes(`<${linksDir}>`)) || / syncfs\(\d+</.test(l),
    );
    if (!durable) v.push(`the links were recorded before ${linksDir} was fsynced (no fsync of it, no syncfs)`);
  }
  countViolations(FAULT, v);
  assert.deepEqual(v, []);
});
