/**
 * The `import-python` use-case: adopt a catalogue written by the Python distbackup (schema 31)
 * into a new home catalogue — mappings, path settings, files, symlinks, objects, disks and which
 * disk holds which object — so that its disks sync without copying anything again.
 *
 * The Python catalogue is untrusted input (python-catalogue.ts opens a private copy); every row
 * is validated, and a bad row is skipped with a warning, never half-imported. Everything is
 * written in one transaction: the home catalogue gets all of it or nothing.
 *
 * Hashes are trusted the way the Python tool trusted them: a file whose real size and mtime (to
 * the millisecond) still match its row gets its device, inode, ctime and mode from `lstat`, so
 * the next `update` sees it unchanged and does not read it. A file that cannot be checked
 * (source away, changed since) keeps its hash for the planner, with ctime 0 so that the next
 * update that can see it hashes it again.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type Database from 'better-sqlite3';
import type { Catalog, Db } from '../catalog/db.js';
import { insertDisk } from '../catalog/disks.js';
import { int64 } from '../catalog/files.js';
import { lockCatalogue } from '../catalog/lock.js';
import { FileKind, NO_CAP } from '../catalog/schema.js';
import { putPathSettingsJson } from '../catalog/settings.js';
import { insertSource, listSources, type SourceRow } from '../catalog/sources.js';
import { describeError, RefusedError } from '../core/errors.js';
import { normalizeVpath, printable, vpathContains, vpathParent } from '../core/vpath.js';
import { EMPTY_SHA256 } from '../pipeline/hash.js';
import { isEmptySettings, parsePathSettings, settingsToJson } from '../sources/path-settings.js';
import { loadSettingsMap, SettingsResolver } from '../sources/settings.js';
import { openPythonCatalogue, type PyFile, type PythonCatalogue } from './python-catalogue.js';

/** What `import-python --json` prints. */
export interface ImportResult {
  catalogue: string;
  schemaVersion: number;
  sources: number;
  settings: number;
  files: number;
  /** Files the Python tool had not hashed yet (`''`): the next update hashes them. */
  filesNotHashed: number;
  /** Files whose real size and mtime matched: the next update will not read them. */
  filesChecked: number;
  symlinks: number;
  folders: number;
  objects: number;
  disks: number;
  copies: number;
  /** Rows skipped or adjusted, one line each (the first 200). */
  warnings: string[];
  warningCount: number;
  dryRun: boolean;
}

const HASH_RE = /^[0-9a-f]{64}$/;
const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/;
const MAX_WARNINGS = 200;

/**
 * Import the Python catalogue `source` (a file or folder to open, or one already open, which the
 * caller closes) into `cat`, which must hold no mappings, files or disks yet (refused, exit 2,
 * otherwise); the source is opened and checked before that. Takes the home lock. With `dryRun`,
 * everything is checked and counted, then rolled back.
 */
export function importPython(
  cat: Catalog,
  source: string | PythonCatalogue,
  options: { dryRun?: boolean; onProgress?: (done: number, total: number) => void } = {},
): ImportResult {
  // The input first: a missing, unreadable or foreign file is named before the home is looked at.
  const py = typeof source === 'string' ? openPythonCatalogue(source) : source;
  try {
    // A dry-run catalogue (`-n`) is a private copy: no lock to take, no lock file to write.
    const lock = lockCatalogue(cat);
    try {
      const used = cat.db
        .prepare('SELECT (SELECT count(*) FROM sources) + (SELECT count(*) FROM files) + (SELECT count(*) FROM disks)')
        .pluck()
        .get() as number;
      if (used > 0) {
        throw new RefusedError(
          `${cat.file}: the home catalogue is not empty; import into a new data folder (-d DIR or $DISTBACKUP_PATH)`,
          { code: 'catalogue-not-empty', path: cat.file },
        );
      }
      const importer = new Importer(cat.db, py.file, py.schemaVersion, options.dryRun ?? false);
      const run = (): ImportResult => importer.run(py, options.onProgress);
      if (!options.dryRun) return cat.db.transaction(run).immediate();
      let result: ImportResult | undefined;
      const rollback = new Error('dry run');
      try {
        cat.db
          .transaction(() => {
            result = run();
            throw rollback;
          })
          .immediate();
      } catch (err) {
        if (err !== rollback) throw err;
      }
      return result as ImportResult;
    } finally {
      lock.release();
    }
  } finally {
    if (typeof source === 'string') py.close();
  }
}

