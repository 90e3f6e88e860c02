/** Fixtures of the disk and sync tests: real source folders, a real catalogue, real disk folders. */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { type Catalog, openCatalog } from '../../src/catalog/db.js';
import { HASH_RE, OBJECTS_DIR } from '../../src/disk/layout.js';
import { mapSource } from '../../src/sources/sources.js';
import { runUpdate } from '../../src/update/update.js';
import { tempDir } from '../helpers/tmp.js';

/** Deterministic pseudo-random bytes (so sizes and hashes are reproducible). */
export function bytes(seed: number, size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export interface World {
  root: string;
  home: string;
  src: string;
  cat: Catalog;
}

/** A temp world: home data folder, a source folder mapped at /data, an open catalogue. */
export function makeWorld(t: TestContext): World {
  const root = tempDir(t);
  const home = path.join(root, 'home');
  const src = path.join(root, 'src');
  fs.mkdirSync(src);
  const cat = openCatalog(home);
  t.after(() => cat.close());
  mapSource(cat, '/data', src);
  return { root, home, src, cat };
}

/**
 * Bring the catalogue in line with the source folder with the real `update` (hashing on this
 * thread); throws if it reported a problem.
 */
export async function catalogue(w: World): Promise<void> {
  const r = await runUpdate(w.cat, { jobs: 0 });
  if (r.errors.length > 0) throw new Error(`update: ${JSON.stringify(r.errors)}`);
}

/** Every object file on a disk: hash → whether its content hashes to its name. */
export function diskObjects(diskRoot: string): Map<string, boolean> {
  const out = new Map<string, boolean>();
  const objs = path.join(diskRoot, OBJECTS_DIR);
  if (!fs.existsSync(objs)) return out;
  for (const d of fs.readdirSync(objs)) {
    if (d.startsWith('.') || !fs.statSync(path.join(objs, d)).isDirectory()) continue;
    for (const f of fs.readdirSync(path.join(objs, d))) {
      if (!HASH_RE.test(f)) continue;
      const data = fs.readFileSync(path.join(objs, d, f));
      out.set(f, createHash('sha256').update(data).digest('hex') === f);
    }
  }
  return out;
}

/** Copies counted per object hash, over referenced objects. */
export function copiesPerObject(cat: Catalog): Map<string, number> {
  const rows = cat.db
    .prepare(
      `SELECT o.hash, (SELECT count(*) FROM copies c WHERE c.object_id = o.id) AS n
       FROM objects o WHERE EXISTS (SELECT 1 FROM files f WHERE f.object_id = o.id AND f.kind = 0)`,
    )
    .all() as { hash: string; n: number }[];
  return new Map(rows.map((r) => [r.hash, r.n]));
}

/** Hashes the catalogue counts on disk `name`. */
export function countedOn(cat: Catalog, name: string): Set<string> {
  const rows = cat.db
    .prepare(
      `SELECT o.hash FROM copies c JOIN objects o ON o.id = c.object_id JOIN disks d ON d.id = c.disk_id WHERE d.name = ?`,
    )
    .pluck()
    .all(name) as string[];
  return new Set(rows);
}
