import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { CLI, runCli, runCliJson } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

test('config export, import and edit through the CLI', (t) => {
  const root = tempDir(t);
  const data = path.join(root, 'data');
  const real = path.join(root, 'real');
  fs.mkdirSync(real);
  assert.equal(runCli(data, ['source', 'map', '/r', real]).code, 0);
  assert.equal(runCli(data, ['source', 'set', '/r', '--priority', '2']).code, 0);
  const exp = runCli(data, ['config', 'export']);
  assert.equal(exp.code, 0, exp.stderr);
  assert.deepEqual(JSON.parse(exp.stdout), {
    path_map: { '/r': real },
    path_config: { '/r': { priority: 2 } },
    disks: {},
  });
  const file = path.join(root, 'conf.json');
  assert.equal(runCli(data, ['config', 'export', file]).code, 0);
  // Importing what was just exported changes nothing, and says so.
  const same = runCli(data, ['config', 'import', file]);
  assert.equal(same.code, 0, same.stderr);
  assert.match(same.stdout, /^mappings and disks: already as in the file\n1 path setting stored \(1 replaced\)\n/);
  fs.writeFileSync(file, JSON.stringify({ path_config: { '/r/x/': { hide: true } } }));
  const imp = runCliJson<{ settings: number; settingsRemoved: number }>(data, ['config', 'import', file]);
  assert.equal(imp.code, 0, imp.stderr);
  assert.deepEqual([imp.json.settings, imp.json.settingsRemoved], [1, 1]);
  const bad = runCli(data, ['config', 'import', file.replace('conf', 'missing')]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /missing\.json: cannot read it: ENOENT/);

  // An editor script: the first time it writes invalid JSON, the second time a valid setting.
  const count = path.join(root, 'count');
  const editor = path.join(root, 'editor.sh');
  fs.writeFileSync(
    editor,
    `#!/bin/sh
n=$(cat "${count}" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "${count}"
if [ $n -eq 1 ]; then echo 'not json' > "$1"; else echo '{"path_config": {"/r": {"priority": 9}}}' > "$1"; fi
`,
  );
  fs.chmodSync(editor, 0o755);
  const r = spawnSync(process.execPath, [CLI, 'config', 'edit', 'path'], {
    encoding: 'utf8',
    input: 'e\n',
    env: { ...process.env, DISTBACKUP_PATH: data, NO_COLOR: '1', EDITOR: editor, VISUAL: '' },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /invalid: .*not JSON/);
  assert.match(r.stderr, /\[e\]dit again, \[r\]evert to the saved configuration, or \[c\]ancel\?/);
  assert.deepEqual(JSON.parse(runCli(data, ['config', 'export']).stdout).path_config, { '/r': { priority: 9 } });
  // cancel: end of input after an invalid edit changes nothing
  fs.writeFileSync(count, '0');
  const c = spawnSync(process.execPath, [CLI, 'config', 'edit'], {
    encoding: 'utf8',
    input: '',
    env: { ...process.env, DISTBACKUP_PATH: data, NO_COLOR: '1', EDITOR: editor, VISUAL: '' },
  });
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stderr, /cancelled: nothing changed/);
  // an editor that fails changes nothing (exit 1)
  const f = spawnSync(process.execPath, [CLI, 'config', 'edit', 'disks'], {
    encoding: 'utf8',
    env: { ...process.env, DISTBACKUP_PATH: data, NO_COLOR: '1', EDITOR: 'false', VISUAL: '' },
  });
  assert.equal(f.status, 1);
  assert.match(f.stderr, /the editor 'false' exited with code 1; nothing changed/);
});
