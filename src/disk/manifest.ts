/**
 * `distbackup-manifest.txt` (SPEC §2): a header line, then one tab-separated line per file whose
 * object is on the disk: `sha256 size mtime(unix s) mode(octal) path`, the path percent-encoded
 * (`%09`, `%0A`, `%25`, control bytes and bytes that are not UTF-8), so that a disk can be
 * restored in twenty years with `sh distbackup-restore.sh DEST` and nothing else.
 */
import * as fs from 'node:fs';
import { renameDurable, tempNameFor, writeFully } from '../core/durable.js';
import { percentDecode, percentEncode } from '../core/vpath.js';

/** The first line of every manifest. */
export const MANIFEST_HEADER =
  '# distbackup-manifest 1: sha256 size mtime(unix s) mode(octal) path(percent-encoded), tab-separated; restore with: sh distbackup-restore.sh DEST';

/** One manifest entry. */
export interface ManifestEntry {
  hash: string;
  sizeBytes: number;
  mtimeS: number;
  mode: number;
  vpath: Buffer;
}

/** The manifest line of `e` (without the newline). */
export function formatManifestLine(e: ManifestEntry): string {
  return `${e.hash}\t${e.sizeBytes}\t${e.mtimeS}\t${(e.mode & 0o7777).toString(8)}\t${percentEncode(e.vpath)}`;
}

/** Parse one manifest line; undefined for the header, blank lines and malformed lines. */
export function parseManifestLine(line: string): ManifestEntry | undefined {
  if (line === '' || line.startsWith('#')) return undefined;
  const parts = line.split('\t');
  if (parts.length !== 5) return undefined;
  const [hash, size, mtime, mode, enc] = parts as [string, string, string, string, string];
  if (!/^[0-9a-f]{64}$/.test(hash) || !/^\d+$/.test(size) || !/^-?\d+$/.test(mtime) || !/^[0-7]+$/.test(mode)) {
    return undefined;
  }
  return {
    hash,
    sizeBytes: Number(size),
    mtimeS: Number(mtime),
    mode: Number.parseInt(mode, 8),
    vpath: percentDecode(enc),
  };
}

/**
 * Write the manifest of `entries` to `target` atomically (temp file, fsync, rename, folder
 * fsync), streaming in 1 MiB writes. `beforeRename` runs just before the rename.
 */
export function writeManifest(target: string, entries: Iterable<ManifestEntry>, beforeRename?: () => void): number {
  const tmp = tempNameFor(target);
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644);
  let n = 0;
  try {
    let pos = 0;
    let chunk: string[] = [`${MANIFEST_HEADER}\n`];
    let chunkLen = 0;
    const flush = (): void => {
      const buf = Buffer.from(chunk.join(''), 'utf8');
      writeFully(fd, buf, pos);
      pos += buf.length;
      chunk = [];
      chunkLen = 0;
    };
    for (const e of entries) {
      const line = `${formatManifestLine(e)}\n`;
      chunk.push(line);
      chunkLen += line.length;
      n += 1;
      if (chunkLen >= 1 << 20) flush();
    }
    flush();
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  try {
    beforeRename?.();
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  renameDurable(tmp, target);
  return n;
}
