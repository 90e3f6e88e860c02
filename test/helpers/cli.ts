/** Run the built CLI (`bin/run.js`, from dist) as a real child process. */
import { type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';

export const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..');
export const CLI = path.join(REPO_ROOT, 'bin', 'run.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `distbackup ARGS` with the data folder `dataDir`; waits for it to exit. */
export function runCli(dataDir: string, args: string[], env: NodeJS.ProcessEnv = {}): CliResult {
  const r: SpawnSyncReturns<string> = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, DISTBACKUP_PATH: dataDir, NO_COLOR: '1', ...env },
    maxBuffer: 64 * 1024 * 1024,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Run and parse stdout as the `--json` document. */
export function runCliJson<T = unknown>(
  dataDir: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): CliResult & { json: T } {
  const r = runCli(dataDir, [...args, '--json'], env);
  let json: T;
  try {
    json = JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${r.code}): ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return { ...r, json };
}

/** Start the CLI without waiting (for kill tests); resolves with the exit code or signal. */
export function startCli(dataDir: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, DISTBACKUP_PATH: dataDir, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
    (resolve) => {
      child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
    },
  );
  return { child, done };
}
