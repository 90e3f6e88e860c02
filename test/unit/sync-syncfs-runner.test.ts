/**
 * SyncfsRunner: the one shell that runs `sync -f` for every syncfs of a sync. Real processes and
 * folders; a fake `sync` first on PATH stands for a failing disk, a missing binary, a hang.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { SyncfsRunner } from '../../src/pipeline/copy-io.js';
import { tempDir } from '../helpers/tmp.js';

/** Run `fn` with a folder holding `sync` (the script `body`) first on PATH. */
async function withFakeSync(dir: string, body: string | null, fn: () => Promise<void>): Promise<void> {
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  if (body !== null) fs.writeFileSync(path.join(bin, 'sync'), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  const saved = process.env.PATH;
  // Without the fake: a PATH where `sh` and `tr` exist but `sync` does not.
  const shDir = path.join(dir, 'shbin');
  fs.mkdirSync(shDir, { recursive: true });
  for (const tool of ['sh', 'tr', 'sleep']) {
    const real = ['/bin', '/usr/bin'].map((d) => path.join(d, tool)).find((p) => fs.existsSync(p));
    if (real !== undefined && !fs.existsSync(path.join(shDir, tool))) fs.symlinkSync(real, path.join(shDir, tool));
  }
  process.env.PATH = `${bin}:${shDir}`;
  try {
    await fn();
  } finally {
    process.env.PATH = saved;
  }
}

test('syncfs through the shell: requests in a row and at once all resolve', {
  skip: process.platform !== 'linux',
}, async (t) => {
  const dir = tempDir(t);
  const r = new SyncfsRunner();
  try {
    await r.run(dir);
    await Promise.all([r.run(dir), r.run(dir), r.run(path.join(dir, '.'))]);
    assert.ok(r.pid !== undefined, 'one shell serves them');
  } finally {
    r.close();
  }
});

test('a path that does not exist rejects with ENOENT naming it; the next request still works', {
  skip: process.platform !== 'linux',
}, async (t) => {
  const dir = tempDir(t);
  const r = new SyncfsRunner();
  try {
    const missing = path.join(dir, 'no-such-folder');
    await assert.rejects(r.run(missing), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'ENOENT');
      assert.match(err.message, /no-such-folder/);
      return true;
    });
    await r.run(dir);
  } finally {
    r.close();
  }
});

test('a write-back error (EIO) rejects that request only', async (t) => {
  const dir = tempDir(t);
  await withFakeSync(
    dir,
    `case "$3" in *bad*) echo "sync: error syncing '$3': Input/output error" >&2; exit 1;; esac; exit 0`,
    async () => {
      const r = new SyncfsRunner();
      try {
        const [bad, good] = await Promise.allSettled([r.run(path.join(dir, 'bad')), r.run(dir)]);
        assert.equal(bad.status, 'rejected');
        assert.equal((bad as PromiseRejectedResult).reason.code, 'EIO');
        assert.match(String((bad as PromiseRejectedResult).reason.message), /\/bad: syncfs: EIO/);
        assert.equal(good.status, 'fulfilled');
      } finally {
        r.close();
      }
    },
  );
});

test('no sync binary: ENOSYS (the copy then fsyncs file by file)', async (t) => {
  const dir = tempDir(t);
  await withFakeSync(dir, null, async () => {
    const r = new SyncfsRunner();
    try {
      await assert.rejects(r.run(dir), (err: NodeJS.ErrnoException) => err.code === 'ENOSYS');
    } finally {
      r.close();
    }
  });
});

test('the shell killed mid-request: the request rejects with EIO, never left waiting', async (t) => {
  const dir = tempDir(t);
  await withFakeSync(dir, 'sleep 2; exit 0', async () => {
    const r = new SyncfsRunner();
    try {
      const pending = r.run(dir);
      const pid = r.pid;
      assert.ok(pid !== undefined);
      process.kill(pid, 'SIGKILL');
      await assert.rejects(pending, (err: NodeJS.ErrnoException) => {
        assert.equal(err.code, 'EIO');
        assert.ok(err.message.startsWith(`${dir}: syncfs`), err.message);
        return true;
      });
    } finally {
      r.close();
    }
  });
});
