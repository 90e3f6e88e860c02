/**
 * `verify --errors FILE`: one tab-separated line per bad or missing object, after a header
 * line: disk name, object path relative to the disk folder, catalogued size in bytes, one
 * virtual path of a current file with that content (percent-encoded like the manifest: `%09`,
 * `%0A`, `%25` and bytes that are not UTF-8; empty when no current file has it), and what was
 * wrong (and, outside a dry run, what was done about it).
 *
 * Lines are streamed to a temp file beside FILE (memory stays bounded however many objects are
 * bad), which is fsynced and renamed over FILE at the end of the run, interrupted or not: FILE
 * is always a complete list, never a torn one, and a run that finds nothing leaves a file
 * with the header alone, so an old list never outlives the run that replaced it.
 */
import * as fs from 'node:fs';
import { renameDurable, tempNameFor, writeFully } from '../core/durable.js';
import { fileError } from '../core/errors.js';
import { percentEncode } from '../core/vpath.js';

/** The header line (column names). */
export const ERRORS_HEADER = 'disk\tobject\tsize\tpath\tproblem';

/** One line of the file. */
export interface ErrorLine {
  disk: string;
  /** Path relative to the disk folder (`distbackup-objects/abc/<hash>`). */
  object: string;
  sizeBytes: number;
  /** A virtual path (bytes) of a file with this content, if any. */
  vpath: Buffer | undefined;
  problem: string;
}

/** The open list; `add` lines, then `finish` (durable rename) or `abandon`. Not thread-safe. */
export class ErrorsFile {
  private readonly tmp: string;
  private fd: number | undefined;
  private pos = 0;
  /** Lines written so far. */
  lines = 0;

  constructor(readonly target: string) {
    this.tmp = tempNameFor(target);
    try {
      this.fd = fs.openSync(this.tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644);
    } catch (err) {
      throw fileError(target, err, 'cannot write the errors file');
    }
    this.write(`${ERRORS_HEADER}\n`);
  }

  /** Append one line. */
  add(e: ErrorLine): void {
    const vpath = e.vpath === undefined ? '' : percentEncode(e.vpath);
    this.write(`${[field(e.disk), e.object, String(e.sizeBytes), vpath, field(e.problem)].join('\t')}\n`);
    this.lines += 1;
  }

  /** fsync, rename over the target, fsync its folder. */
  finish(): void {
    const fd = this.fd;
    if (fd === undefined) return;
    this.fd = undefined;
    try {
      fs.fsyncSync(fd);
    } catch (err) {
      fs.closeSync(fd);
      fs.rmSync(this.tmp, { force: true });
      throw fileError(this.target, err, 'cannot write the errors file');
    }
    fs.closeSync(fd);
    try {
      renameDurable(this.tmp, this.target);
    } catch (err) {
      throw fileError(this.target, err, 'cannot write the errors file');
    }
  }

  /** Remove the temp file (the run failed before anything was decided). */
  abandon(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
    fs.rmSync(this.tmp, { force: true });
  }

  private write(text: string): void {
    if (this.fd === undefined) return;
    const buf = Buffer.from(text, 'utf8');
    try {
      writeFully(this.fd, buf, this.pos);
    } catch (err) {
      throw fileError(this.target, err, 'cannot write the errors file');
    }
    this.pos += buf.length;
  }
}

/** A free-text field on one TSV line: tabs, line breaks and other control characters become spaces. */
function field(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: replacing them is the point
  return text.replace(/[\u0000-\u001f\u007f]/g, ' ');
}
