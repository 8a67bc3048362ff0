/**
 * CRC32C (Castagnoli), the checksum of log records and snapshot files.
 *
 * @module
 */

import { ChunkChain } from "./chunk_chain.ts";

const POLY = 0x82f63b78; // reflected Castagnoli polynomial
const TABLES = buildTables();

function buildTables(): Uint32Array[] {
  const tables: Uint32Array[] = [];
  const t0 = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t0[n] = c >>> 0;
  }
  tables.push(t0);
  // Slicing-by-8: table k gives the CRC of a byte followed by k zero bytes.
  for (let k = 1; k < 8; k++) {
    const prev = tables[k - 1]!;
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      const p = prev[n]!;
      t[n] = (p >>> 8) ^ t0[p & 0xff]!;
    }
    tables.push(t);
  }
  return tables;
}

/**
 * Continues a CRC32C over more bytes. Start with `crc = 0`; feed pieces in order.
 *
 * @param crc The CRC of the bytes so far (0 for none).
 * @param data The next bytes.
 * @returns The CRC of everything fed so far.
 *
 * @example
 * ```ts
 * import { crc32c, crc32cUpdate } from "@webraft/raft";
 * import assert from "node:assert/strict";
 * const text = new TextEncoder().encode("123456789");
 * assert.equal(crc32cUpdate(crc32cUpdate(0, text.subarray(0, 4)), text.subarray(4)), crc32c(text));
 * ```
 */
export function crc32cUpdate(crc: number, data: Uint8Array): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES as [
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
  ];
  let c = ~crc >>> 0;
  let i = 0;
  const n = data.length;
  const end8 = n - (n & 7);
  while (i < end8) {
    const lo = (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)) ^ c;
    c = t7[lo & 0xff]! ^ t6[(lo >>> 8) & 0xff]! ^ t5[(lo >>> 16) & 0xff]! ^ t4[lo >>> 24]! ^
      t3[data[i + 4]!]! ^ t2[data[i + 5]!]! ^ t1[data[i + 6]!]! ^ t0[data[i + 7]!]!;
    i += 8;
  }
  while (i < n) c = (c >>> 8) ^ t0[(c ^ data[i++]!) & 0xff]!;
  return ~c >>> 0;
}

/**
 * Computes the CRC32C (Castagnoli, as in iSCSI and ext4) of bytes or a chain.
 *
 * @param data The bytes to checksum.
 * @param seed A previous CRC to continue from (default 0).
 * @returns The unsigned 32-bit checksum.
 *
 * @example RFC 3720 test vector
 * ```ts
 * import { crc32c } from "@webraft/raft";
 * import assert from "node:assert/strict";
 * assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
 * ```
 */
export function crc32c(data: Uint8Array | ChunkChain, seed = 0): number {
  if (data instanceof ChunkChain) {
    let crc = seed;
    for (const chunk of data.chunks()) crc = crc32cUpdate(crc, chunk);
    return crc;
  }
  return crc32cUpdate(seed, data);
}
