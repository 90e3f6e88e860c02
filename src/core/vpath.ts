/**
 * Virtual paths. A mapping's virtual path is a normalised UTF-8 string (`/photos/2024`); a file's
 * virtual path is a Buffer (names need not be UTF-8) made of the mapping's path and the
 * file's path below the real folder. Pure functions.
 */
import { isUtf8 } from 'node:buffer';
import { UsageError } from './errors.js';

const SLASH = 0x2f;

/** Normalise a user-typed virtual path: absolute, no `.`/`..`/empty parts, no trailing slash. */
export function normalizeVpath(text: string): string {
  if (!text.startsWith('/')) throw new UsageError(`virtual path '${text}' is not absolute (it must start with /)`);
  if (text.includes('\0')) throw new UsageError(`virtual path '${printable(text)}' contains a NUL byte`);
  const parts = text.split('/').filter((p) => p !== '');
  for (const p of parts) {
    if (p === '.' || p === '..') throw new UsageError(`virtual path '${text}' contains '${p}'`);
  }
  return `/${parts.join('/')}`;
}

/** True when `child` equals `parent` or lies below it (string virtual paths, normalised). */
export function vpathContains(parent: string, child: string): boolean {
  if (parent === '/') return true;
  return child === parent || child.startsWith(`${parent}/`);
}

/** `parent + '/' + name` as bytes; `parent` `/` gives `/name`. */
export function vpathJoin(parent: Buffer | string, name: Buffer | string): Buffer {
  const p = typeof parent === 'string' ? Buffer.from(parent, 'utf8') : parent;
  const n = typeof name === 'string' ? Buffer.from(name, 'utf8') : name;
  if (p.length === 1 && p[0] === SLASH) return Buffer.concat([p, n]);
  return Buffer.concat([p, Buffer.from('/'), n]);
}

/** The parent of a byte virtual path (`/a/b` → `/a`, `/a` → `/`). */
export function vpathParent(vpath: Buffer): Buffer {
  const i = vpath.lastIndexOf(SLASH);
  return i <= 0 ? Buffer.from('/') : vpath.subarray(0, i);
}

/**
 * Bounds of the subtree strictly below `prefix` for a range scan on a BLOB column:
 * `vpath >= lo AND vpath < hi` (`/` is 0x2f, so `0x30` closes the range).
 */
export function subtreeRange(prefix: Buffer | string): { lo: Buffer; hi: Buffer } {
  const p = typeof prefix === 'string' ? Buffer.from(prefix, 'utf8') : prefix;
  if (p.length === 1 && p[0] === SLASH) return { lo: Buffer.from('/'), hi: Buffer.from('0') };
  return { lo: Buffer.concat([p, Buffer.from('/')]), hi: Buffer.concat([p, Buffer.from('0')]) };
}

/**
 * Percent-encode a byte path for the manifest and for display: `%` `\t` `\n` `\r`, other
 * control bytes and every byte of a sequence that is not valid UTF-8 become `%XX`.
 */
export function percentEncode(bytes: Buffer): string {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] ?? 0;
    const len = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (len === 1) {
      out += b < 0x20 || b === 0x25 || b === 0x7f ? `%${hex2(b)}` : String.fromCharCode(b);
      i += 1;
    } else if (len > 1 && i + len <= bytes.length && isUtf8(bytes.subarray(i, i + len))) {
      out += bytes.toString('utf8', i, i + len);
      i += len;
    } else {
      out += `%${hex2(b)}`;
      i += 1;
    }
  }
  return out;
}

/** Inverse of percentEncode: `%XX` → byte, everything else as UTF-8. */
export function percentDecode(text: string): Buffer {
  const parts: Buffer[] = [];
  let run = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const h = text.slice(i + 1, i + 3);
    if (c === '%' && /^[0-9a-fA-F]{2}$/.test(h)) {
      if (run !== '') parts.push(Buffer.from(run, 'utf8'));
      run = '';
      parts.push(Buffer.from([Number.parseInt(h, 16)]));
      i += 2;
    } else {
      run += c;
    }
  }
  if (run !== '') parts.push(Buffer.from(run, 'utf8'));
  return Buffer.concat(parts);
}

/** A path safe to print on one terminal line: UTF-8 kept, control and invalid bytes `%XX`. */
export function displayPath(p: Buffer | string): string {
  return percentEncode(typeof p === 'string' ? Buffer.from(p, 'utf8') : p);
}

/** Strip control characters from untrusted text before printing it (terminal escapes). */
export function printable(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

function hex2(b: number): string {
  return b.toString(16).toUpperCase().padStart(2, '0');
}
