/**
 * Checking a catalogue row before restore uses it: the catalogue may come from a disk, which is
 * untrusted input (RELIABILITY.md §4). Every value is type- and range-checked and the path split
 * into safe components (`paths.ts`); a row that fails is refused with its reason. Pure functions.
 */
import { createHash } from 'node:crypto';
import type { FileReportRow } from '../catalog/reports.js';
import type { RestoreTodo } from '../catalog/restore-state.js';
import { displayPath } from '../core/vpath.js';
import { HASH_RE } from '../disk/layout.js';
import { splitVpath } from './paths.js';

/** SHA-256 of no bytes: an empty file needs no object. */
export const EMPTY_HASH = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/**
 * What the restore state records for a link: the SHA-256 of its target bytes, so that a later
 * run sees a link whose target changed in the catalogue as not done (records of older runs have
 * '' there: target unknown, taken as unchanged).
 */
export function linkHash(target: Buffer | null): string {
  return createHash('sha256')
    .update(target ?? Buffer.alloc(0))
    .digest('hex');
}

/** A row of the catalogue, checked: a restorable entry, or the reason it is refused. */
export type Checked =
  | { ok: true; todo: RestoreTodo; parts: Buffer[]; diskIds: number[]; priority: number }
  | { ok: false; path: string; reason: string };

const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

/** An integer column as a bigint, or undefined when it is not an integer. */
export function asBig(v: unknown): bigint | undefined {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  return undefined;
}

/** Check every value of an untrusted catalogue row before it is used. */
export function checkRow(r: FileReportRow): Checked {
  const vpath = Buffer.isBuffer(r.vpath) ? r.vpath : typeof r.vpath === 'string' ? Buffer.from(r.vpath) : undefined;
  if (vpath === undefined) return { ok: false, path: String(r.vpath), reason: 'path is not text or bytes' };
  const shown = displayPath(vpath);
  const bad = (reason: string): Checked => ({ ok: false, path: shown, reason });
  const split = splitVpath(vpath);
  if (!split.ok) return bad(split.reason);
  const kind = asBig(r.kind);
  if (kind !== 0n && kind !== 1n && kind !== 2n) return bad(`unknown kind ${String(r.kind)}`);
  const size = asBig(r.size) ?? -1n;
  if (size < 0n || size > SAFE_MAX) return bad(`invalid size ${String(r.size)}`);
  const mtimeNs = asBig(r.mtimeNs) ?? 0n;
  const mode = Number((asBig(r.mode) ?? 0n) & 0o7777n);
  const uid = asBig(r.uid) ?? 0n;
  const gid = asBig(r.gid) ?? 0n;
  if (uid < 0n || uid > 0xffffffffn || gid < 0n || gid > 0xffffffffn) return bad('invalid owner');
  let hash = '';
  let linkTarget: Buffer | null = null;
  if (kind === 0n) {
    if (r.hash === null || r.hash === undefined) {
      if (size !== 0n) return bad('never hashed: not backed up');
      hash = EMPTY_HASH;
    } else if (typeof r.hash !== 'string' || !HASH_RE.test(r.hash)) {
      return bad('invalid object hash');
    } else hash = r.hash;
  } else if (kind === 2n) {
    const t = r.linkTarget;
    linkTarget = Buffer.isBuffer(t) ? t : typeof t === 'string' ? Buffer.from(t) : null;
    if (linkTarget === null || linkTarget.length === 0 || linkTarget.includes(0)) return bad('invalid symlink target');
  }
  const diskIds: number[] = [];
  if (typeof r.diskIds === 'string') {
    for (const s of r.diskIds.split(',')) {
      const n = Number(s);
      if (Number.isSafeInteger(n)) diskIds.push(n);
    }
  }
  return {
    ok: true,
    todo: {
      vpath,
      kind: Number(kind),
      sizeBytes: Number(size),
      mtimeNs,
      mode,
      uid: Number(uid),
      gid: Number(gid),
      linkTarget,
      hash,
    },
    parts: split.parts,
    diskIds,
    priority: Number(asBig(r.priority) ?? 1n),
  };
}
