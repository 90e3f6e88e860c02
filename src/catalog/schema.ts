/**
 * The home catalogue's schema, as an ordered list of migrations. `PRAGMA user_version` holds
 * the number of migrations applied; a catalogue newer than this build is refused, except for
 * reading when its `read_compat` allows it (READ_COMPAT).
 * Never edit a shipped migration: append a new one.
 */

/** File kinds stored in `files.kind`. */
export const FileKind = { file: 0, dir: 1, symlink: 2 } as const;
export type FileKindValue = (typeof FileKind)[keyof typeof FileKind];

/** Cap stored in `files.max_copies` when there is none (SQL `max()` then picks "no cap"). */
export const NO_CAP = 1_000_000;

/**
 * The oldest schema whose readers read a catalogue of this schema correctly, kept in `meta` as
 * `read_compat` by the migrations: a build that meets a newer catalogue still opens it read-only
 * (status, restore from a disk's copy) when its own schema is at least this, and refuses it
 * otherwise (ext4's read-only-compatible features work the same way). Migrations 2–6 only add
 * indexes, tables and columns that a reader may ignore, so 1 for now. Raise it to the new schema with
 * any migration that changes what an existing table or column means.
 */
export const READ_COMPAT = 1;

export const MIGRATIONS: readonly string[] = [
  // 1: the whole first schema.
  `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;

  -- A real folder mapped into the virtual tree (SPEC §1). realpath is bytes (names need not be UTF-8).
  CREATE TABLE sources (
    id              INTEGER PRIMARY KEY,
    vpath           TEXT NOT NULL UNIQUE,
    realpath        BLOB NOT NULL,
    include_json    TEXT NOT NULL DEFAULT '[]',
    exclude_json    TEXT NOT NULL DEFAULT '[]',
    follow_symlinks INTEGER NOT NULL DEFAULT 0,
    min_copies      INTEGER NOT NULL DEFAULT 1,
    created_ms      INTEGER NOT NULL
  ) STRICT;

  -- Settings per virtual folder, inherited below it (source set). JSON, validated by the code.
  CREATE TABLE path_settings (
    vpath         TEXT PRIMARY KEY,
    settings_json TEXT NOT NULL
  ) STRICT;

  -- One distinct content. hash = 64 lowercase hex of SHA-256; size in bytes.
  CREATE TABLE objects (
    id   INTEGER PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL
  ) STRICT;

  -- Every catalogued path. vpath and parent are bytes; mtime/ctime in ns (bind as BigInt);
  -- object_id NULL for a regular file = not hashed yet. priority/min_copies/max_copies are the
  -- effective path settings when the file was last scanned (max_copies NO_CAP = none).
  CREATE TABLE files (
    id          INTEGER PRIMARY KEY,
    vpath       BLOB NOT NULL UNIQUE,
    parent      BLOB NOT NULL,
    source_id   INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    kind        INTEGER NOT NULL,
    size        INTEGER NOT NULL DEFAULT 0,
    mtime_ns    INTEGER NOT NULL DEFAULT 0,
    ctime_ns    INTEGER NOT NULL DEFAULT 0,
    mode        INTEGER NOT NULL DEFAULT 0,
    uid         INTEGER NOT NULL DEFAULT 0,
    gid         INTEGER NOT NULL DEFAULT 0,
    dev         INTEGER NOT NULL DEFAULT 0,
    ino         INTEGER NOT NULL DEFAULT 0,
    link_target BLOB,
    object_id   INTEGER REFERENCES objects(id),
    priority    INTEGER NOT NULL DEFAULT 1,
    min_copies  INTEGER NOT NULL DEFAULT 1,
    max_copies  INTEGER NOT NULL DEFAULT ${NO_CAP}
  ) STRICT;
  CREATE INDEX files_parent ON files(parent);
  CREATE INDEX files_object ON files(object_id);
  CREATE INDEX files_source ON files(source_id);

  -- A registered backup disk. Times in ms since the epoch; size in bytes.
  CREATE TABLE disks (
    id             INTEGER PRIMARY KEY,
    uuid           TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL UNIQUE,
    size           INTEGER NOT NULL,
    created        TEXT NOT NULL,
    generation     INTEGER NOT NULL DEFAULT 0,
    mount_path     TEXT,
    mount_point    TEXT,
    rel_path       TEXT,
    fs_uuid        TEXT,
    fs_type        TEXT,
    last_seen_ms   INTEGER,
    last_sync_ms   INTEGER,
    last_verify_ms INTEGER,
    dropped_ms     INTEGER
  ) STRICT;

  -- (object, disk) pairs that count as copies: durable and not known bad.
  -- verified_ms: when verify last read it back and found the hash right (NULL = never).
  CREATE TABLE copies (
    object_id   INTEGER NOT NULL REFERENCES objects(id),
    disk_id     INTEGER NOT NULL REFERENCES disks(id) ON DELETE CASCADE,
    verified_ms INTEGER,
    PRIMARY KEY (object_id, disk_id)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX copies_disk ON copies(disk_id, object_id);
  `,
  // 2: files by inode, so that update reuses the hash of a renamed or hard-linked file
  // (device + inode + size + mtime) instead of reading it again.
  `CREATE INDEX files_ino ON files(ino);`,
  // 3: copies of a disk in least-recently-verified order, so verify's windows are index range
  // scans instead of a sort of every copy of the disk per window.
  `CREATE INDEX copies_verify ON copies(disk_id, verified_ms, object_id);`,
  // 4: a verify run that did not reach its end (Ctrl-C, SIGKILL, a failure) leaves its pass
  // open: the next run of that disk goes on with it, skipping the copies stamped at or after
  // run_stamp_ms, instead of reading them again. Deleted when a run ends normally.
  `CREATE TABLE verify_passes (
    disk_id      INTEGER PRIMARY KEY REFERENCES disks(id) ON DELETE CASCADE,
    run_stamp_ms INTEGER NOT NULL,
    started_ms   INTEGER NOT NULL
  ) STRICT;`,
  // 5: the signature of a folder whose catalogued rows equal its last scan (update/dir-sig.ts),
  // so a no-op update reads no row of an unchanged folder. Every write to a row of the folder,
  // by any command, deletes it: the triggers keep a stored signature true without the code
  // that writes `files` having to know of it. No foreign key on source_id: with one, each
  // trigger's DELETE cost ~1.6 µs a written row (the catalogue writer went from 275,000 to
  // 190,000 rows per CPU-second); without, the triggers cost under 5 %. Unmapping a source
  // deletes its signatures through a trigger of its own, and a new source (its id may be one
  // reused) starts with none. `INSERT OR REPLACE` fires the delete trigger of the row it
  // replaces only with `recursive_triggers`, which every home connection turns on (db.ts).
  `CREATE TABLE dir_sigs (
    parent    BLOB NOT NULL,
    source_id INTEGER NOT NULL,
    sig       BLOB NOT NULL,
    PRIMARY KEY (parent, source_id)
  ) STRICT, WITHOUT ROWID;
  CREATE TRIGGER sources_sig_delete AFTER DELETE ON sources BEGIN
    DELETE FROM dir_sigs WHERE source_id = OLD.id;
  END;
  CREATE TRIGGER sources_sig_insert AFTER INSERT ON sources BEGIN
    DELETE FROM dir_sigs WHERE source_id = NEW.id;
  END;
  CREATE TRIGGER files_sig_insert AFTER INSERT ON files BEGIN
    DELETE FROM dir_sigs WHERE parent = NEW.parent;
  END;
  CREATE TRIGGER files_sig_update AFTER UPDATE ON files BEGIN
    DELETE FROM dir_sigs WHERE parent = OLD.parent;
    DELETE FROM dir_sigs WHERE parent = NEW.parent;
  END;
  CREATE TRIGGER files_sig_delete AFTER DELETE ON files BEGIN
    DELETE FROM dir_sigs WHERE parent = OLD.parent;
  END;`,
  // 6: when a copy was written (ms; NULL = not known: an object found on the disk), so that a
  // copy never verified ages from its writing in status, not from the disk's last sync (which
  // every sync moves on, so such copies were never flagged). Copies never verified that are
  // already there take their disk's last sync: written then at the latest.
  `ALTER TABLE copies ADD COLUMN written_ms INTEGER;
  UPDATE copies SET written_ms = (SELECT d.last_sync_ms FROM disks d WHERE d.id = copies.disk_id)
  WHERE verified_ms IS NULL;`,
];
