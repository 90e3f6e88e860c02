/**
 * `ncdu`: the catalogue (filtered) as ncdu's JSON export, format 1.x
 * (`[1, 2, {"progname", "progver", "timestamp"}, [{"name": "/"}, …]]`, see
 * https://dev.yorhel.nl/ncdu/jsonfmt), written as the rows stream by in depth-first order:
 * a folder is `[{info}, child, …]`, a file `{info}`. Memory is bounded by the tree's depth.
 *
 * Files with the same content share an inode number and carry `hlnkc`, so ncdu counts the
 * bytes of one content once per folder, like hard links. File names carry the disks holding
 * them, and `(P n)` / `(M n)` when the priority is not 1 or a cap is set, as the Python
 * distbackup showed them. Names that are not UTF-8 are percent-encoded (the export is JSON).
 */
import { displayPath, vpathParent } from '../core/vpath.js';
import type { ViewRow } from './rows.js';

/** The ncdu export's format numbers: major 1 (the 1.x format), minor 2. */
export const NCDU_MAJOR = 1;
export const NCDU_MINOR = 2;

/** Where the export goes: called with successive chunks; may return a promise (backpressure). */
export type Sink = (chunk: string) => void | Promise<void>;

/** Summary of one export. */
export interface NcduSummary {
  files: number;
  folders: number;
  bytes: number;
}

const CHUNK = 256 * 1024;

function roundBlocks(n: number): number {
  return Math.ceil(n / 4096) * 4096;
}

/**
 * Write the export of `rows` (ordered by virtual path, at or below `prefix`) to `sink`.
 * `diskNames` maps disk ids to names for the file names; `progver` is distbackup's version.
 */
export async function writeNcdu(
  rows: Iterable<ViewRow>,
  prefix: string,
  diskNames: ReadonlyMap<number, string>,
  sink: Sink,
  meta: { progver: string; timestampS: number },
): Promise<NcduSummary> {
  let buf = '';
  const emit = async (s: string): Promise<void> => {
    buf += s;
    if (buf.length >= CHUNK) {
      const out = buf;
      buf = '';
      await sink(out);
    }
  };
  const summary: NcduSummary = { files: 0, folders: 1, bytes: 0 };
  const rootPath = Buffer.from(prefix, 'utf8');
  const header = [
    NCDU_MAJOR,
    NCDU_MINOR,
    { progname: 'distbackup', progver: meta.progver, timestamp: meta.timestampS },
  ];
  let dirIno = 0;
  const dirInfo = (name: string): string => {
    dirIno += 2;
    return JSON.stringify({ name, asize: 4096, dsize: 4096, ino: dirIno });
  };
  await emit(
    `${JSON.stringify(header).slice(0, -1)},\n[${JSON.stringify({ name: prefix === '/' ? '/' : displayPath(rootPath), asize: 4096, dsize: 4096, dev: 1, ino: 0 })}`,
  );
  const stack: Buffer[] = [rootPath];
  const top = (): Buffer => stack[stack.length - 1] as Buffer;
  const within = (folder: Buffer, p: Buffer): boolean =>
    (folder.length === 1 && folder[0] === 0x2f) ||
    p.equals(folder) ||
    (p.length > folder.length && p[folder.length] === 0x2f && p.subarray(0, folder.length).equals(folder));
  for (const row of rows) {
    const folder = row.vpath.equals(rootPath) ? rootPath : vpathParent(row.vpath);
    while (stack.length > 1 && !within(top(), folder)) {
      stack.pop();
      await emit(']');
    }
    const t = top();
    if (!folder.equals(t)) {
      let at = t.length === 1 ? 1 : t.length + 1;
      while (at <= folder.length) {
        let slash = folder.indexOf(0x2f, at);
        if (slash < 0) slash = folder.length;
        const p = folder.subarray(0, slash);
        await emit(`,\n[${dirInfo(displayPath(folder.subarray(at, slash)))}`);
        summary.folders += 1;
        stack.push(p);
        at = slash + 1;
      }
    }
    const base = row.vpath.subarray(row.vpath.lastIndexOf(0x2f) + 1);
    let name = displayPath(base);
    if (row.holders.length > 0) name += ` (${row.holders.map((d) => diskNames.get(d) ?? `#${d}`).join(',')})`;
    if (row.priority !== 1) name += ` (P${row.priority})`;
    if (row.maxCopies !== null) name += ` (M${row.maxCopies})`;
    const info: Record<string, unknown> = {
      name,
      asize: row.sizeBytes,
      dsize: roundBlocks(row.sizeBytes),
      // Files of one content share an inode (odd numbers; folders are even).
      ino: row.objectId === null ? 2 * (row.id + 2 ** 40) + 1 : 2 * row.objectId + 1,
      mtime: Number(row.mtimeNs / 1_000_000_000n),
    };
    if (row.objectId !== null && row.refs > 1) info.hlnkc = true;
    await emit(`,\n${JSON.stringify(info)}`);
    summary.files += 1;
    if (row.charged) summary.bytes += row.sizeBytes;
  }
  await emit(`${']'.repeat(stack.length)}]\n`);
  if (buf !== '') await sink(buf);
  return summary;
}
