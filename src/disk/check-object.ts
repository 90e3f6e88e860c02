/**
 * Checking one object file against its name: read it with one reused buffer, hash it with
 * node:crypto, compare hash and length. A failed check is read once more before it is called
 * bad (restic's rule, RELIABILITY.md failure mode 9): a transient glitch that reads right the
 * second time is "ok on second read" and the copy is kept. ENOENT is "missing"; every other
 * error (EIO above all) is "bad", never "missing". Synchronous; one checker per thread.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { describeError, errnoCode } from '../core/errors.js';

/** The file operations a check uses; the default is node:fs. Tests wrap it to inject faults. */
export interface ObjectReader {
  open(path: string): number;
  read(fd: number, buf: Buffer, position: number): number;
  close(fd: number): void;
}

/** node:fs, opening without following a symlink (a disk is untrusted). */
export const fsReader: ObjectReader = {
  open: (p) => fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW),
  read: (fd, buf, position) => fs.readSync(fd, buf, 0, buf.length, position),
  close: (fd) => fs.closeSync(fd),
};

/** Outcome of one check. */
export type CheckResult =
  | { status: 'ok'; bytesRead: number }
  | { status: 'ok-second-read'; bytesRead: number; firstProblem: string }
  | { status: 'bad'; bytesRead: number; problem: string; untouchable?: boolean }
  | { status: 'missing'; bytesRead: number };

type ReadOutcome = { ok: true; bytes: number } | { ok: false; bytes: number; problem: string; missing: boolean };

/** Reads and hashes objects with one reused buffer. */
export class ObjectChecker {
  private readonly buf: Buffer;

  constructor(
    private readonly reader: ObjectReader = fsReader,
    bufferBytes = 1024 * 1024,
  ) {
    this.buf = Buffer.allocUnsafe(bufferBytes);
  }

  /** Check the file `p` that must hash to `hash` and hold `sizeBytes` bytes. */
  check(p: string, hash: string, sizeBytes: number): CheckResult {
    const first = this.readOnce(p, hash, sizeBytes);
    if (first.ok) return { status: 'ok', bytesRead: first.bytes };
    if (first.missing) return { status: 'missing', bytesRead: 0 };
    const second = this.readOnce(p, hash, sizeBytes);
    const bytesRead = first.bytes + second.bytes;
    if (second.ok) return { status: 'ok-second-read', bytesRead, firstProblem: first.problem };
    if (second.missing) return { status: 'missing', bytesRead };
    return { status: 'bad', bytesRead, problem: second.problem };
  }

  private readOnce(p: string, hash: string, sizeBytes: number): ReadOutcome {
    let fd: number;
    try {
      fd = this.reader.open(p);
    } catch (err) {
      const code = errnoCode(err);
      return { ok: false, bytes: 0, problem: `cannot open: ${describeError(err)}`, missing: code === 'ENOENT' };
    }
    let pos = 0;
    try {
      const h = createHash('sha256');
      for (;;) {
        const n = this.reader.read(fd, this.buf, pos);
        if (n === 0) break;
        h.update(this.buf.subarray(0, n));
        pos += n;
      }
      const got = h.digest('hex');
      if (pos !== sizeBytes) {
        return {
          ok: false,
          bytes: pos,
          problem: `${pos} bytes instead of ${sizeBytes} (truncated or grown)`,
          missing: false,
        };
      }
      if (got !== hash) return { ok: false, bytes: pos, problem: `content hashes to ${got}`, missing: false };
      return { ok: true, bytes: pos };
    } catch (err) {
      return { ok: false, bytes: pos, problem: `unreadable: ${describeError(err)}`, missing: false };
    } finally {
      try {
        this.reader.close(fd);
      } catch {
        // a close error after a read error says nothing new
      }
    }
  }
}
