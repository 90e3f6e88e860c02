#!/usr/bin/env node
// Bundles the parts of @oclif/core that the CLI runs with (src/cli/oclif.ts) and the packages
// they load into dist/cli/oclif.js, in place of the re-exports that tsc wrote there. Node 20
// resolves, reads and compiles each of those ~100 CommonJS modules on every start: one file
// takes about a fifth off `--version` and a quarter off `status` (docs/README-startup.md).
// Run by `npm run build` after tsc; the same input always gives the same file.
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

const out = new URL('../dist/cli/oclif.js', import.meta.url).pathname;
await build({
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
  logLevel: 'warning',
});
// tsc's source map is of the re-exports, not of this file.
rmSync(`${out}.map`, { force: true });
