import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type TestContext, test } from 'node:test';
import { openCatalog } from '../../src/catalog/db.js';
import { getDiskByName } from '../../src/catalog/disks.js';
import { percentDecode } from '../../src/core/vpath.js';
import { fsReader, type ObjectReader } from '../../src/disk/check-object.js';
import { objectPath, quarantineDir } from '../../src/disk/layout.js';
import { lockDisk } from '../../src/disks/open.js';
import { runStatus } from '../../src/status/status.js';
import { runVerify } from '../../src/verify/verify.js';
import { addPoolDisk, catalogueSource, makeSourceTree, putObjects } from '../helpers/pool.js';
import { tempDir } from '../helpers/tmp.js';
import { bigOnes, damage, stamps } from '../helpers/verify.js';

function setup(t: TestContext, files = 12) {
  const base = tempDir(t);
  const src = path.join(base, 'src');
  fs.mkdirSync(src);
  makeSourceTree(src, { files });
  const cat = openCatalog(path.join(base, 'home'));
  t.after(() => cat.close());
  const c = catalogueSource(cat, '/data', src);
  const disk = path.join(base, 'd1');
  addPoolDisk(cat, 'd1', disk);
  const hashes = putObjects(cat, c, 'd1');
  return { base, cat, disk, hashes };
}

test('verify finds a flipped byte, a truncated object and a missing one; they stop counting and are kept in quarantine', async (t) => {
  const { cat, disk, hashes } = setup(t);
  const [flipped, truncated, missing] = damage(disk, hashes);
  const fp = objectPath(disk, flipped);
  const before = runStatus(cat).histogram[0]?.objects;
  const doc = await runVerify(cat, { name: 'd1' });
  assert.equal(doc.checked, hashes.length);
  assert.deepEqual([...doc.bad].sort(), [flipped, truncated].sort());
  assert.deepEqual(doc.missing, [missing]);
  assert.match(doc.badDetails.find((b) => b.hash === truncated)?.problem ?? '', /10 bytes instead of/);
  assert.match(doc.badDetails.find((b) => b.hash === flipped)?.problem ?? '', /hashes to/);
  // Kept, never deleted: the damaged bytes sit in quarantine.
  const q = fs.readdirSync(quarantineDir(disk));
  assert.equal(q.length, 2);
  assert.ok(q.some((n) => n.startsWith(flipped)));
  assert.ok(!fs.existsSync(fp));
  const s = stamps(cat);
  for (const h of [flipped, truncated, missing]) assert.ok(!s.has(h), `${h} no longer counted`);
  for (const [h, v] of s) assert.ok(v !== null, `${h} stamped`);
  assert.equal(runStatus(cat).histogram[0]?.objects, (before ?? 0) + 3);
  assert.ok(getDiskByName(cat.db, 'd1')?.lastVerifyMs !== null);
  // A second verify finds nothing more.
  const again = await runVerify(cat, { name: 'd1' });
  assert.deepEqual(again.bad, []);
  assert.deepEqual(again.missing, []);
});

test('a read that is wrong once and right the second time is "ok on second read" and kept; wrong twice is bad', async (t) => {
  const { cat, disk, hashes } = setup(t, 4);
  const [glitchy, rotten] = bigOnes(disk, hashes) as [string, string];
  const reads = new Map<number, string>();
  const seen = new Map<string, number>();
  // A reader that wraps the real one and flips a bit: of glitchy on its first read only, of
  // rotten on every read (restic's errorOnceBackend versus a rotten sector).
  const faulty: ObjectReader = {
    open: (p) => {
      const o = fsReader.open(p);
      reads.set(o.fd, path.basename(p));
      return o;
    },
    read: (fd, buf, pos) => {
      const n = fsReader.read(fd, buf, pos);
      const h = reads.get(fd) ?? '';
      const count = seen.get(h) ?? 0;
      if (pos === 0 && n > 0 && ((h === glitchy && count === 0) || h === rotten)) buf[0] = (buf[0] ?? 0) ^ 0x80;
      if (pos === 0) seen.set(h, count + 1);
      return n;
    },
    close: (fd) => {
      reads.delete(fd);
      fsReader.close(fd);
    },
  };
  const doc = await runVerify(cat, { name: 'd1', reader: faulty });
  assert.deepEqual(doc.okOnSecondRead, [glitchy]);
  assert.deepEqual(doc.bad, [rotten]);
  assert.equal(seen.get(rotten), 2, 'read twice before being called bad');
  assert.ok(stamps(cat).has(glitchy), 'the glitchy copy still counts');
  assert.ok(fs.existsSync(objectPath(disk, glitchy)));
});

