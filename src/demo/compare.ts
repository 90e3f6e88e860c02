/**
 * Comparing two folder trees byte for byte: names (as bytes), kinds, content, permission bits,
 * mtimes (to the microsecond: restore sets times through libuv, which keeps microseconds) and
 * symlink targets. Used by the demo to prove a restore, and by
 * the tests. Synchronous; reads every file.
 */
import * as fs from 'node:fs';
import { displayPath } from '../core/vpath.js';

/** What a comparison found. */
export interface TreeComparison {
  files: number;
  dirs: number;
  symlinks: number;
  /** One line per difference; empty when the trees are equal. */
  diffs: string[];
}

export interface CompareOptions {
  /** Top-level names of `b` to leave out (default: the restore state folder). */
  ignore?: readonly string[];
  /** Compare folder mtimes too (default true). */
  dirTimes?: boolean;
}

/** Compare tree `a` (the original) with tree `b` (the copy). */
export function compareTrees(a: string, b: string, opts: CompareOptions = {}): TreeComparison {
  const out: TreeComparison = { files: 0, dirs: 0, symlinks: 0, diffs: [] };
  const ignore = new Set(opts.ignore ?? ['.distbackup-restore']);
  const sep = Buffer.from('/');
  const kindOf = (s: fs.Stats): string => (s.isDirectory() ? 'folder' : s.isSymbolicLink() ? 'symlink' : 'file');
  const walk = (pa: Buffer, pb: Buffer, rel: Buffer, top: boolean): void => {
    const list = (p: Buffer): Buffer[] =>
      fs.readdirSync(p, { encoding: 'buffer' }).filter((n) => !(top && ignore.has(n.toString('latin1'))));
    const na = list(pa);
    const nb = list(pb);
    const kb = new Set(nb.map((n) => n.toString('latin1')));
    const ka = new Set(na.map((n) => n.toString('latin1')));
    for (const n of na) if (!kb.has(n.toString('latin1'))) out.diffs.push(`${show(rel, n)}: missing in the copy`);
    for (const n of nb) if (!ka.has(n.toString('latin1'))) out.diffs.push(`${show(rel, n)}: extra in the copy`);
    for (const name of na) {
      if (!kb.has(name.toString('latin1'))) continue;
      const xa = Buffer.concat([pa, sep, name]);
      const xb = Buffer.concat([pb, sep, name]);
      const r = Buffer.concat([rel, sep, name]);
      const sa = fs.lstatSync(xa);
      const sb = fs.lstatSync(xb);
      if (kindOf(sa) !== kindOf(sb)) {
        out.diffs.push(`${displayPath(r)}: ${kindOf(sa)} in the original, ${kindOf(sb)} in the copy`);
        continue;
      }
      if (sa.isSymbolicLink()) {
        out.symlinks += 1;
        if (!fs.readlinkSync(xa, { encoding: 'buffer' }).equals(fs.readlinkSync(xb, { encoding: 'buffer' }))) {
          out.diffs.push(`${displayPath(r)}: symlink target differs`);
        }
        continue;
      }
      if ((sa.mode & 0o777) !== (sb.mode & 0o777)) {
        out.diffs.push(`${displayPath(r)}: mode ${(sa.mode & 0o777).toString(8)} vs ${(sb.mode & 0o777).toString(8)}`);
      }
      // In whole microseconds, read as integers: a restored time is the original's microsecond
      // (libuv drops the rest), up to 999 ns below it, and the difference of two mtimeMs doubles
      // (a quarter of a microsecond apart at today's dates) could make that look like more.
      const usA = fs.lstatSync(xa, { bigint: true }).mtimeNs / 1000n;
      const usB = fs.lstatSync(xb, { bigint: true }).mtimeNs / 1000n;
      const timeDiffers = usA !== usB;
      if (sa.isFile()) {
        out.files += 1;
        if (!sameContent(xa, xb)) out.diffs.push(`${displayPath(r)}: content differs`);
        if (timeDiffers) out.diffs.push(`${displayPath(r)}: mtime ${usA} µs vs ${usB} µs`);
      } else if (sa.isDirectory()) {
        out.dirs += 1;
        walk(xa, xb, r, false);
        if (opts.dirTimes !== false && timeDiffers) {
          out.diffs.push(`${displayPath(r)}: folder mtime ${usA} µs vs ${usB} µs`);
        }
      }
    }
  };
  walk(Buffer.from(a), Buffer.from(b), Buffer.alloc(0), true);
  return out;
}

function show(rel: Buffer, name: Buffer): string {
  return displayPath(Buffer.concat([rel, Buffer.from('/'), name]));
}

function sameContent(a: Buffer, b: Buffer): boolean {
  const fa = fs.openSync(a, 'r');
  const fb = fs.openSync(b, 'r');
  try {
    if (fs.fstatSync(fa).size !== fs.fstatSync(fb).size) return false;
    const ba = Buffer.allocUnsafe(1 << 20);
    const bb = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const na = fs.readSync(fa, ba, 0, ba.length, null);
      const nb = fs.readSync(fb, bb, 0, bb.length, null);
      if (na !== nb) return false;
      if (na === 0) return true;
      if (!ba.subarray(0, na).equals(bb.subarray(0, nb))) return false;
    }
  } finally {
    fs.closeSync(fa);
    fs.closeSync(fb);
  }
}
