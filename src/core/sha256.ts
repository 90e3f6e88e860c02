/**
 * SHA-256 (hex) of a buffer or string in one call: `crypto.hash` (Node 20.12 and later) skips the
 * Hash object that `createHash` builds for every small input; older Node 20 releases get the
 * same result from `createHash`. Any thread.
 */
import * as crypto from 'node:crypto';

/** SHA-256 of `data` (a string is hashed as UTF-8), as 64 hex digits. */
export function sha256Hex(data: Buffer | string): string {
  return typeof crypto.hash === 'function'
    ? crypto.hash('sha256', data, 'hex')
    : crypto.createHash('sha256').update(data).digest('hex');
}