test('repeated --percent runs cover every object before any is checked again, least recently verified first', async (t) => {
  const { cat, hashes } = setup(t, 37);
  // The real clock: the copies were written just before (a clock behind their writing would let
  // the stamped ones take turns beside them).
  let clock = Date.now();
  const now = (): number => clock;
  const runs: string[][] = [];
  let prev = stamps(cat);
  for (let i = 0; i < 13; i++) {
    clock += 60_000;
    const doc = await runVerify(cat, { name: 'd1', percent: 10, now });
    assert.deepEqual(doc.bad, []);
    const cur = stamps(cat);
    runs.push([...cur].filter(([h, v]) => v !== prev.get(h)).map(([h]) => h));
    prev = cur;
  }
  const total = hashes.length;
  const per = Math.ceil(total / 10);
  for (const r of runs) assert.equal(r.length, per);
  // Any stretch of runs that checks at most `total` objects checks no object twice, and any
  // stretch long enough covers every object: nothing is re-read before everything was read.
  const span = Math.floor(total / per);
  for (let i = 0; i + span <= runs.length; i++) {
    const part = runs.slice(i, i + span).flat();
    assert.equal(new Set(part).size, part.length, `runs ${i}..${i + span - 1} overlap`);
  }
  const cover = Math.ceil(total / per);
  for (let i = 0; i + cover <= runs.length; i++) {
    assert.equal(new Set(runs.slice(i, i + cover).flat()).size, total, `runs ${i}..${i + cover - 1} cover all`);
  }
});

test('partial runs reach the stamped copies although new, never verified copies keep coming between them', async (t) => {
  const { base, cat, hashes } = setup(t, 20);
  // Verified ten days ago; the new copies below are written now.
  let clock = Date.now() - 10 * 86_400_000;
  const now = (): number => clock;
  await runVerify(cat, { name: 'd1', now });
  const old = new Set(stamps(cat).keys());
  const firstStamp = new Map(stamps(cat));
  const budget = Math.ceil(((hashes.length + 12) * 10) / 100);
  // Each round, a sync brings more new copies than a run's budget, then a partial run.
  for (let round = 0; round < 4; round++) {
    clock += 60_000;
    const dir = path.join(base, `new${round}`);
    fs.mkdirSync(dir);
    for (let i = 0; i < budget + 2; i++) fs.writeFileSync(path.join(dir, `f${i}`), `round ${round} file ${i}`);
    putObjects(cat, catalogueSource(cat, `/new${round}`, dir), 'd1');
    await runVerify(cat, { name: 'd1', now, percent: 10 });
  }
  const reached = [...old].filter((h) => stamps(cat).get(h) !== firstStamp.get(h));
  assert.ok(reached.length > 0, 'some copies verified before the new ones came were verified again');
});

