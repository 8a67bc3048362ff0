/**
 * Joining byte arrays.
 *
 * @module
 */

/**
 * Copies `parts` into one new array.
 *
 * @param parts The arrays, in order.
 * @returns Their bytes, joined.
 *
 * @example
 * ```ts
 * import { concatBytes } from "./concat.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(concatBytes([new Uint8Array([1]), new Uint8Array([2, 3])]), new Uint8Array([1, 2, 3]));
 * ```
 */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