class Importer {
  private readonly r: ImportResult;
  private sources: SourceRow[] = [];
  private resolver: SettingsResolver | undefined;
  /** Folders written so far (one string per folder: bounded by the folder count, not the file count). */
  private readonly folders = new Set<string>();
  private readonly insDir;
  private readonly kindAt;

  constructor(
    private readonly db: Db,
    file: string,
    schemaVersion: number,
    dryRun: boolean,
  ) {
    this.insDir = db.prepare(
      `INSERT OR IGNORE INTO files (vpath, parent, source_id, kind, mode) VALUES (?, ?, ?, ${FileKind.dir}, ${0o755})`,
    );
    this.kindAt = db.prepare('SELECT kind FROM files WHERE vpath = ?').pluck();
    this.r = {
      catalogue: file,
      schemaVersion,
      sources: 0,
      settings: 0,
      files: 0,
      filesNotHashed: 0,
      filesChecked: 0,
      symlinks: 0,
      folders: 0,
      objects: 0,
      disks: 0,
      copies: 0,
      warnings: [],
      warningCount: 0,
      dryRun,
    };
  }

  private warn(line: string): void {
    this.r.warningCount += 1;
    if (this.r.warnings.length < MAX_WARNINGS) this.r.warnings.push(printable(line));
  }