test('--max-time stops and the next run goes on from there; --older-than skips recent copies; a clock that jumps back starves nothing', async (t) => {
  const { cat, hashes } = setup(t, 20);
  let clock = Date.UTC(2028, 0, 1);
  // Every clock read advances one second: a 5 s budget checks a handful of objects.
  const now = (): number => {
    clock += 1000;
    return clock;
  };
  const covered = new Set<string>();
  for (let i = 0; i < 50 && covered.size < hashes.length; i++) {
    const doc = await runVerify(cat, { name: 'd1', maxTimeMs: 5000, now });
    assert.ok(doc.checked > 0 && doc.checked < hashes.length);
    for (const [h, v] of stamps(cat)) if (v !== null) covered.add(h);
  }
  assert.equal(covered.size, hashes.length);
  const recent = await runVerify(cat, { name: 'd1', olderThanMs: 30 * 86_400_000, now });
  assert.equal(recent.checked, 0);
  // Clock jumps back a year: the stamps, now a year ahead, are moved back by as much (in their
  // order), and the new stamps still sort after the old ones.
  clock -= 365 * 86_400_000;
  const before = stamps(cat);
  await runVerify(cat, { name: 'd1', percent: 50, now });
  const after = stamps(cat);
  // The copies not checked moved back by one and the same shift; the ones checked did not.
  const moved = [...after].map(([h, v]) => [h, (before.get(h) ?? 0) - (v ?? 0)] as const);
  const shift = Math.max(...moved.map(([, d]) => d));
  assert.ok(shift > 360 * 86_400_000, `moved back by about a year, not ${shift} ms`);
  const changed = moved.filter(([, d]) => d !== shift).map(([h]) => [h, after.get(h)] as const);
  const rest = moved.filter(([, d]) => d === shift).map(([h]) => after.get(h) ?? 0);
  assert.equal(changed.length, Math.ceil(hashes.length / 2), 'half of the copies checked');
  const maxRest = Math.max(...rest);
  assert.ok(maxRest <= clock, 'no stamp is left ahead of the clock');
  for (const [, v] of changed) assert.ok((v ?? 0) > maxRest, 'stamps stay monotonic');
  await runVerify(cat, { name: 'd1', percent: 50, now });
  const third = stamps(cat);
  const again = [...third].filter(([h, v]) => v !== after.get(h)).map(([h]) => h);
  assert.equal(new Set([...changed.map(([h]) => h), ...again]).size, hashes.length, 'the other half comes next');
});

test('the next sync heals what verify found bad or missing', async (t) => {
  const { runSync } = await import('../../src/sync/sync.js');
  const base = tempDir(t);
  const src = path.join(base, 'src');
  fs.mkdirSync(src);
  makeSourceTree(src, { files: 6 });
  const cat = openCatalog(path.join(base, 'home'));
  t.after(() => cat.close());
  catalogueSource(cat, '/data', src);
  const disk = path.join(base, 'd1');
  addPoolDisk(cat, 'd1', disk);
  const first = await runSync(cat, { name: 'd1' });
  assert.ok(first.copied > 0);
  const hashes = [...stamps(cat).keys()];
  damage(disk, hashes);
  const doc = await runVerify(cat, { name: 'd1' });
  assert.equal(doc.bad.length + doc.missing.length, 3);
  assert.equal(runStatus(cat).minCopies, 0);
  const heal = await runSync(cat, { name: 'd1' });
  assert.equal(heal.copied, 3);
  assert.equal(runStatus(cat).minCopies, 1);
  const clean = await runVerify(cat, { name: 'd1' });
  assert.deepEqual(clean.bad, []);
  assert.deepEqual(clean.missing, []);
  assert.equal(fs.readdirSync(quarantineDir(disk)).length, 2, 'the damaged bytes stay in quarantine');
});

test('after verify finds damage, the catalogue copy on the disk no longer claims the object', async (t) => {
  const { openUntrustedCatalogue } = await import('../../src/catalog/db.js');
  const { cat, disk, hashes } = setup(t, 3);
  const [victim] = bigOnes(disk, hashes) as [string];
  fs.rmSync(objectPath(disk, victim));
  await runVerify(cat, { name: 'd1' });
  const copy = openUntrustedCatalogue(path.join(disk, 'distbackup.sqlite'));
  try {
    const n = copy.db
      .prepare('SELECT count(*) FROM copies c JOIN objects o ON o.id = c.object_id WHERE o.hash = ?')
      .pluck()
      .get(victim);
    assert.equal(n, 0);
  } finally {
    copy.close();
  }
  assert.doesNotMatch(fs.readFileSync(path.join(disk, 'distbackup-manifest.txt'), 'utf8'), new RegExp(victim));
});

