import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { test } from 'node:test';
import { runCli, startCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

test('distbackup demo runs the whole cycle and every step gives the expected result', (t) => {
  const home = tempDir(t);
  const r = runCli(home, ['demo']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /\$ distbackup verify disk1/);
  assert.match(r.stdout, /1 bad, 0 missing/);
  assert.match(r.stdout, /connect disk\d next/);
  assert.match(r.stdout, /complete: every file is restored/);
  assert.match(r.stdout, /demo complete: \d+ commands, every step gave the expected result/);
  assert.doesNotMatch(r.stdout, /DIFFERENT/);
  // The children's progress lines would print after their results: the transcript leaves them out.
  assert.doesNotMatch(r.stdout, /^ +(update|sync|verify|restore): \d/m);
});

test('Ctrl-C during the demo: exit 130, said so, and its folder removed', async (t) => {
  const home = tempDir(t);
  const folders = (): Set<string> =>
    new Set(
      ['/dev/shm', os.tmpdir()].flatMap((d) =>
        fs.existsSync(d)
          ? fs
              .readdirSync(d)
              .filter((n) => n.startsWith('distbackup-demo-'))
              .map((n) => `${d}/${n}`)
          : [],
      ),
    );
  const before = folders();
  const run = startCli(home, ['demo']);
  let out = '';
  run.child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  let exited = false;
  void run.done.then(() => {
    exited = true;
  });
  while (!exited && !out.includes('$ distbackup update')) await new Promise((r) => setTimeout(r, 10));
  assert.ok(!exited, 'the demo ended before it could be interrupted');
  run.child.kill('SIGINT');
  const end = await run.done;
  assert.equal(end.code, 130, `${end.stdout}\n${end.stderr}`);
  assert.match(end.stdout, /demo interrupted at step \d+/);
  assert.doesNotMatch(end.stdout, /demo FAILED/);
  const left = [...folders()].filter((f) => !before.has(f));
  assert.deepEqual(left, [], 'the demo folder is removed');
});
