/**
 * What is left after a run (or before one, for `--plan`): every catalogue entry in the selection
 * that is not restored is counted as remaining, and the disks holding the missing files are
 * planned greedily (`guide.ts`). Reads only.
 */
import type { Db } from '../catalog/db.js';
import { iterateFilesUnder } from '../catalog/reports.js';
import { FileKind } from '../catalog/schema.js';
import { addProblem, type RestoreDoc } from './doc.js';
import { MissingTally, type PlanStep, planDisks } from './guide.js';
import { asBig, checkRow, EMPTY_HASH } from './rows.js';
import type { Selection } from './select.js';

/**
 * Count what is still missing under `prefixes` into `doc` and plan the disks for it.
 * `exclude`: the disk just used (what it holds and is still missing failed on it).
 */
export function survey(
  db: Db,
  prefixes: readonly Buffer[],
  sel: Selection,
  doc: RestoreDoc,
  nameOf: (id: number) => string,
  exclude: number | undefined,
): void {
  const tally = new MissingTally();
  for (const row of iterateFilesUnder(db, prefixes)) {
    const c = checkRow(row);
    if (!c.ok) {
      // Files never hashed are not backed up: not "missing" unless they should have been.
      if (c.reason.startsWith('never hashed')) continue;
      addProblem(doc.refused, c.path, c.reason);
      doc.remaining += 1;
      doc.remainingBytes += Number(asBig(row.size) ?? 0n);
      continue;
    }
    const t = c.todo;
    if (t.kind !== FileKind.file) continue;
    if (!sel.selected(t)) continue;
    if (sel.done(t)) continue;
    if (c.priority === 0 && c.diskIds.length === 0) continue; // excluded from the backup on purpose
    doc.remaining += 1;
    doc.remainingBytes += t.sizeBytes;
    if (t.hash === EMPTY_HASH) continue;
    tally.add(
      c.diskIds.filter((d) => d !== exclude),
      t.sizeBytes,
    );
  }
  doc.unavailable = tally.unavailableFiles;
  doc.unavailableBytes = tally.unavailableBytes;
  const steps: PlanStep[] = planDisks(tally.list, nameOf);
  doc.plan = steps.map((s) => ({ disk: nameOf(s.diskId), files: s.files, bytes: s.bytes }));
  doc.next = doc.plan[0] ?? null;
}