test('an object that cannot be read (EIO) is bad, never missing', async (t) => {
  const { cat, disk, hashes } = setup(t, 3);
  const [victim] = bigOnes(disk, hashes) as [string];
  const names = new Map<number, string>();
  // The real reader, except that reading the victim fails as a dying sector would.
  const eio: ObjectReader = {
    open: (p) => {
      const o = fsReader.open(p);
      names.set(o.fd, path.basename(p));
      return o;
    },
    read: (fd, buf, pos) => {
      if (names.get(fd) === victim) throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
      return fsReader.read(fd, buf, pos);
    },
    close: (fd) => {
      names.delete(fd);
      fsReader.close(fd);
    },
  };
  const doc = await runVerify(cat, { name: 'd1', reader: eio });
  assert.deepEqual(doc.missing, []);
  assert.deepEqual(doc.bad, [victim]);
  assert.match(doc.badDetails[0]?.problem ?? '', /unreadable: EIO/);
});

test('a copy that cannot be opened or read for a reason of this machine (EMFILE, EACCES) is not judged: still counted, not stamped, not moved', async (t) => {
  const { cat, disk, hashes } = setup(t, 24);
  assert.ok(hashes.length > 16);
  const [noFd, noAccess] = hashes as [string, string];
  const fail = (code: string) => Object.assign(new Error(`${code}: failed`), { code });
  const names = new Map<number, string>();
  const reader: ObjectReader = {
    open: (p) => {
      if (path.basename(p) === noFd) throw fail('EMFILE');
      const o = fsReader.open(p);
      names.set(o.fd, path.basename(p));
      return o;
    },
    read: (fd, buf, pos) => {
      if (names.get(fd) === noAccess) throw fail('EACCES');
      return fsReader.read(fd, buf, pos);
    },
    close: (fd) => {
      names.delete(fd);
      fsReader.close(fd);
    },
  };
  const doc = await runVerify(cat, { name: 'd1', reader });
  assert.deepEqual(doc.bad, []);
  assert.deepEqual(doc.missing, []);
  assert.deepEqual(doc.unreadable.map((u) => u.hash).sort(), [noFd, noAccess].sort());
  assert.equal(doc.checked, hashes.length - 2);
  const s = stamps(cat);
  assert.equal(s.get(noFd), null, 'still counted, not stamped');
  assert.equal(s.get(noAccess), null, 'still counted, not stamped');
  assert.ok(fs.existsSync(objectPath(disk, noFd)) && fs.existsSync(objectPath(disk, noAccess)));
  assert.equal(fs.existsSync(quarantineDir(disk)) ? fs.readdirSync(quarantineDir(disk)).length : 0, 0);
  // A socket in place of an object fails to open with ENXIO, an error of the local kind, but it
  // is no object: bad, whatever the error.
  const socketHash = hashes[2] as string;
  fs.rmSync(objectPath(disk, socketHash));
  // (Bound from its folder: a socket's path is limited to 108 bytes.)
  const py = spawnSync(
    'python3',
    ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', socketHash],
    {
      cwd: path.dirname(objectPath(disk, socketHash)),
    },
  );
  assert.equal(py.status, 0, String(py.stderr));
  const sock = await runVerify(cat, { name: 'd1' });
  assert.deepEqual(sock.unreadable, []);
  assert.deepEqual(sock.bad, [socketHash]);
  // Every open failing: the run stops after a few in a row, having judged none.
  const many = await runVerify(cat, {
    name: 'd1',
    reader: {
      ...fsReader,
      open: () => {
        throw fail('ENFILE');
      },
    },
  });
  assert.equal(many.stoppedBy, 'unreadable');
  assert.equal(many.checked, 0);
  assert.ok(many.unreadable.length < hashes.length, 'stopped before the end');
  assert.equal(stamps(cat).size, hashes.length - 1, 'every copy still counted but the socket');
});

