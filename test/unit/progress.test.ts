import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createProgress } from '../../src/ui/progress.js';

/** A writable that says it is a terminal, keeping what is written. */
function terminal(): { stream: NodeJS.WriteStream; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  Object.assign(stream, { isTTY: true, columns: 120 });
  return { stream: stream as unknown as NodeJS.WriteStream, text: () => chunks.join('') };
}

test('on a terminal the bar leaves line wrap on, so a long note is whole, and the lines after the run come below the notes', () => {
  const t = terminal();
  Object.assign(t.stream, { columns: 40 });
  const p = createProgress({ label: 'sync', enabled: true, stream: t.stream, totalBytes: 1000, totalFiles: 2 });
  const long = `skipped /a/very/long/path/${'x'.repeat(80)}: EIO (input/output error)`;
  p.note(long);
  p.stop();
  const out = t.text();
  assert.ok(!out.includes('\x1b[?7l'), 'line wrap is never turned off');
  assert.ok(out.includes(`${long}\n\x1b7`), 'the note is whole, and the cursor saved below it');
  // The last restore (ESC 8) comes after the last save (ESC 7), which follows the note.
  assert.ok(out.lastIndexOf('\x1b7') > out.indexOf(long));
  // The bar's own line is cut to the terminal's width.
  const escapes = new RegExp(`${String.fromCharCode(27)}(\\[[0-9;?]*[A-Za-z]|[78])`, 'g');
  for (const l of out.split(/\n|\r/)) {
    if (l.includes('sync:')) assert.ok(l.replace(escapes, '').length <= 40, l);
  }
});

test('on a terminal the progress is a bar (cli-progress, loaded when first needed) that notes print above', () => {
  const t = terminal();
  const p = createProgress({ label: 'verify', enabled: true, stream: t.stream, totalBytes: 1000, totalFiles: 2 });
  p.update(500, 1);
  p.note('warning: something');
  p.stop();
  assert.match(t.text(), /verify: 500 B \/ 1 kB, 50%/);
  assert.ok(t.text().includes('\r\x1b[2Kwarning: something\n'), 'the note clears the bar line');
  assert.match(t.text(), /1\/2 files/);
});
