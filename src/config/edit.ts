/**
 * `config edit [map|path [VPATH]|disks]`: the configuration (or one section) in the user's
 * editor, validated and applied like `config import` when saved. An invalid edit is not lost:
 * the user chooses to edit it again, to start again from the saved configuration (revert), or
 * to cancel (nothing changes). Saving the text unchanged changes nothing.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Catalog } from '../catalog/db.js';
import { DistbackupError, UsageError } from '../core/errors.js';
import { normalizeVpath } from '../core/vpath.js';
import {
  type ConfigDoc,
  configText,
  exportConfig,
  type ImportSummary,
  importConfig,
  parseConfigText,
} from './config.js';

/** Which part of the configuration to edit. */
export type EditSection = 'all' | 'map' | 'path' | 'disks';

/** What the loop needs from the terminal; injectable for tests. */
export interface EditIo {
  /** Open `file` in the editor and wait for it to exit; throws when the editor fails. */
  edit(file: string): void;
  /** Ask what to do after an invalid edit. */
  choose(): Promise<'edit' | 'revert' | 'cancel'>;
  say(line: string): void;
}

export interface EditResult {
  outcome: 'applied' | 'unchanged' | 'cancelled';
  summary?: ImportSummary;
}

const SECTION_KEYS: Record<EditSection, ReadonlyArray<keyof ConfigDoc>> = {
  all: ['path_map', 'path_config', 'path_prefix', 'disks'],
  map: ['path_map'],
  path: ['path_config', 'path_prefix'],
  disks: ['disks'],
};

/** Run the edit loop on `cat` for `section` (`path` may be narrowed to the subtree `vpath`). */
export async function editConfig(
  cat: Catalog,
  section: EditSection,
  vpath: string | undefined,
  io: EditIo,
  options: { dryRun?: boolean } = {},
): Promise<EditResult> {
  if (vpath !== undefined && section !== 'path') throw new UsageError('a VPATH is only given with the path section');
  const prefix = vpath === undefined ? undefined : normalizeVpath(vpath);
  const sections =
    section === 'all'
      ? undefined
      : section === 'map'
        ? (['path_map'] as const)
        : section === 'path'
          ? (['path_config'] as const)
          : (['disks'] as const);
  const original = configText(
    exportConfig(cat, {
      ...(sections === undefined ? {} : { sections }),
      ...(prefix === undefined ? {} : { pathPrefix: prefix }),
    }),
  );
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'distbackup-edit-'));
  const file = path.join(dir, section === 'all' ? 'distbackup-config.json' : `distbackup-${section}.json`);
  try {
    let text = original;
    for (;;) {
      fs.writeFileSync(file, text, { mode: 0o600 });
      io.edit(file);
      const edited = fs.readFileSync(file, 'utf8');
      if (edited === original) {
        io.say('no changes');
        return { outcome: 'unchanged' };
      }
      try {
        const doc = parseConfigText(edited, path.basename(file));
        for (const k of Object.keys(doc)) {
          if (!SECTION_KEYS[section].includes(k as keyof ConfigDoc)) {
            throw new UsageError(`${path.basename(file)}: '${k}' does not belong to the ${section} section`);
          }
        }
        if (prefix !== undefined && doc.path_config !== undefined) doc.path_prefix = prefix;
        const summary = importConfig(cat, doc, options);
        return { outcome: 'applied', summary };
      } catch (err) {
        if (!(err instanceof UsageError)) throw err;
        io.say(`invalid: ${err.message}`);
        const choice = await io.choose();
        if (choice === 'cancel') {
          io.say('cancelled: nothing changed');
          return { outcome: 'cancelled' };
        }
        text = choice === 'revert' ? original : edited;
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The editor command: $VISUAL, else $EDITOR, else vi. */
export function editorCommand(env: NodeJS.ProcessEnv = process.env): string {
  return env.VISUAL?.trim() || env.EDITOR?.trim() || 'vi';
}

/** Run `editor` (a shell command line, e.g. `code -w`) on `file`, on this terminal. */
export function runEditor(editor: string, file: string): void {
  // Ctrl-C belongs to the editor while it runs (vim leaves insert mode with it), as git lets it:
  // with a listener of its own, this process is not ended by the one the terminal sends it too.
  const ignore = (): void => {};
  process.on('SIGINT', ignore);
  let r: ReturnType<typeof spawnSync>;
  try {
    r = spawnSync('sh', ['-c', `${editor} "$1"`, 'sh', file], { stdio: 'inherit' });
  } finally {
    // After the signals that came meanwhile are handled (they wait for the event loop).
    setImmediate(() => process.removeListener('SIGINT', ignore));
  }
  if (r.error !== undefined) throw new DistbackupError(`cannot run the editor '${editor}': ${r.error.message}`);
  if (r.status !== 0) {
    throw new DistbackupError(`the editor '${editor}' exited with code ${r.status ?? r.signal}; nothing changed`);
  }
}
