/**
 * What skips one entry of a restore (each lands in its own list of the result document), and
 * what stops the file loop. Internal to `src/restore/`.
 */

/** A path refused (unsafe, or a symlink or non-folder on its way): listed in `refused`. */
export class PathRefused extends Error {}
/** Something is already at the target and may not be replaced: listed in `existing`. */
export class ExistsError extends Error {}
/** The disk's object is missing, damaged or not what it should be: listed in `errors`. */
export class BadObject extends Error {}
/** Thrown out of a copy when the abort signal fired. */
export class Interrupted extends Error {}
/**
 * The early write-back (fdatasync) of a file just written failed: the batch it belongs to
 * cannot be made durable, so the run stops as when the batch's syncfs fails (`batch.ts`).
 */
export class WriteBackError extends Error {
  constructor(readonly errnoError: unknown) {
    super('write-back failed');
  }
}
