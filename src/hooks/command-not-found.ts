/**
 * oclif hook for an unknown command: a one-line usage error and exit 1 (SPEC §3 reserves
 * exit 2 for refusals, which oclif would otherwise use here).
 */
import type { Hook } from '@oclif/core';

const hook: Hook.CommandNotFound = async (opts) => {
  const typed = opts.id.replaceAll(':', ' ');
  const ids = opts.config.commands.map((c) => c.id.replaceAll(':', ' '));
  const first = typed.split(' ')[0] ?? typed;
  const near = ids.filter((id) => id.startsWith(first) || (first.length >= 3 && id.includes(first))).slice(0, 3);
  const hint = near.length > 0 ? `; did you mean ${near.map((n) => `'${n}'`).join(' or ')}?` : '';
  process.stderr.write(`distbackup: unknown command '${typed}'${hint} (see distbackup --help)\n`);
  process.exit(1);
};

export default hook;