test('an object longer than catalogued is bad from its length, without reading it to its end', async (t) => {
  const { cat, disk, hashes } = setup(t, 3);
  const [grown] = hashes as [string];
  fs.appendFileSync(objectPath(disk, grown), Buffer.alloc(4 << 20));
  let reads = 0;
  const reader: ObjectReader = {
    ...fsReader,
    read: (fd, buf, pos) => {
      reads += 1;
      return fsReader.read(fd, buf, pos);
    },
  };
  const doc = await runVerify(cat, { name: 'd1', reader });
  assert.deepEqual(doc.bad, [grown]);
  assert.match(doc.badDetails[0]?.problem ?? '', /bytes instead of .* \(truncated or grown\)/);
  assert.ok(reads <= (hashes.length - 1) * 2, `${reads} reads: the grown object was not read`);
});

/** Flip a byte of the biggest object, truncate the next, delete the third; returns their hashes. */
test('--errors writes one TSV line per bad or missing object after a header, with a file that has the content', async (t) => {
  const { base, cat, disk, hashes } = setup(t);
  const [flipped, truncated, missing] = damage(disk, hashes);
  const file = path.join(base, 'errors.tsv');
  fs.writeFileSync(file, 'an old list that must not survive\n');
  const doc = await runVerify(cat, { name: 'd1', errorsFile: file });
  assert.equal(doc.errorsFile, file);
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  assert.equal(lines.pop(), '', 'ends with a newline');
  assert.equal(lines[0], 'disk\tobject\tsize\tpath\tproblem');
  const rows = new Map(
    lines
      .slice(1)
      .map((l) => l.split('\t'))
      .map((f) => [path.basename(f[1] ?? ''), f]),
  );
  assert.deepEqual([...rows.keys()].sort(), [flipped, truncated, missing].sort());
  for (const [h, f] of rows) {
    assert.equal(f.length, 5);
    assert.equal(f[0], 'd1');
    assert.equal(f[1], `distbackup-objects/${h.slice(0, 3)}/${h}`);
    const row = cat.db.prepare('SELECT id, size FROM objects WHERE hash = ?').get(h) as { id: number; size: number };
    assert.equal(f[2], String(row.size));
    // The path names a catalogued file whose content is this object.
    const owner = cat.db
      .prepare('SELECT object_id FROM files WHERE vpath = ?')
      .pluck()
      .get(percentDecode(f[3] ?? ''));
    assert.equal(owner, row.id);
  }
  assert.match(
    rows.get(flipped)?.[4] ?? '',
    /^BAD \(content hashes to [0-9a-f]{64}\); moved to distbackup-objects\/\.quarantine\//,
  );
  assert.match(rows.get(truncated)?.[4] ?? '', /10 bytes instead of/);
  assert.match(rows.get(missing)?.[4] ?? '', /^missing; no longer counted as a copy$/);
  // No temp file left beside it; a clean run leaves the header alone.
  assert.deepEqual(
    fs.readdirSync(base).filter((n) => n.includes('errors')),
    ['errors.tsv'],
  );
  await runVerify(cat, { name: 'd1', errorsFile: file });
  assert.equal(fs.readFileSync(file, 'utf8'), 'disk\tobject\tsize\tpath\tproblem\n');
});

