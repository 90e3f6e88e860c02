import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

/** The plugin writes its completion cache under $XDG_CACHE_HOME/distbackup/autocomplete. */
function buildCache(t: import('node:test').TestContext): { cache: string; ac: string; env: NodeJS.ProcessEnv } {
  const root = tempDir(t);
  const cache = path.join(root, 'cache');
  const env = { XDG_CACHE_HOME: cache };
  const r = runCli(path.join(root, 'data'), ['autocomplete', '--refresh-cache'], env);
  assert.equal(r.code, 0, r.stderr);
  return { cache, ac: path.join(cache, 'distbackup', 'autocomplete'), env };
}

const hasShell = (sh: string): boolean => spawnSync('sh', ['-c', `command -v ${sh}`]).status === 0;

test('autocomplete script prints a setup line for bash and zsh that points into the cache', (t) => {
  const { ac, env } = buildCache(t);
  for (const shell of ['bash', 'zsh']) {
    const r = runCli(path.dirname(ac), ['autocomplete', 'script', shell], env);
    assert.equal(r.code, 0, `${shell}: ${r.stderr}`);
    const setup = path.join(ac, `${shell}_setup`);
    assert.ok(r.stdout.includes(setup), `${shell}: ${r.stdout}`);
    assert.ok(fs.existsSync(setup), `${setup} written`);
  }
});

test('the bash completion script completes topics, subcommands and flags', (t) => {
  const { ac } = buildCache(t);
  const file = path.join(ac, 'functions', 'bash', 'distbackup.bash');
  assert.ok(fs.existsSync(file));
  assert.equal(spawnSync('bash', ['-n', file]).status, 0, 'valid bash');
  const complete = (words: string[]): string[] => {
    const script = [
      `source ${JSON.stringify(file)}`,
      `COMP_WORDS=(${words.map((w) => JSON.stringify(w)).join(' ')})`,
      `COMP_CWORD=${words.length - 1}`,
      `COMP_LINE=${JSON.stringify(words.join(' '))}`,
      `COMP_POINT=\${#COMP_LINE}`,
      '_distbackup_autocomplete',
      `printf "%s\\n" "\${COMPREPLY[@]}"`,
    ].join('\n');
    const r = spawnSync('bash', ['-c', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return [...new Set(r.stdout.split('\n').filter((s) => s !== ''))].sort();
  };
  assert.deepEqual(complete(['distbackup', 'so']), ['source']);
  assert.ok(complete(['distbackup', 'source', '']).includes('map'));
  assert.deepEqual(complete(['distbackup', 'bench', '--su']), ['--suite']);
});

test('the zsh completion script is valid zsh and names every command', {
  skip: !hasShell('zsh') && 'zsh is not installed',
}, (t) => {
  const { ac } = buildCache(t);
  const file = path.join(ac, 'functions', 'zsh', '_distbackup');
  const r = spawnSync('zsh', ['-n', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const text = fs.readFileSync(file, 'utf8');
  assert.match(text, /compdef dsb=distbackup/);
  for (const word of ['source', 'bench', 'sync']) assert.ok(text.includes(`"${word}[`), `zsh completes ${word}`);
});

test('a fish completion script is produced', {
  todo: '@oclif/plugin-autocomplete 3.2 generates bash, zsh and powershell only; fish needs a generator of ours',
}, (t) => {
  const root = tempDir(t);
  const r = runCli(path.join(root, 'data'), ['autocomplete', 'script', 'fish'], {
    XDG_CACHE_HOME: path.join(root, 'cache'),
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /complete -c distbackup/);
});
