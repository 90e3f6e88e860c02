#!/usr/bin/env node
// Bundles the parts of @oclif/core that the CLI runs with (src/cli/oclif.ts) and the packages
// they load into dist/cli/oclif.js, in place of the re-exports that tsc wrote there. Node 20
// resolves, reads and compiles each of those ~100 CommonJS modules on every start: one file
// takes about a fifth off `--version` and a quarter off `status` (docs/README-startup.md).
// Run by `npm run build` after tsc; the same input always gives the same file.
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const out = new URL('../dist/cli/oclif.js', import.meta.url).pathname;
const result = await build({
  entryPoints: [new URL('../src/cli/oclif.ts', import.meta.url).pathname],
  outfile: out,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // oclif loads typescript only to run a plugin from its .ts sources, which this CLI never does.
  external: ['typescript'],
  // The CommonJS inside needs require (commands, plugins and package.json files are loaded by
  // path at run time) and __dirname/__filename, which an ES module lacks.
  banner: {
    js: [
      "import { createRequire as __bundleCreateRequire } from 'node:module';",
      "import { dirname as __bundleDirname } from 'node:path';",
      "import { fileURLToPath as __bundleFileURLToPath } from 'node:url';",
      'const require = __bundleCreateRequire(import.meta.url);',
      'const __filename = __bundleFileURLToPath(import.meta.url);',
      'const __dirname = __bundleDirname(__filename);',
    ].join('\n'),
  },
  metafile: true,
  // metafile paths are relative to this folder, whichever folder the script runs from.
  absWorkingDir: root,
  logLevel: 'warning',
});
// tsc's source map is of the re-exports, not of this file.
rmSync(`${out}.map`, { force: true });

// The licences of the packages bundled in, beside the bundle (their MIT and ISC terms ask that
// the notice travel with every copy): one section a package, in name order.
const packages = new Map();
for (const input of Object.keys(result.metafile.inputs)) {
  const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
  if (m === null) continue;
  const dir = join(root, m[1]);
  if (packages.has(dir)) continue;
  if (!existsSync(join(dir, 'package.json'))) throw new Error(`${dir}: bundled, but no package.json to name it`);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)/i.test(f));
  packages.set(dir, {
    name: `${pkg.name}@${pkg.version}`,
    license: typeof pkg.license === 'string' ? pkg.license : 'see the package',
    text: file === undefined ? '(no licence file in the package)' : readFileSync(join(dir, file), 'utf8').trim(),
  });
}
if (packages.size === 0) throw new Error('no bundled package found in the metafile: the licence notice would be empty');
const sections = [...packages.values()]
  .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  .map((p) => `${p.name} (${p.license})\n\n${p.text}\n`);
writeFileSync(
  `${out}.LICENSES.txt`,
  `dist/cli/oclif.js bundles these packages; their licences follow.\n\n${sections.join('\n---\n\n')}`,
);
