/**
 * Turning an untrusted catalogue path into a target inside the restore folder (RELIABILITY.md
 * §4): built from components, never from string joins; a component that is empty, `.`, `..`,
 * holds NUL (or `/`, impossible after the split) is refused, and so is a path that is not
 * absolute, too long, or starts with the restore state's folder (in any case: DEST may ignore
 * it). Pure functions.
 */

/** Name of the restore state's folder inside DEST; no catalogue path may use it. */
export const STATE_DIR = '.distbackup-restore';

/**
 * Longest virtual path accepted, in bytes. Linux has no limit on a path's depth, only on what
 * one system call takes (PATH_MAX, 4096): restore reaches longer paths through a folder
 * descriptor. 64 KiB bounds what a hostile catalogue can make us build.
 */
export const MAX_VPATH_BYTES = 65536;
/** Longest component accepted, in bytes (NAME_MAX on Linux filesystems). */
export const MAX_NAME_BYTES = 255;

const SLASH = 0x2f;

/** The components of a catalogue path, or the reason it is refused. */
export type SplitResult = { ok: true; parts: Buffer[] } | { ok: false; reason: string };

/** Split the virtual path `vpath` into safe components. */
export function splitVpath(vpath: Buffer): SplitResult {
  if (vpath.length === 0) return { ok: false, reason: 'empty path' };
  if (vpath[0] !== SLASH) return { ok: false, reason: 'not an absolute virtual path' };
  if (vpath.length > MAX_VPATH_BYTES) return { ok: false, reason: `path longer than ${MAX_VPATH_BYTES} bytes` };
  if (vpath.includes(0)) return { ok: false, reason: 'path contains a NUL byte' };
  const parts: Buffer[] = [];
  let start = 1;
  for (let i = 1; i <= vpath.length; i++) {
    if (i === vpath.length || vpath[i] === SLASH) {
      const part = vpath.subarray(start, i);
      if (part.length === 0) return { ok: false, reason: 'empty path component' };
      if (part.length === 1 && part[0] === 0x2e) return { ok: false, reason: "path component '.'" };
      if (part.length === 2 && part[0] === 0x2e && part[1] === 0x2e)
        return { ok: false, reason: "path component '..'" };
      if (part.length > MAX_NAME_BYTES) return { ok: false, reason: `name longer than ${MAX_NAME_BYTES} bytes` };
      parts.push(part);
      start = i + 1;
    }
  }
  if (parts.length === 0) return { ok: false, reason: 'the root itself is not a file' };
  if (parts[0] !== undefined && isStateDirName(parts[0])) return { ok: false, reason: `${STATE_DIR} is reserved` };
  return { ok: true, parts };
}

/**
 * True when a folder entry named `name` at DEST's root may be the restore state's folder: on a
 * DEST that ignores case (FAT, exFAT, NTFS with ignore_case) `.DISTBACKUP-RESTORE` is the same
 * entry, on FAT trailing dots and spaces go too, and exFAT matches by upcasing, where `ı` and `ſ`
 * are `I` and `S`. A catalogue entry under such a name would write into the state folder and
 * forge its records.
 */
function isStateDirName(name: Buffer): boolean {
  const folded = name
    .toString('utf8')
    .replace(/[. ]+$/, '')
    .toUpperCase()
    .toLowerCase();
  return (
    folded === STATE_DIR ||
    name
      .toString('latin1')
      .replace(/[. ]+$/, '')
      .toLowerCase() === STATE_DIR
  );
}

/** `dest/p1/p2/…` as bytes; `dest` is an absolute, resolved folder. */
export function joinTarget(dest: Buffer, parts: readonly Buffer[]): Buffer {
  const chunks: Buffer[] = [dest];
  const sep = Buffer.from('/');
  for (const p of parts) chunks.push(sep, p);
  return Buffer.concat(chunks);
}

/**
 * True when `target` is `dest` itself or lies below it (`dest + '/'` prefix, never a plain
 * prefix: `/dest-evil` is not inside `/dest`).
 */
export function insideDest(dest: Buffer, target: Buffer): boolean {
  if (target.equals(dest)) return true;
  const d = dest.length > 1 && dest[dest.length - 1] === SLASH ? dest.subarray(0, -1) : dest;
  if (d.length === 1 && d[0] === SLASH) return target[0] === SLASH;
  return target.length > d.length + 1 && target[d.length] === SLASH && target.subarray(0, d.length).equals(d);
}
