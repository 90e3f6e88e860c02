/**
 * `distbackup-disk.json`: the identity of a disk. A disk is untrusted input (RELIABILITY.md §4):
 * the file is size-capped, parsed without prototype pollution, validated strictly, and a newer
 * format is refused.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../core/durable.js';
import { DistbackupError, describeError, errnoCode, RefusedError } from '../core/errors.js';
import { DISK_FORMAT, DISK_JSON } from './layout.js';

/** The identity of a disk as written in its `distbackup-disk.json`. */
export interface DiskIdentity {
  format: number;
  uuid: string;
  name: string;
  created: string;
  generation: number;
  /** Id of the home catalogue that registered the disk (absent on Python-written disks). */
  catalogue?: string;
}

const MAX_JSON_BYTES = 64 * 1024;
const UUID_RE = /^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/;
/** Disk names: letters, digits, `._-`, 1–64 characters, not starting with `.` or `-`. */
export const DISK_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;

/**
 * Read and validate `<root>/distbackup-disk.json`. Throws RefusedError (exit 2) when it is
 * missing (not a disk, or not mounted), and DistbackupError (exit 1) when it is unreadable,
 * too large, not JSON, or invalid.
 */
export function readDiskIdentity(root: string): DiskIdentity {
  const file = path.join(root, DISK_JSON);
  const bad = (what: string): DistbackupError =>
    new DistbackupError(`${file}: ${what}`, { code: 'bad-disk-json', path: file });
  // One descriptor, opened without following a link (ELOOP) or waiting on a FIFO, checked a
  // regular file within the cap, read by its /proc/self/fd name (that same file, whatever the
  // folder holds by now) in readFileSync's one call (the fault suite aims its read errors at
  // readSync, the objects' reads).
  let text: string;
  try {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw bad('not a regular file');
      if (st.size > MAX_JSON_BYTES) throw bad(`${st.size} bytes, larger than the ${MAX_JSON_BYTES} allowed`);
      text = fs.readFileSync(`/proc/self/fd/${fd}`, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    if (err instanceof DistbackupError) throw err;
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new RefusedError(`${root}: not a distbackup disk (no ${DISK_JSON}); is the disk mounted?`, {
        code: 'not-a-disk',
        path: root,
      });
    }
    if (code === 'ELOOP') throw bad('not a regular file (a symbolic link)');
    throw new DistbackupError(`${file}: ${describeError(err)}`, { path: file, cause: err });
  }
  // Grown since its fstat (something writes to it): refused, not parsed.
  if (text.length > MAX_JSON_BYTES) throw bad(`larger than the ${MAX_JSON_BYTES} bytes allowed`);
  return parseDiskIdentity(text, file);
}

/**
 * A uuid in the one form the catalogue keeps: lowercase, with its dashes (the Python distbackup
 * may have written it without them, and its import stores the dashed form).
 */
export function canonicalUuid(u: string): string {
  const h = u.toLowerCase().replace(/-/g, '');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Validate the text of a disk identity; `file` names it in errors. */
export function parseDiskIdentity(text: string, file: string): DiskIdentity {
  let raw: unknown;
  try {
    raw = JSON.parse(text, (key, value: unknown) => (key === '__proto__' || key === 'constructor' ? undefined : value));
  } catch (err) {
    throw new DistbackupError(`${file}: not valid JSON (${(err as Error).message})`, {
      code: 'bad-disk-json',
      path: file,
    });
  }
  const bad = (what: string): never => {
    throw new DistbackupError(`${file}: invalid disk identity: ${what}`, { code: 'bad-disk-json', path: file });
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad('not a JSON object');
  const o = raw as Record<string, unknown>;
  // The Python distbackup wrote no format field: it is format 1.
  const format = o.format === undefined ? DISK_FORMAT : o.format;
  if (typeof format !== 'number' || !Number.isInteger(format) || format < 1)
    return bad('"format" is not a positive integer');
  if (format > DISK_FORMAT) {
    throw new RefusedError(
      `${file}: disk format ${format} is newer than this distbackup understands (${DISK_FORMAT})`,
      {
        code: 'format-newer',
        path: file,
      },
    );
  }
  if (typeof o.uuid !== 'string' || !UUID_RE.test(o.uuid)) return bad('"uuid" is not a UUID');
  if (typeof o.name !== 'string' || !DISK_NAME_RE.test(o.name))
    return bad('"name" is missing or has characters other than A-Z a-z 0-9 . _ -');
  const created = o.created === undefined ? new Date(0).toISOString() : o.created;
  if (typeof created !== 'string' || created.length > 64 || Number.isNaN(Date.parse(created))) {
    return bad('"created" is not an ISO-8601 date');
  }
  const generation = o.generation === undefined ? 0 : o.generation;
  if (typeof generation !== 'number' || !Number.isSafeInteger(generation) || generation < 0) {
    return bad('"generation" is not a whole number ≥ 0');
  }
  const id: DiskIdentity = { format, uuid: canonicalUuid(o.uuid), name: o.name, created, generation };
  if (o.catalogue !== undefined) {
    if (typeof o.catalogue !== 'string' || !UUID_RE.test(o.catalogue)) return bad('"catalogue" is not a UUID');
    id.catalogue = canonicalUuid(o.catalogue);
  }
  return id;
}

/** Write `<root>/distbackup-disk.json` atomically and durably. */
export function writeDiskIdentity(root: string, id: DiskIdentity, beforeRename?: () => void): void {
  const doc: DiskIdentity = {
    format: id.format,
    uuid: id.uuid,
    name: id.name,
    created: id.created,
    generation: id.generation,
    ...(id.catalogue === undefined ? {} : { catalogue: id.catalogue }),
  };
  writeFileAtomic(path.join(root, DISK_JSON), `${JSON.stringify(doc)}\n`, 0o644, beforeRename);
}
