/**
 * The one error family of distbackup. Every refusal or failure that ends a command is a
 * `DistbackupError` with a stable `code` and the process exit code of SPEC §3; per-file
 * problems are not thrown but collected in results (`errors`, `skipped`, `bad`).
 */

/** Process exit codes of SPEC §3. */
export const ExitCode = {
  ok: 0,
  error: 1,
  refused: 2,
  verifyBad: 3,
  restoreIncomplete: 4,
  /** Ctrl-C: what was durable is kept (the shell's 128 + SIGINT, as sync, verify and restore). */
  interrupted: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Base class: a one-line message naming the path and the cause, a stable code, an exit code. */
export class DistbackupError extends Error {
  readonly code: string;
  readonly exitCode: ExitCodeValue;
  readonly path: string | undefined;

  constructor(
    message: string,
    options: { code?: string; exitCode?: ExitCodeValue; path?: string; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code ?? 'runtime';
    this.exitCode = options.exitCode ?? ExitCode.error;
    this.path = options.path;
  }
}

/** Bad flags or arguments (exit 1). */
export class UsageError extends DistbackupError {
  constructor(message: string, options: { code?: string; path?: string } = {}) {
    super(message, { code: options.code ?? 'usage', exitCode: ExitCode.error, ...pathOpt(options.path) });
  }
}

/** A refusal that protects data: wrong disk, lock held, would lose the last copy (exit 2). */
export class RefusedError extends DistbackupError {
  constructor(message: string, options: { code?: string; path?: string; cause?: unknown } = {}) {
    super(message, {
      code: options.code ?? 'refused',
      exitCode: ExitCode.refused,
      ...pathOpt(options.path),
      ...(options.cause === undefined ? {} : { cause: options.cause }),
    });
  }
}

function pathOpt(path: string | undefined): { path?: string } {
  return path === undefined ? {} : { path };
}

/** The errno code of a Node system error (`ENOENT`, `EIO`…), or undefined. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EIO: 'input/output error',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'file name too long',
  EEXIST: 'file exists',
  EFBIG: 'file too large',
  EMFILE: 'too many open files',
  ENOTCONN: 'transport endpoint is not connected (disk unplugged?)',
  EILSEQ: 'invalid byte sequence in name',
  EINVAL: 'invalid argument',
  EBUSY: 'device or resource busy',
  EDQUOT: 'disk quota exceeded',
};

/** One-line description of a system error: `EIO (input/output error)`, else the message. */
export function describeError(err: unknown): string {
  const code = errnoCode(err);
  if (code !== undefined && /^E[A-Z0-9]+$/.test(code)) {
    const text = ERRNO_TEXT[code];
    return text === undefined ? code : `${code} (${text})`;
  }
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Wrap any error as a DistbackupError naming `path`, keeping the original as `cause`. */
export function fileError(path: string, err: unknown, what?: string): DistbackupError {
  if (err instanceof DistbackupError) return err;
  const prefix = what === undefined ? path : `${path}: ${what}`;
  return new DistbackupError(`${prefix}: ${describeError(err)}`, {
    code: errnoCode(err) ?? 'runtime',
    path,
    cause: err,
  });
}
