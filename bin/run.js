#!/usr/bin/env node
process.env.OCLIF_SKIP_NEW_VERSION_CHECK ??= 'true';
// @oclif/core's index checks the Node version with semver (48 modules) when it loads; our
// engines field already asks for the Node that oclif needs. (dist/cli/oclif.js does not load
// the index; this keeps a plugin that does from paying for it.)
process.env.OCLIF_DISABLE_ENGINE_WARNING ??= 'true';

// oclif as one bundled module (scripts/bundle-oclif.mjs), shared with every command.
const { execute } = await import('../dist/cli/oclif.js');

await execute({ dir: import.meta.url });
