import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

interface ManifestCommand {
  id: string;
  examples?: unknown[];
  aliases?: string[];
  summary?: string;
  description?: string;
}

/** Every command of the built CLI, from the manifest `npm run build` regenerates. */
function commands(): ManifestCommand[] {
  const file = path.join(REPO_ROOT, 'oclif.manifest.json');
  const manifest = JSON.parse(fs.readFileSync(file, 'utf8')) as { commands: Record<string, ManifestCommand> };
  return Object.values(manifest.commands).sort((a, b) => a.id.localeCompare(b.id));
}

test('the manifest lists the commands (run npm run build first)', () => {
  const ids = commands().map((c) => c.id);
  for (const id of ['bench', 'source:map', 'source:list', 'source:unmap']) assert.ok(ids.includes(id), id);
});

for (const cmd of commands()) {
  const words = cmd.id.split(':');
  const missing = (cmd.examples ?? []).length === 0;
  test(
    `distbackup ${words.join(' ')} --help shows a summary, usage and an example`,
    missing ? { todo: `${cmd.id} has no static examples yet` } : {},
    (t) => {
      const r = runCli(tempDir(t), [...words, '--help']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^USAGE$/m);
      assert.match(r.stdout, new RegExp(`\\$ distbackup ${words.join(' ')}`));
      assert.ok((cmd.summary ?? cmd.description ?? '') !== '', 'has a summary');
      assert.match(r.stdout, /^EXAMPLES$/m);
      const examples = r.stdout.slice(r.stdout.indexOf('EXAMPLES'));
      assert.match(examples, new RegExp(`\\$ distbackup ${words[0]}`), 'the example runs this command');
    },
  );
}

test('distbackup --help lists the topics and commands, and --version prints one line', (t) => {
  const data = tempDir(t);
  const r = runCli(data, ['--help']);
  assert.equal(r.code, 0, r.stderr);
  for (const word of ['source', 'bench', 'autocomplete']) assert.match(r.stdout, new RegExp(`^\\s+${word}\\s`, 'm'));
  const v = runCli(data, ['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout.trim(), /^distbackup\/\d+\.\d+\.\d+ /);
});

test('autocomplete --help shows how to install completion, with examples', (t) => {
  const r = runCli(tempDir(t), ['autocomplete', '--help']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^EXAMPLES$/m);
  assert.match(r.stdout, /\$ distbackup autocomplete bash/);
});

test('flags that take a value name it in --help (SIZE, DUR, DISK, N…), not <value>', () => {
  const file = path.join(REPO_ROOT, 'oclif.manifest.json');
  type Flag = { name: string; type: string; helpValue?: string; helpGroup?: string; options?: string[] };
  const manifest = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    commands: Record<string, { id: string; flags: Record<string, Flag> }>;
  };
  const ours = /^(status|whereis|tree|ncdu|demo|bench|completion|source:.*|disk:.*|config:.*|debug:.*)$/;
  const unnamed: string[] = [];
  for (const c of Object.values(manifest.commands)) {
    if (!ours.test(c.id)) continue;
    for (const f of Object.values(c.flags)) {
      // A flag with a fixed set of values shows the set instead.
      if (f.type === 'option' && f.helpGroup !== 'GLOBAL' && f.options === undefined && f.helpValue === undefined)
        unnamed.push(`${c.id} --${f.name}`);
    }
  }
  assert.deepEqual(unnamed, []);
});
