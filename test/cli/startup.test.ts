import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * The CommonJS files a run of the built CLI loaded, from node's module cache at exit (a module
 * given to node with --import records them; nothing in the CLI is replaced).
 */
function loadedFiles(dir: string, args: string[]): { code: number; stderr: string; files: string[] } {
  const list = path.join(dir, 'loaded.json');
  const recorder = path.join(dir, 'record-modules.mjs');
  fs.writeFileSync(
    recorder,
    [
      "import { createRequire } from 'node:module';",
      "import { writeFileSync } from 'node:fs';",
      'const cache = createRequire(import.meta.url).cache;',
      `process.on('exit', () => writeFileSync(${JSON.stringify(list)}, JSON.stringify(Object.keys(cache))));`,
    ].join('\n'),
  );
  const r = runCli(path.join(dir, 'home'), args, { NODE_OPTIONS: `--import=${recorder}` });
  return { code: r.code, stderr: r.stderr, files: JSON.parse(fs.readFileSync(list, 'utf8')) as string[] };
}

// The commands share one bundled oclif (dist/cli/oclif.js, made by npm run build): a module
// that imports @oclif/core itself would load a second oclif beside it, ~100 files more.
for (const args of [['--version'], ['source', 'list', '--json'], ['status', '--json']]) {
  test(`distbackup ${args.join(' ')} loads oclif from its bundle, none of @oclif/core's files`, (t) => {
    const r = loadedFiles(tempDir(t), args);
    assert.ok(r.code === 0 || args[0] === 'status', r.stderr);
    const core = r.files.filter((f) => f.includes(`${path.sep}@oclif${path.sep}core${path.sep}`));
    assert.deepEqual(core, []);
    assert.ok(r.files.length < 40, `${r.files.length} CommonJS files: ${r.files.join(' ')}`);
  });
}

test('the bundle ships the licence of every package it holds', () => {
  const dist = path.join(import.meta.dirname, '..', '..', 'dist', 'cli');
  const notices = fs.readFileSync(path.join(dist, 'oclif.js.LICENSES.txt'), 'utf8');
  // Every package whose code the bundle holds (esbuild heads each module with a comment naming
  // its file) has a section, with its licence text.
  const bundle = fs.readFileSync(path.join(dist, 'oclif.js'), 'utf8');
  const held = new Set(
    [...bundle.matchAll(/^\/\/ (?:\S*\/)?node_modules\/((?:@[^/]+\/)?[^/\s]+)\/\S*$/gm)].map((m) => m[1] as string),
  );
  assert.ok(held.has('@oclif/core'), 'the bundle names its sources');
  for (const name of held)
    assert.match(notices, new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}@\\S+ \\(`, 'm'));
  assert.doesNotMatch(notices, /no licence file/);
  assert.match(notices, /Permission is hereby granted/);
});
