/** What the verify tests share: the stamps of a disk's copies, damage done to objects, findings. */
import * as fs from 'node:fs';
import type { Catalog } from '../../src/catalog/db.js';
import { getDiskByName } from '../../src/catalog/disks.js';
import { objectPath } from '../../src/disk/layout.js';
import type { VerifyDoc } from '../../src/verify/verify.js';

/** The verified_ms stamp (or null) of every copy counted on disk `name`, by hash. */
export function stamps(cat: Catalog, name = 'd1'): Map<string, number | null> {
  const id = getDiskByName(cat.db, name)?.id;
  const rows = cat.db
    .prepare('SELECT o.hash, c.verified_ms AS v FROM copies c JOIN objects o ON o.id = c.object_id WHERE c.disk_id = ?')
    .all(id) as { hash: string; v: number | null }[];
  return new Map(rows.map((r) => [r.hash, r.v]));
}

/** The biggest objects first, so that each damage hits a real, non-empty object. */
export function bigOnes(disk: string, hashes: string[]): string[] {
  return [...hashes].sort((a, b) => fs.statSync(objectPath(disk, b)).size - fs.statSync(objectPath(disk, a)).size);
}

/** Flip a byte of the biggest object, truncate the next one to 10 bytes, remove the third. */
export function damage(disk: string, hashes: string[]): [string, string, string] {
  const [flipped, truncated, missing] = bigOnes(disk, hashes) as [string, string, string];
  const fp = objectPath(disk, flipped);
  const bytes = fs.readFileSync(fp);
  bytes[100] = (bytes[100] ?? 0) ^ 0x01;
  fs.writeFileSync(fp, bytes);
  fs.truncateSync(objectPath(disk, truncated), 10);
  fs.rmSync(objectPath(disk, missing));
  return [flipped, truncated, missing];
}

/** What a verify found, without what depends on the lanes (order, threads). */
export function findings(doc: VerifyDoc) {
  return {
    checked: doc.checked,
    bytesChecked: doc.bytesChecked,
    bad: [...doc.bad].sort(),
    missing: [...doc.missing].sort(),
    problems: doc.badDetails.map((b) => `${b.hash} ${b.problem}`).sort(),
    remaining: doc.remaining,
    copies: doc.copies,
  };
}
