/**
 * `tree`: per folder, files and bytes by copy count, built from the depth-first stream of
 * views/rows.ts with a stack of the open folders: memory is bounded by the tree's depth plus the
 * folders kept for printing (those within `maxDepth`), never by the number of files. Bytes are
 * deduplicated: an object's size is charged once (to its first path in the view), files are all
 * counted.
 */
import { formatCount } from '../core/units.js';
import { displayPath, vpathParent } from '../core/vpath.js';
import type { ViewRow } from './rows.js';

/** Files and bytes at one copy count. */
export interface CopyBucket {
  copies: number;
  files: number;
  bytes: number;
}

/** One folder of the `tree --json` document. */
export interface TreeNode {
  path: string;
  files: number;
  bytes: number;
  /** Non-empty buckets, by copy count ascending. */
  byCopies: CopyBucket[];
  /** Subfolders within the depth asked for, largest first. */
  children: TreeNode[];
}

interface Open {
  node: Acc;
  path: Buffer;
  depth: number;
}

class Acc {
  files = 0;
  bytes = 0;
  readonly copyFiles: number[] = [];
  readonly copyBytes: number[] = [];
  readonly children: TreeNode[] = [];

  constructor(readonly path: Buffer) {}

  add(copies: number, files: number, bytes: number): void {
    this.files += files;
    this.bytes += bytes;
    this.copyFiles[copies] = (this.copyFiles[copies] ?? 0) + files;
    this.copyBytes[copies] = (this.copyBytes[copies] ?? 0) + bytes;
  }

  merge(o: Acc): void {
    for (let c = 0; c < o.copyFiles.length; c++) this.add(c, o.copyFiles[c] ?? 0, o.copyBytes[c] ?? 0);
  }

  done(): TreeNode {
    const byCopies: CopyBucket[] = [];
    for (let c = 0; c < this.copyFiles.length; c++) {
      const files = this.copyFiles[c] ?? 0;
      if (files > 0) byCopies.push({ copies: c, files, bytes: this.copyBytes[c] ?? 0 });
    }
    this.children.sort((a, b) => b.bytes - a.bytes || b.files - a.files || (a.path < b.path ? -1 : 1));
    return { path: displayPath(this.path), files: this.files, bytes: this.bytes, byCopies, children: this.children };
  }
}

function within(folder: Buffer, p: Buffer): boolean {
  if (folder.length === 1 && folder[0] === 0x2f) return true;
  return (
    p.equals(folder) ||
    (p.length > folder.length && p[folder.length] === 0x2f && p.subarray(0, folder.length).equals(folder))
  );
}

/**
 * Aggregate `rows` (ordered by virtual path, all at or below `prefix`) into the folder tree
 * rooted at `prefix`, keeping folders down to `maxDepth` levels below it (Infinity = all).
 */
export function buildTree(rows: Iterable<ViewRow>, prefix: string, maxDepth = Number.POSITIVE_INFINITY): TreeNode {
  const rootPath = Buffer.from(prefix, 'utf8');
  const stack: Open[] = [{ node: new Acc(rootPath), path: rootPath, depth: 0 }];
  const top = (): Open => stack[stack.length - 1] as Open;
  const close = (): void => {
    const o = stack.pop() as Open;
    const parent = top();
    parent.node.merge(o.node);
    if (o.depth <= maxDepth) parent.node.children.push(o.node.done());
  };
  for (const row of rows) {
    const folder = row.vpath.equals(rootPath) ? rootPath : vpathParent(row.vpath);
    while (stack.length > 1 && !within(top().path, folder)) close();
    const t = top();
    if (!folder.equals(t.path)) {
      // Open the folders between the innermost open one and this file's folder.
      const start = t.path.length === 1 ? 1 : t.path.length + 1;
      let depth = t.depth;
      let at = start;
      while (at <= folder.length) {
        let slash = folder.indexOf(0x2f, at);
        if (slash < 0) slash = folder.length;
        depth += 1;
        const p = folder.subarray(0, slash);
        stack.push({ node: new Acc(p), path: p, depth });
        at = slash + 1;
      }
    }
    top().node.add(row.holders.length, 1, row.charged ? row.sizeBytes : 0);
  }
  while (stack.length > 1) close();
  return (stack[0] as Open).node.done();
}

/** Human lines: one per folder, indented, largest first, bytes and files per copy count. */
export function renderTree(root: TreeNode, fmtBytes: (n: number) => string): string[] {
  let maxCopies = 0;
  const scan = (n: TreeNode): void => {
    for (const b of n.byCopies) maxCopies = Math.max(maxCopies, b.copies);
    n.children.forEach(scan);
  };
  scan(root);
  const cols = Math.min(maxCopies, 3);
  const head = ['     bytes', '    files'];
  for (let c = 0; c <= cols; c++)
    head.push(`${c === cols && maxCopies > 3 ? `${c}+` : c} ${c === 1 ? 'copy  ' : 'copies'}`.padStart(12));
  const lines = [`${head.join(' ')}  folder`];
  const walk = (n: TreeNode, indent: string, name: string): void => {
    const cells = [fmtBytes(n.bytes).padStart(10), formatCount(n.files).padStart(9)];
    for (let c = 0; c <= cols; c++) {
      let bytes = 0;
      let files = 0;
      for (const b of n.byCopies) {
        if (b.copies === c || (c === cols && b.copies > cols)) {
          bytes += b.bytes;
          files += b.files;
        }
      }
      cells.push((files === 0 ? '-' : fmtBytes(bytes)).padStart(12));
    }
    lines.push(`${cells.join(' ')}  ${indent}${name}`);
    for (const ch of n.children) walk(ch, `${indent}  `, ch.path.slice(ch.path.lastIndexOf('/') + 1) || ch.path);
  };
  walk(root, '', root.path);
  return lines;
}
