/**
 * CRC32C (Castagnoli), the checksum of log records and snapshot files.
 *
 * @module
 */

import { ChunkChain } from "./chunk_chain.ts";

const POLY = 0x82f63b78; // reflected Castagnoli polynomial
const TABLES = buildTables();
/** The 16 tables of slicing-by-16, table k at `k * 256`. */
const FLAT = new Uint32Array(256 * 16);
/** Words read from an `Int32Array` view are little-endian (every mainstream platform). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function buildTables(): Uint32Array[] {
  const tables: Uint32Array[] = [];
  const t0 = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t0[n] = c >>> 0;
  }
  tables.push(t0);
  // Slicing-by-N: table k gives the CRC of a byte followed by k zero bytes.
  for (let k = 1; k < 16; k++) {
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
TABLES.forEach((t, k) => FLAT.set(t, k * 256));

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
  if (LITTLE_ENDIAN && n >= 64) {
    // Slicing-by-16 over aligned 32-bit words: a quarter of the loads of the byte loop.
    while (((data.byteOffset + i) & 3) !== 0) c = (c >>> 8) ^ t0[(c ^ data[i++]!) & 0xff]!;
    const words = new Int32Array(data.buffer, data.byteOffset + i, (n - i) >>> 2);
    const end = words.length - (words.length & 3);
    const t = FLAT;
    for (let w = 0; w < end; w += 4) {
      const a = words[w]! ^ c, b = words[w + 1]!, d = words[w + 2]!, e = words[w + 3]!;
      c = t[3840 + (a & 0xff)]! ^ t[3584 + ((a >>> 8) & 0xff)]! ^
        t[3328 + ((a >>> 16) & 0xff)]! ^ t[3072 + (a >>> 24)]! ^
        t[2816 + (b & 0xff)]! ^ t[2560 + ((b >>> 8) & 0xff)]! ^
        t[2304 + ((b >>> 16) & 0xff)]! ^ t[2048 + (b >>> 24)]! ^
        t[1792 + (d & 0xff)]! ^ t[1536 + ((d >>> 8) & 0xff)]! ^
        t[1280 + ((d >>> 16) & 0xff)]! ^ t[1024 + (d >>> 24)]! ^
        t[768 + (e & 0xff)]! ^ t[512 + ((e >>> 8) & 0xff)]! ^ t[256 + ((e >>> 16) & 0xff)]! ^
        t[e >>> 24]!;
    }
    i += end * 4;
    c >>>= 0;
  }
  const end8 = i + ((n - i) & ~7);
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
