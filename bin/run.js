#!/usr/bin/env node
process.env.OCLIF_SKIP_NEW_VERSION_CHECK ??= 'true';
// Start-up: @oclif/core's index checks the Node version with semver (48 modules) on every run,
// and loads every part of oclif; `execute` alone loads what running a command needs. (Our
// engines field already asks for the Node that oclif needs.)
process.env.OCLIF_DISABLE_ENGINE_WARNING ??= 'true';

const { execute } = await import('@oclif/core/execute');

await execute({ dir: import.meta.url });
