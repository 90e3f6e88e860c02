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
