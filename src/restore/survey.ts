/**
 * What is left after a run (or before one, for `--plan`): every catalogue entry in the selection
 * that is not restored is counted as remaining, and the disks holding the missing files are
 * planned greedily (`guide.ts`). Reads only.
 *
 * A run counts each catalogue row as it reads it to collect its work (`Survey.row`), except the
 * files it is about to restore: only those that then fail are counted at its end, each looked up
 * again by its path. So a restore reads the catalogue once, not once more for the survey (20,000
 * small files: 250 ms of the main thread's 4.3 s went to the second pass).
 */
import type { Db } from '../catalog/db.js';
import { type FileReportRow, iterateFilesUnder } from '../catalog/reports.js';
import { FileKind } from '../catalog/schema.js';
import { addProblem, type PathProblem, type RestoreDoc } from './doc.js';
import { MissingTally, type PlanStep, planDisks } from './guide.js';
import { asBig, type Checked, checkRow, EMPTY_HASH } from './rows.js';
import type { Selection } from './select.js';

/** Counts what is missing one catalogue row at a time; `finish` writes it into the document. */
export class Survey {
  private readonly tally = new MissingTally();
  private readonly refused: PathProblem[] = [];
  private remaining = 0;
  private remainingBytes = 0;

  /** `exclude`: the disk just used (what it holds and is still missing failed on it). */
  constructor(
    private readonly sel: Selection,
    private readonly exclude: number | undefined,
  ) {}

  /**
   * Count `row` (checked as `c`) when it is a file of the selection that is not restored.
   * `onThisDisk`: the disk just used still counts as holding it (it failed for a reason of DEST,
   * not of the disk's copy).
   */
  row(row: FileReportRow, c: Checked, onThisDisk = false): void {
    if (!c.ok) {
      // Files never hashed are not backed up: not "missing" unless they should have been.
      if (c.reason.startsWith('never hashed')) return;
      addProblem(this.refused, c.path, c.reason);
      this.remaining += 1;
      this.remainingBytes += Number(asBig(row.size) ?? 0n);
      return;
    }
    const t = c.todo;
    if (t.kind !== FileKind.file) return;
    if (!this.sel.selected(t)) return;
    if (this.sel.done(t)) return;
    if (c.priority === 0 && c.diskIds.length === 0) return; // excluded from the backup on purpose
    this.remaining += 1;
    this.remainingBytes += t.sizeBytes;
    if (t.hash === EMPTY_HASH) return;
    // (A file the catalogue lists on no disk may have been found on the disk used: unlistedHere.)
    const holders = !onThisDisk
      ? c.diskIds.filter((d) => d !== this.exclude)
      : this.exclude !== undefined && !c.diskIds.includes(this.exclude)
        ? [...c.diskIds, this.exclude]
        : c.diskIds;
    this.tally.add(holders, t.sizeBytes);
  }

  /** Count the file at `vpath` again from the catalogue (a file this run failed to restore). */
  again(db: Db, vpath: Buffer, onThisDisk = false): void {
    for (const row of iterateFilesUnder(db, [vpath])) {
      const c = checkRow(row);
      if (c.ok && c.todo.vpath.equals(vpath)) this.row(row, c, onThisDisk);
    }
  }

  /** Write the counts, the refused rows and the plan of disks into `doc`. */
  finish(doc: RestoreDoc, nameOf: (id: number) => string): void {
    for (const r of this.refused) addProblem(doc.refused, r.path, r.error);
    doc.remaining += this.remaining;
    doc.remainingBytes += this.remainingBytes;
    doc.unavailable = this.tally.unavailableFiles;
    doc.unavailableBytes = this.tally.unavailableBytes;
    const steps: PlanStep[] = planDisks(this.tally.list, nameOf);
    doc.plan = steps.map((s) => ({ disk: nameOf(s.diskId), files: s.files, bytes: s.bytes }));
    doc.next = doc.plan[0] ?? null;
  }
}

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
  const s = new Survey(sel, exclude);
  for (const row of iterateFilesUnder(db, prefixes)) s.row(row, checkRow(row));
  s.finish(doc, nameOf);
}
