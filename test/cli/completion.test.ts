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

/** What the bash completion function in `file` offers for the words typed (the last one is completed). */
function bashComplete(file: string, words: string[]): string[] {
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
  const complete = (words: string[]): string[] => bashComplete(file, words);
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

/** Candidates fish offers for `line` with `script` loaded: [word, description] pairs. */
function fishComplete(script: string, line: string): [string, string][] {
  const r = spawnSync('fish', ['--no-config', '-c', `source ${script}; complete -C ${JSON.stringify(line)}`], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [word = '', desc = ''] = l.split('\t');
      return [word, desc];
    });
}

test('completion fish prints a valid fish script that completes topics, commands, flags and their values', {
  skip: !hasShell('fish') && 'fish is not installed',
}, (t) => {
  const root = tempDir(t);
  const r = runCli(path.join(root, 'data'), ['completion', 'fish']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const script = path.join(root, 'distbackup.fish');
  fs.writeFileSync(script, r.stdout);
  const check = spawnSync('fish', ['--no-execute', script], { encoding: 'utf8' });
  assert.equal(check.status, 0, `fish --no-execute: ${check.stderr}`);

  const words = (line: string): string[] => fishComplete(script, line).map(([w]) => w);
  // Topics and commands, with the topic's description; nothing but words before a command.
  const top = fishComplete(script, 'distbackup so');
  assert.deepEqual(
    top.map(([w]) => w),
    ['source'],
  );
  assert.match(top[0]?.[1] ?? '', /real folders into the virtual tree/);
  assert.deepEqual(words('distbackup disk '), ['add', 'drop', 'list', 'refresh', 'remove', 'set']);
  assert.ok(words('distbackup ').includes('completion'));
  assert.ok(!words('distbackup ').some((w) => w.includes('/')), 'no file names before a command');
  // Flags of the command typed (topic words separated by spaces), with their summaries.
  const flags = fishComplete(script, 'distbackup source map --');
  for (const f of ['--exclude', '--include', '--follow-symlinks', '--min-copies', '--help', '--data-dir']) {
    assert.ok(
      flags.some(([w]) => w === f),
      `source map offers ${f}`,
    );
  }
  assert.match(flags.find(([w]) => w === '--min-copies')?.[1] ?? '', /\S/, 'a flag shows its summary');
  assert.ok(!flags.some(([w]) => w === '--suite'), "bench's flags are not offered to source map");
  // The fixed values of a flag, and a flag's summary kept beside its name.
  assert.deepEqual(words('distbackup bench --suite '), ['hdd', 'planner', 'ssd']);
  assert.deepEqual(fishComplete(script, 'distbackup bench --su'), [
    ['--suite', "What to measure (default: hdd when the target's disk really spins, else ssd)."],
  ]);
  assert.deepEqual(words('distbackup sync --verify '), ['readback', 'write']);
  assert.deepEqual(words('distbackup completion '), ['bash', 'fish', 'zsh']);
  // Short flags and the alias dsb.
  assert.ok(words('dsb sync -').includes('-n'));
  assert.deepEqual(words('dsb dis'), ['disk']);
  // A command that takes paths completes file names.
  fs.mkdirSync(path.join(root, 'photos-here'));
  const inRoot = spawnSync(
    'fish',
    [
      '--no-config',
      '-c',
      `cd ${JSON.stringify(root)}; source ${script}; complete -C "distbackup source map /p photos"`,
    ],
    { encoding: 'utf8' },
  );
  assert.match(inRoot.stdout, /^photos-here\//m);
});

test('autocomplete fish is refused by the plugin, and completion names the command that serves fish', (t) => {
  const root = tempDir(t);
  const r = runCli(path.join(root, 'data'), ['autocomplete', 'fish'], { XDG_CACHE_HOME: path.join(root, 'cache') });
  assert.notEqual(r.code, 0);
  const other = runCli(path.join(root, 'data'), ['completion', 'tcsh']);
  assert.equal(other.code, 1);
  assert.match(other.stderr, /bash, zsh, fish/);
  const help = runCli(path.join(root, 'data'), ['completion', '--help']);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /\$ distbackup completion fish > ~\/\.config\/fish\/completions\/distbackup\.fish/);
  assert.match(help.stdout, /distbackup autocomplete/);
});

test('completion bash and completion zsh print the scripts to save, as rclone completion does', (t) => {
  const root = tempDir(t);
  const env = { XDG_CACHE_HOME: path.join(root, 'cache') };
  const bash = runCli(path.join(root, 'data'), ['completion', 'bash'], env);
  assert.equal(bash.code, 0, bash.stderr);
  const file = path.join(root, 'distbackup.bash');
  fs.writeFileSync(file, bash.stdout);
  assert.equal(spawnSync('bash', ['-n', file]).status, 0, 'valid bash');
  assert.match(bash.stdout, /^complete -F _distbackup_autocomplete dsb$/m, 'the alias completes too');
  // The saved script alone completes: nothing else from the cache is needed.
  assert.deepEqual(bashComplete(file, ['distbackup', 'so']), ['source']);
  const zsh = runCli(path.join(root, 'data'), ['completion', 'zsh'], env);
  assert.equal(zsh.code, 0, zsh.stderr);
  assert.match(zsh.stdout, /^#compdef distbackup\n/);
  assert.match(zsh.stdout, /\bsource\b/);
});