test('a dry run on a read-only catalogue checks everything, says what it would do, and changes nothing', async (t) => {
  const { base, cat, disk, hashes } = setup(t);
  const [flipped, truncated, missing] = damage(disk, hashes);
  const before = stamps(cat);
  const ro = openCatalog(path.join(base, 'home'), { readonly: true });
  t.after(() => ro.close());
  const notes: string[] = [];
  const progress = { update: () => {}, setTotals: () => {}, note: (l: string) => notes.push(l), stop: () => {} };
  const file = path.join(base, 'would.tsv');
  const doc = await runVerify(ro, { name: 'd1', dryRun: true, errorsFile: file, progress });
  assert.equal(doc.dryRun, true);
  assert.equal(doc.checked, hashes.length);
  assert.deepEqual([...doc.bad].sort(), [flipped, truncated].sort());
  assert.deepEqual(doc.missing, [missing]);
  for (const b of doc.badDetails) assert.equal(b.quarantinedTo, null);
  assert.equal(doc.remaining, 0);
  assert.ok(notes.some((n) => n.includes(`${flipped}: BAD`) && n.includes('would be moved to quarantine')));
  assert.ok(!notes.some((n) => /another distbackup run holds/.test(n)));
  assert.match(fs.readFileSync(file, 'utf8'), /would no longer count as a copy/);
  // Nothing recorded, nothing moved.
  assert.deepEqual(stamps(cat), before);
  assert.ok(fs.existsSync(objectPath(disk, flipped)));
  assert.ok(!fs.existsSync(quarantineDir(disk)) || fs.readdirSync(quarantineDir(disk)).length === 0);
  assert.equal(getDiskByName(cat.db, 'd1')?.lastVerifyMs, null);
  // With another run holding the disk, the dry run says its missing ones may be that run's doing.
  const held = lockDisk(disk, 'd1');
  const beside: string[] = [];
  await runVerify(ro, {
    name: 'd1',
    dryRun: true,
    progress: { ...progress, note: (l: string) => beside.push(l) },
  });
  held.release();
  assert.ok(
    beside.some((n) => /another distbackup run holds disk 'd1'/.test(n)),
    beside.join('\n'),
  );
  // The real run then does what the dry run said.
  const real = await runVerify(cat, { name: 'd1' });
  assert.deepEqual([...real.bad].sort(), [...doc.bad].sort());
  assert.deepEqual(real.missing, doc.missing);
});

test('a dry run walks the whole order once even across windows of different stamps', async (t) => {
  const { cat, hashes } = setup(t, 20);
  let clock = 1_700_000_000_000;
  const now = (): number => clock;
  // Three stamp classes: never verified, and two partial runs.
  await runVerify(cat, { name: 'd1', percent: 30, now });
  clock += 60_000;
  await runVerify(cat, { name: 'd1', percent: 30, now });
  clock += 60_000;
  const doc = await runVerify(cat, { name: 'd1', dryRun: true, now });
  assert.equal(doc.checked, hashes.length);
  assert.equal(doc.remaining, 0);
  const half = await runVerify(cat, { name: 'd1', dryRun: true, percent: 50, now });
  assert.equal(half.checked, Math.ceil(hashes.length / 2));
  assert.equal(half.remaining, hashes.length - half.checked);
});

test('the ssd profile (two lanes, in process and on worker threads) finds the same damage as the hdd one', async (t) => {
  for (const mode of ['in process', 'threads'] as const) {
    const { cat, disk, hashes } = setup(t);
    const [flipped, truncated, missing] = damage(disk, hashes);
    const doc = await runVerify(cat, { name: 'd1', profile: 'ssd', inProcess: mode === 'in process' });
    assert.equal(doc.profile, 'ssd');
    assert.equal(doc.checked, hashes.length, mode);
    assert.deepEqual([...doc.bad].sort(), [flipped, truncated].sort(), mode);
    assert.deepEqual(doc.missing, [missing], mode);
    for (const [h, v] of stamps(cat)) assert.ok(v !== null, `${h} stamped (${mode})`);
  }
});

test('a clock before this build (an RTC reset) moves no stamp: they stay as they were, new ones sort after them', async (t) => {
  const { cat, hashes } = setup(t, 8);
  let clock = Date.UTC(2028, 0, 1);
  const now = (): number => {
    clock += 1000;
    return clock;
  };
  await runVerify(cat, { name: 'd1', now });
  const before = stamps(cat);
  clock = Date.UTC(2001, 0, 1);
  const notes: string[] = [];
  const progress = { update: () => {}, setTotals: () => {}, note: (l: string) => notes.push(l), stop: () => {} };
  const half = await runVerify(cat, { name: 'd1', now, percent: 50, progress });
  assert.ok(!notes.some((n) => /ahead of the clock/.test(n)), notes.join('\n'));
  const after = stamps(cat);
  const changed = [...after].filter(([h, v]) => v !== before.get(h));
  assert.equal(changed.length, half.checked, 'only the copies checked have new stamps');
  const maxBefore = Math.max(...[...before.values()].map((v) => v ?? 0));
  for (const [, v] of changed) assert.ok((v ?? 0) > maxBefore, 'and they sort after the others');
  assert.ok(hashes.length > half.checked);
});

