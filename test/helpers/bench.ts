/** Shared pieces of the bench CLI tests (test/cli/bench*.test.ts). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from './cli.js';

const manifestIds = (): string[] =>
  Object.keys(
    (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'oclif.manifest.json'), 'utf8')) as { commands: object }).commands,
  );

/** The distbackup rows can pass only once every stage's command exists. */
export const stagesMissing = (): string[] =>
  ['update', 'sync', 'verify', 'restore'].filter((c) => !manifestIds().includes(c));

/** What bench left in `target` (its work folders are named distbackup-bench-*). */
export const leftovers = (target: string): string[] =>
  fs.readdirSync(target).filter((n) => n.startsWith('distbackup-bench-'));
