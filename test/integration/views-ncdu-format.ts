/**
 * A validator of ncdu's JSON export, format 1.x, as ncdu reads it
 * (https://dev.yorhel.nl/ncdu/jsonfmt): `[major=1, minor, {metadata}, rootdir]`; a directory is
 * an array whose first element is its info object and the rest its entries; an entry is an
 * info object (a file) or a directory; info objects need a string `name` and may carry the
 * numeric fields `asize`, `dsize`, `dev`, `ino`, `mtime`, `uid`, `gid`, `mode`, the booleans
 * `hlnkc`, `read_error`, `notreg`, and `excluded` (a string). Throws on the first violation.
 */
const NUMERIC = ['asize', 'dsize', 'dev', 'ino', 'mtime', 'uid', 'gid', 'mode', 'nlink'];
const BOOLEAN = ['hlnkc', 'read_error', 'notreg'];

export function validateNcduExport(doc: unknown): void {
  if (!Array.isArray(doc) || doc.length < 4) throw new Error('export: not an array of at least 4 elements');
  if (doc[0] !== 1) throw new Error(`export: major version ${String(doc[0])}, ncdu 1.x reads 1`);
  if (typeof doc[1] !== 'number' || !Number.isInteger(doc[1]) || doc[1] < 0) throw new Error('export: minor version');
  const meta = doc[2] as Record<string, unknown>;
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) throw new Error('export: metadata object');
  if (typeof meta.progname !== 'string' || typeof meta.progver !== 'string' || typeof meta.timestamp !== 'number') {
    throw new Error('export: metadata needs progname, progver, timestamp');
  }
  if (!Array.isArray(doc[3])) throw new Error('export: the root must be a directory');
  dir(doc[3], '/');
}

function dir(d: unknown[], where: string): void {
  if (d.length === 0) throw new Error(`${where}: empty directory array`);
  const name = info(d[0], where);
  const seen = new Set<string>();
  for (const e of d.slice(1)) {
    let n: string;
    if (Array.isArray(e)) {
      dir(e, `${where}/${name}`);
      n = (e[0] as { name: string }).name;
    } else {
      n = info(e, `${where}/${name}`);
    }
    if (seen.has(n)) throw new Error(`${where}/${name}: duplicate entry ${n}`);
    seen.add(n);
  }
}

function info(v: unknown, where: string): string {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${where}: entry is not an object`);
  const o = v as Record<string, unknown>;
  if (typeof o.name !== 'string' || o.name === '') throw new Error(`${where}: entry without a name`);
  for (const k of NUMERIC) {
    if (k in o && (typeof o[k] !== 'number' || !Number.isInteger(o[k]) || (o[k] as number) < 0)) {
      throw new Error(`${where}/${o.name}: ${k} is not a non-negative integer`);
    }
  }
  for (const k of BOOLEAN)
    if (k in o && typeof o[k] !== 'boolean') throw new Error(`${where}/${o.name}: ${k} is not a boolean`);
  if ('excluded' in o && typeof o.excluded !== 'string')
    throw new Error(`${where}/${o.name}: excluded is not a string`);
  return o.name;
}