test('a run stopped before its first commit under a clock a little ahead is resumed without checking a copy twice', async (t) => {
  const { cat, hashes } = setup(t, 20);
  // Half an hour ahead: within what is taken for drift, so the stamps are not moved back.
  let clock = Date.now() + 30 * 60_000;
  const now = (): number => {
    clock += 1000;
    return clock;
  };
  const ac = new AbortController();
  ac.abort(new Error('interrupted'));
  const first = await runVerify(cat, { name: 'd1', now, signal: ac.signal });
  assert.equal(first.stoppedBy, 'interrupted');
  assert.equal(first.checked, 0);
  // The clock put right: the open pass's run stamp is ahead of it. The new stamps must not sort
  // below it, or the run would select the copies it has just checked again.
  clock -= 30 * 60_000;
  let opened = 0;
  const reader: ObjectReader = {
    ...fsReader,
    open: (p) => {
      opened += 1;
      return fsReader.open(p);
    },
  };
  const second = await runVerify(cat, { name: 'd1', now, reader, commitObjects: 4 });
  assert.equal(second.stoppedBy, 'done');
  assert.equal(second.checked, hashes.length);
  assert.equal(opened, hashes.length, 'each copy read once');
});

test('an aborted run commits what it checked, says so, and the next run checks only the rest', async (t) => {
  for (const profile of ['hdd', 'ssd'] as const) {
    const { cat, hashes } = setup(t, 30);
    const ac = new AbortController();
    let opened = 0;
    // The real reader; the 11th object opened aborts the run (a Ctrl-C at a known point).
    const reader: ObjectReader = {
      ...fsReader,
      open: (p) => {
        opened += 1;
        if (opened === 11) ac.abort(new Error('interrupted'));
        return fsReader.open(p);
      },
    };
    const first = await runVerify(cat, { name: 'd1', profile, reader, signal: ac.signal, commitObjects: 4 });
    assert.equal(first.stoppedBy, 'interrupted');
    assert.ok(first.checked >= 8 && first.checked <= 11, `${profile}: checked ${first.checked}`);
    const done = [...stamps(cat)].filter(([, v]) => v !== null).map(([h]) => h);
    assert.equal(done.length, first.checked, `${profile}: every object checked is recorded, no other`);
    assert.equal(first.remaining, hashes.length - first.checked);
    const second = await runVerify(cat, { name: 'd1', profile });
    assert.equal(second.checked, hashes.length - first.checked, `${profile}: the second run checks only the rest`);
    assert.equal(second.stoppedBy, 'done');
  }
});

test('runs of a budget of one copy still reach the older copies: runs start with each class in turn', async (t) => {
  const { base, cat } = setup(t, 20);
  let clock = Date.now() - 10 * 86_400_000;
  const now = (): number => clock;
  await runVerify(cat, { name: 'd1', now });
  const first = new Map(stamps(cat));
  for (let round = 0; round < 4; round++) {
    clock += 60_000;
    const dir = path.join(base, `one${round}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'f'), `one more, round ${round}`);
    putObjects(cat, catalogueSource(cat, `/one${round}`, dir), 'd1');
    const doc = await runVerify(cat, { name: 'd1', now, percent: 1 });
    assert.equal(doc.checked, 1);
  }
  const reached = [...first.keys()].filter((h) => stamps(cat).get(h) !== first.get(h));
  assert.ok(reached.length >= 1, 'an older copy was checked again');
});
