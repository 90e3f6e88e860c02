import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';

const HELPER = path.resolve(import.meta.dirname, '../../src/cli/interrupt.ts');

/**
 * A process that takes the signals over (cli/interrupt.ts) and then never ends by itself; the
 * signals are sent one by one, each once the one before was heard.
 */
async function run(
  signals: NodeJS.Signals[],
  opts: { closeStderr?: boolean } = {},
): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `const { onInterrupt } = await import(${JSON.stringify(HELPER)});
       const i = onInterrupt('doing the test');
       i.signal.addEventListener('abort', () => console.log('aborted'));
       console.log('ready');
       // Writes to stderr go on after the first signal (as a progress display's would).
       setInterval(() => { if (i.signal.aborted) process.stderr.write('still here\\n'); }, 20);`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  let exited = false;
  const done = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      exited = true;
      resolve({ code, signal });
    }),
  );
  const guard = setTimeout(() => child.kill('SIGKILL'), 20_000);
  // Waits end when the child has exited (a regression that kills it must fail, not hang).
  const until = async (cond: () => boolean): Promise<void> => {
    while (!cond() && !exited) await new Promise((r) => setTimeout(r, 10));
  };
  await until(() => out.includes('ready'));
  // The terminal gone: what the child writes to stderr fails (EPIPE, as EIO on a dead tty).
  if (opts.closeStderr === true) child.stderr.destroy();
  for (const [i, sig] of signals.entries()) {
    if (i > 0) {
      await until(() => out.includes('aborted'));
      // Long enough for the writes after the first signal to meet the closed pipe.
      await new Promise((r) => setTimeout(r, 200));
    }
    child.kill(sig);
  }
  const end = await done;
  clearTimeout(guard);
  return { ...end, stderr: err };
}

test('the first SIGINT or SIGTERM aborts the run and says so; the second ends the process at once with 128 + its number', async () => {
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    const r = await run([sig, sig]);
    assert.equal(r.code, code, `${sig}: exit ${r.code ?? r.signal}: ${r.stderr}`);
    assert.match(r.stderr, /^\ninterrupted: doing the test \(again to stop at once\)\n/);
  }
});

test('a SIGHUP with the terminal gone aborts the run without dying of the failed writes; a second one ends it with 129', async () => {
  const r = await run(['SIGHUP', 'SIGHUP'], { closeStderr: true });
  assert.equal(r.code, 129, `exit ${r.code ?? r.signal}`);
});
