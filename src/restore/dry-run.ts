/**
 * `restore --dry-run`: what a run would do, entry by entry, without writing anything (DEST is
 * only lstat'ed, and need not exist).
 */
import * as fs from 'node:fs';
import type { Db } from '../catalog/db.js';
import { iterateFilesUnder } from '../catalog/reports.js';
import type { RestoreState } from '../catalog/restore-state.js';
import { FileKind } from '../catalog/schema.js';
import { displayPath } from '../core/vpath.js';
import type { DestTree } from './dest-tree.js';
import { addProblem, type DryRunEntry, type RestoreDoc, type RestoreOptions } from './doc.js';
import { hashOfPath } from './file-writer.js';
import type { Pace } from './pace.js';
import { joinTarget } from './paths.js';
import { stillOurs } from './place.js';
import { checkRow, EMPTY_HASH } from './rows.js';
import type { Selection } from './select.js';

/** What a dry run reads. */
export interface DryRunContext {
  db: Db;
  prefixes: readonly Buffer[];
  /** DEST as given (it may not exist). */
  destText: string;
  tree: DestTree;
  sel: Selection;
  state: RestoreState;
  doc: RestoreDoc;
  /** The connected disk's id in the catalogue, if any. */
  diskId: number | undefined;
  opts: RestoreOptions;
  pace: Pace;
}

/** Count into `ctx.doc` (and tell `opts.onDryRun`) what a run would restore. */
export async function dryRun(ctx: DryRunContext): Promise<void> {
  const { doc, opts, tree, sel } = ctx;
  const destExists = fs.existsSync(ctx.destText);
  for (const row of iterateFilesUnder(ctx.db, ctx.prefixes)) {
    await ctx.pace.breathe();
    if (ctx.pace.aborted()) return;
    const c = checkRow(row);
    if (!c.ok) continue;
    const t = c.todo;
    if (!sel.selected(t)) continue;
    const shown = displayPath(t.vpath);
    if (t.kind === FileKind.dir) {
      if (destExists && tree.peek(joinTarget(tree.dest, c.parts)) !== undefined) continue;
      doc.wouldRestore.dirs += 1;
      opts.onDryRun?.({ path: shown, kind: 'folder', sizeBytes: 0, action: 'restore' });
      continue;
    }
    if (sel.done(t)) continue;
    if (t.kind === FileKind.file) {
      const here = ctx.diskId !== undefined && c.diskIds.includes(ctx.diskId);
      if (!here && t.hash !== EMPTY_HASH) continue;
      if (sel.foundElsewhere(c.parts, t)) {
        doc.foundElsewhere += 1;
        opts.onDryRun?.({ path: shown, kind: 'file', sizeBytes: t.sizeBytes, action: 'found-elsewhere' });
        continue;
      }
    }
    let action: DryRunEntry['action'] = opts.link === true && t.kind === FileKind.file ? 'link' : 'restore';
    const inDest = destExists ? tree.peek(joinTarget(tree.dest, c.parts)) : undefined;
    if (inDest !== undefined) {
      // (A file that cannot be read is not ours, as in the run, where it is that file's error.)
      const earlier = stillOurs(inDest, ctx.state.restoredEntry(t.vpath), () => {
        try {
          return hashOfPath(tree.sp(joinTarget(tree.dest, c.parts)));
        } catch {
          return '';
        }
      });
      // Kept as an earlier run restored it (restore/newest.ts), as the run would.
      if (earlier && opts.keepRestored === true) continue;
      const ours = opts.overwrite === true || earlier;
      if (inDest.isDirectory() || !ours) action = 'exists';
      else action = 'overwrite';
    }
    if (action === 'exists') addProblem(doc.existing, shown, 'exists; not overwritten (use --overwrite)');
    else if (t.kind === FileKind.file) {
      doc.wouldRestore.files += 1;
      doc.wouldRestore.bytes += t.sizeBytes;
    } else doc.wouldRestore.symlinks += 1;
    opts.onDryRun?.({
      path: shown,
      kind: t.kind === FileKind.file ? 'file' : 'symlink',
      sizeBytes: t.sizeBytes,
      action,
    });
  }
}
