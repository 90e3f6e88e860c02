/**
 * The parts of oclif that the CLI runs with, one import for every command and for bin/run.js.
 * `npm run build` replaces the compiled file with one bundle of these parts and the packages
 * they load (scripts/bundle-oclif.mjs): about 100 CommonJS modules read, resolved and compiled
 * one by one cost more than half of a command's start-up (docs/README-startup.md). Compiled
 * by tsc alone (or run from src/ by tsx) it re-exports @oclif/core as it is.
 */
export * as Args from '@oclif/core/args';
export { Command } from '@oclif/core/command';
export * as Errors from '@oclif/core/errors';
export { execute } from '@oclif/core/execute';
export * as Flags from '@oclif/core/flags';