  run(py: ReturnType<typeof openPythonCatalogue>, onProgress?: (done: number, total: number) => void): ImportResult {
    this.importSources(py.pathMaps());
    this.importSettings(py.pathConfigs());
    this.sources = listSources(this.db);
    this.resolver = new SettingsResolver(loadSettingsMap(this.db), this.sources);
    const diskByIndex = this.importDisks(py.disks());
    this.importObjects(py.objects(), diskByIndex);
    const total = py.count('file_tree') + py.count('symbolic_link');
    let done = 0;
    const insFile = this.db.prepare(
      `INSERT INTO files (vpath, parent, source_id, kind, size, mtime_ns, ctime_ns, mode, uid, gid, dev, ino,
                          link_target, object_id, priority, min_copies, max_copies)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const objId = this.db.prepare('SELECT id FROM objects WHERE hash = ?').pluck();
    const insObj = this.db.prepare('INSERT INTO objects (hash, size) VALUES (?, ?)');
    for (const row of py.files()) {
      this.importFile(row, insFile, objId, insObj);
      if (++done % 10_000 === 0) onProgress?.(done, total);
    }
    for (const row of py.links()) {
      const where = this.place(row.virtual_path, 'symbolic_link');
      if (where === undefined) continue;
      if (typeof row.target !== 'string' || row.target === '' || row.target.includes('\0')) {
        this.warn(`symbolic_link ${where.vpath}: bad target, skipped`);
        continue;
      }
      if (!this.free(where.vpath, where.source, 'symbolic_link')) continue;
      this.ensureFolders(where.vpath, where.source);
      insFile.run(
        Buffer.from(where.vpath),
        vpathParent(Buffer.from(where.vpath)),
        where.source.id,
        FileKind.symlink,
        0,
        0n,
        0n,
        0o777,
        0,
        0,
        0n,
        0n,
        Buffer.from(row.target),
        null,
        1,
        1,
        NO_CAP,
      );
      this.r.symlinks += 1;
      if (++done % 10_000 === 0) onProgress?.(done, total);
    }
    this.settleObjectSizes();
    onProgress?.(done, total);
    return this.r;
  }

  /**
   * Objects the Python catalogue gave no size (NULL read as 0) take the size of a file that
   * holds them; one that no file holds keeps no copies and goes. An object listed at the wrong
   * size would make the first sync of each disk call its real copies damaged (reconcile compares
   * sizes) and move them to quarantine.
   */
  private settleObjectSizes(): void {
    this.db
      .prepare(
        `UPDATE objects SET size = (SELECT f.size FROM files f WHERE f.object_id = objects.id LIMIT 1)
         WHERE size = 0 AND hash != ? AND EXISTS (SELECT 1 FROM files f WHERE f.object_id = objects.id)`,
      )
      .run(EMPTY_SHA256);
    const unknown = this.db.prepare('SELECT id, hash FROM objects WHERE size = 0 AND hash != ?').all(EMPTY_SHA256) as {
      id: number;
      hash: string;
    }[];
    for (const o of unknown) {
      this.warn(`object ${o.hash}: no size recorded and no file holds it; its copies are not counted`);
      this.r.copies -= this.db.prepare('DELETE FROM copies WHERE object_id = ?').run(o.id).changes;
      this.db.prepare('DELETE FROM objects WHERE id = ?').run(o.id);
      this.r.objects -= 1;
    }
  }

  private importSources(rows: ReturnType<ReturnType<typeof openPythonCatalogue>['pathMaps']>): void {
    const seen = new Set<string>();
    for (const row of rows) {
      const vpath = this.vpath(row.virtual_path, 'path_map');
      if (vpath === undefined) continue;
      if (typeof row.real_path !== 'string' || row.real_path === '' || row.real_path.includes('\0')) {
        this.warn(`path_map ${vpath}: bad real path, skipped`);
        continue;
      }
      if (seen.has(vpath)) {
        this.warn(`path_map ${vpath}: mapped twice, the first kept`);
        continue;
      }
      seen.add(vpath);
      if (!path.isAbsolute(row.real_path)) this.warn(`path_map ${vpath}: real path '${row.real_path}' is not absolute`);
      insertSource(this.db, {
        vpath,
        realpath: Buffer.from(row.real_path),
        include: [],
        exclude: [],
        followSymlinks: false,
        minCopies: 1,
      });
      this.r.sources += 1;
    }
  }

  private importSettings(rows: ReturnType<ReturnType<typeof openPythonCatalogue>['pathConfigs']>): void {
    for (const row of rows) {
      const vpath = this.vpath(row.virtual_path, 'path_config');
      if (vpath === undefined) continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(String(row.config));
      } catch {
        this.warn(`path_config ${vpath}: not JSON, skipped`);
        continue;
      }
      try {
        const s = parsePathSettings(parsed, `path_config ${vpath}`);
        if (isEmptySettings(s)) continue;
        putPathSettingsJson(this.db, vpath, settingsToJson(s));
        this.r.settings += 1;
      } catch (err) {
        this.warn(`${(err as Error).message}; skipped`);
      }
    }
  }

  private importDisks(rows: ReturnType<ReturnType<typeof openPythonCatalogue>['disks']>): Map<number, number> {
    const byIndex = new Map<number, number>();
    const names = new Set<string>();
    for (const row of rows) {
      if (row.name === null) continue; // a deleted disk: its index is free for reuse
      const idx = row.nexus_index;
      const uuidText = typeof row.uuid === 'string' ? row.uuid.toLowerCase() : '';
      if (typeof row.name !== 'string' || row.name === '' || /[\0/\n]/.test(row.name) || names.has(row.name)) {
        this.warn(`disk ${String(row.uuid)}: bad or repeated name, skipped`);
        continue;
      }
      if (!UUID_RE.test(uuidText)) {
        this.warn(`disk ${row.name}: bad uuid, skipped`);
        continue;
      }
      if (typeof idx !== 'number' || !Number.isInteger(idx) || idx < 0 || idx > 100_000 || byIndex.has(idx)) {
        this.warn(`disk ${row.name}: bad nexus_index, skipped`);
        continue;
      }
      let size = typeof row.size === 'number' && Number.isInteger(row.size) && row.size >= 0 ? row.size : 0;
      if (size === 0)
        this.warn(`disk ${row.name}: no size recorded; set one with 'distbackup disk set ${row.name} --size SIZE'`);
      size = Math.min(size, Number.MAX_SAFE_INTEGER);
      const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' && !v.includes('\0') ? v : null);
      const hex = uuidText.replace(/-/g, '');
      const uuid = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
      const id = insertDisk(this.db, {
        uuid,
        name: row.name,
        size,
        created: new Date().toISOString(),
        generation: 0,
        mountPath: null,
        mountPoint: null,
        relPath: str(row.relative_path),
        fsUuid: str(row.fsuuid),
        fsType: str(row.fstype),
        lastSeenMs: null,
        lastSyncMs: null,
        lastVerifyMs: null,
        droppedMs: null,
      });
      names.add(row.name);
      byIndex.set(idx, id);
      this.r.disks += 1;
    }
    return byIndex;
  }

  private importObjects(
    rows: ReturnType<ReturnType<typeof openPythonCatalogue>['objects']>,
    diskByIndex: Map<number, number>,
  ): void {
    const insObj = this.db.prepare('INSERT OR IGNORE INTO objects (hash, size) VALUES (?, ?)');
    const insCopy = this.db.prepare(
      'INSERT OR IGNORE INTO copies (object_id, disk_id, verified_ms) VALUES (?, ?, NULL)',
    );
    for (const row of rows) {
      const hash = typeof row.hash === 'string' ? row.hash.toLowerCase() : '';
      if (!HASH_RE.test(hash)) {
        this.warn(`object ${printable(String(row.hash)).slice(0, 80)}: not a SHA-256, skipped`);
        continue;
      }
      const size = row.size === null ? 0 : row.size;
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
        this.warn(`object ${hash}: bad size, skipped`);
        continue;
      }
      const info = insObj.run(hash, size);
      if (info.changes === 0) continue;
      const id = Number(info.lastInsertRowid);
      this.r.objects += 1;
      const nexus = typeof row.nexus === 'string' ? row.nexus : '';
      if (!/^[01]*$/.test(nexus)) {
        this.warn(`object ${hash}: bad nexus '${nexus.slice(0, 40)}', no copies counted`);
        continue;
      }
      for (let i = nexus.indexOf('1'); i >= 0; i = nexus.indexOf('1', i + 1)) {
        const disk = diskByIndex.get(i);
        if (disk === undefined) continue; // a deleted disk's leftover bit
        insCopy.run(id, disk);
        this.r.copies += 1;
      }
    }
  }

  private importFile(
    row: PyFile,
    insFile: Database.Statement,
    objId: Database.Statement,
    insObj: Database.Statement,
  ): void {
    const where = this.place(row.virtual_path, 'file_tree');
    if (where === undefined) return;
    const { vpath, source } = where;
    const size = row.size === null ? 0 : row.size;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      this.warn(`file_tree ${vpath}: bad size, skipped`);
      return;
    }
    if (!this.free(vpath, source, 'file_tree')) return;
    const mtimeMs =
      typeof row.last_modified === 'number' && Number.isSafeInteger(row.last_modified) ? row.last_modified : 0;
    let objectId: number | null = null;
    // No hash: not hashed yet, unless the file is empty (the Python distbackup stored no hash
    // for the empty file); never the empty object for a file of some bytes.
    if (row.hash === '' || (row.hash === null && size > 0)) {
      this.r.filesNotHashed += 1;
    } else {
      const hash = row.hash === null ? EMPTY_SHA256 : typeof row.hash === 'string' ? row.hash.toLowerCase() : '';
      if (!HASH_RE.test(hash)) {
        this.warn(`file_tree ${vpath}: bad hash, imported as not hashed yet`);
        this.r.filesNotHashed += 1;
      } else {
        const known = objId.get(hash) as number | undefined;
        if (known !== undefined) objectId = known;
        else {
          objectId = Number(insObj.run(hash, row.hash === null ? 0 : size).lastInsertRowid);
          this.r.objects += 1;
        }
      }
    }
    const priority =
      typeof row.priority === 'number' && Number.isInteger(row.priority) && row.priority >= 0 ? row.priority : 1;
    const maxCopies =
      typeof row.maxcopies === 'number' && Number.isInteger(row.maxcopies) && row.maxcopies >= 0
        ? Math.min(row.maxcopies, NO_CAP)
        : NO_CAP;
    const minCopies = this.resolver?.file(vpath).minCopies ?? 1;
    // Check the real file: same size and mtime (ms) = the Python hash still holds.
    let mtimeNs = BigInt(mtimeMs) * 1_000_000n;
    let ctimeNs = 0n;
    let mode = 0o644;
    let uid = 0;
    let gid = 0;
    let dev = 0n;
    let ino = typeof row.ino === 'number' && Number.isSafeInteger(row.ino) ? BigInt(row.ino) : 0n;
    const real = Buffer.concat([
      source.realpath,
      Buffer.from(vpath.slice(source.vpath === '/' ? 0 : source.vpath.length)),
    ]);
    try {
      const st = fs.lstatSync(real, { bigint: true });
      if (st.isFile() && Number(st.size) === size && absDiff(st.mtimeNs / 1_000_000n, BigInt(mtimeMs)) <= 1n) {
        mtimeNs = st.mtimeNs;
        ctimeNs = objectId === null ? 0n : st.ctimeNs;
        mode = Number(st.mode & 0o7777n);
        uid = Number(st.uid);
        gid = Number(st.gid);
        dev = int64(st.dev);
        ino = int64(st.ino);
        if (objectId !== null) this.r.filesChecked += 1;
      }
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT' && (err as { code?: string }).code !== 'ENOTDIR') {
        this.warn(`${real.toString()}: ${describeError(err)}`);
      }
    }
    this.ensureFolders(vpath, source);
    const vbytes = Buffer.from(vpath);
    insFile.run(
      vbytes,
      vpathParent(vbytes),
      source.id,
      FileKind.file,
      size,
      mtimeNs,
      ctimeNs,
      mode,
      uid,
      gid,
      dev,
      int64(ino),
      null,
      objectId,
      priority,
      minCopies,
      maxCopies,
    );
    this.r.files += 1;
  }

  /**
   * Whether `vpath` can take a file or link row: no row holds the path yet (two rows that
   * normalise to one path, a file where another row's folder is), and no file or link holds one
   * of its folders. Warns and skips the row when not: one bad row never stops the import.
   */
  private free(vpath: string, source: SourceRow, table: string): boolean {
    if (this.folders.has(vpath) || this.kindAt.get(Buffer.from(vpath)) !== undefined) {
      this.warn(`${table} ${vpath}: the path has a row already, skipped`);
      return false;
    }
    for (
      let dir = vpath.slice(0, vpath.lastIndexOf('/'));
      dir.length > source.vpath.length && !this.folders.has(dir);
      dir = dir.slice(0, dir.lastIndexOf('/'))
    ) {
      const kind = this.kindAt.get(Buffer.from(dir));
      if (kind !== undefined && kind !== FileKind.dir) {
        this.warn(`${table} ${vpath}: ${dir} is a file or link in the catalogue, skipped`);
        return false;
      }
    }
    return true;
  }

  /** Folder rows for every folder between the mapping root and `vpath` (update fills their stats). */
  private ensureFolders(vpath: string, source: SourceRow): void {
    const chain: string[] = [];
    for (
      let dir = vpath.slice(0, vpath.lastIndexOf('/'));
      dir.length > source.vpath.length && !this.folders.has(dir);
    ) {
      chain.push(dir);
      dir = dir.slice(0, dir.lastIndexOf('/'));
    }
    for (const d of chain.reverse()) {
      const b = Buffer.from(d);
      if (this.insDir.run(b, vpathParent(b), source.id).changes > 0) this.r.folders += 1;
      this.folders.add(d);
    }
  }

  /** Validate a Python virtual path and find the mapping that owns it (the deepest one). */
  private place(value: unknown, table: string): { vpath: string; source: SourceRow } | undefined {
    const vpath = this.vpath(value, table);
    if (vpath === undefined) return undefined;
    let best: SourceRow | undefined;
    for (const s of this.sources) {
      if (
        s.vpath !== vpath &&
        vpathContains(s.vpath, vpath) &&
        (best === undefined || s.vpath.length > best.vpath.length)
      ) {
        best = s;
      }
    }
    if (best === undefined) {
      this.warn(`${table} ${vpath}: not under any mapped folder, skipped`);
      return undefined;
    }
    return { vpath, source: best };
  }

  private vpath(value: unknown, table: string): string | undefined {
    if (typeof value !== 'string' || value === '') {
      this.warn(`${table}: a row without a virtual path, skipped`);
      return undefined;
    }
    try {
      return normalizeVpath(value.startsWith('/') ? value : `/${value}`);
    } catch (err) {
      this.warn(`${table} ${value}: ${(err as Error).message}, skipped`);
      return undefined;
    }
  }
}

function absDiff(a: bigint, b: bigint): bigint {
  return a > b ? a - b : b - a;
}
