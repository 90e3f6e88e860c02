import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { test } from 'node:test';
import { runDemo } from '../../src/demo/demo.js';

test('the demo fails, naming the step, when a command gives the wrong result', async () => {
  const lines: string[] = [];
  // A CLI whose every command "succeeds" without doing anything: status never reports 2 copies.
  const r = await runDemo({ out: (l) => lines.push(l), cli: async () => ({ code: 0, stdout: '', stderr: '' }) });
  assert.equal(r.ok, false);
  assert.match(r.failed ?? '', /2 copies/);
  assert.match(lines.join('\n'), /demo FAILED at step \d+/);
  assert.ok(!fs.existsSync(r.dir), 'the temporary folder is removed');
});

test('the demo fails when a command exits with the wrong code', async () => {
  const r = await runDemo({
    out: () => {},
    cli: async (args) => ({ code: args[0] === 'update' ? 2 : 0, stdout: '', stderr: '' }),
  });
  assert.equal(r.ok, false);
  assert.match(r.failed ?? '', /'distbackup update' exited with 2, expected 0/);
});
