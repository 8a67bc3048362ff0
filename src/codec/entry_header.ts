/**
 * The fixed binary header in front of every log entry in a segment file.
 *
 * Layout (32 bytes, big-endian):
 *
 * | Offset | Size | Field                                            |
 * |--------|------|--------------------------------------------------|
 * | 0      | 2    | magic `0x5752` ("WR")                            |
 * | 2      | 1    | format version (1)                               |
 * | 3      | 1    | entry type (1 NO_OP, 2 DATA, 3 CONFIGURATION)    |
 * | 4      | 8    | term (uint64)                                    |
 * | 12     | 8    | index (uint64)                                   |
 * | 20     | 4    | payload length (uint32)                          |
 * | 24     | 4    | CRC32C of the payload                            |
 * | 28     | 4    | CRC32C of bytes 0..27                            |
 *
 * @module
 */

import { crc32cUpdate } from "../bytes/crc32c.ts";

/** Size in bytes of an encoded {@linkcode EntryHeader}. */
export const ENTRY_HEADER_SIZE = 32;
/** The two magic bytes that open every entry header. */
export const ENTRY_MAGIC = 0x5752;
/** The header format version written by this code. */
export const ENTRY_FORMAT_VERSION = 1;

/** The decoded fields of an entry header. */
export interface EntryHeader {
  /** Entry type (see `EntryType`). */
  type: number;
  /** Term of the entry. */
  term: number;
  /** Index of the entry. */
  index: number;
  /** Payload length in bytes. */
  dataLength: number;
  /** CRC32C of the payload. */
  dataCrc: number;
}

const TWO_32 = 4294967296;

/**
 * Writes an entry header into `target` at `offset`.
 *
 * @param target Destination buffer (needs {@linkcode ENTRY_HEADER_SIZE} bytes at `offset`).
 * @param offset Where to write.
 * @param header The fields.
 *
 * @example
 * ```ts
 * import { decodeEntryHeader, encodeEntryHeader, ENTRY_HEADER_SIZE } from "./entry_header.ts";
 * import assert from "node:assert/strict";
 * const buf = new Uint8Array(ENTRY_HEADER_SIZE);
 * encodeEntryHeader(buf, 0, { type: 2, term: 3, index: 7, dataLength: 5, dataCrc: 9 });
 * assert.equal(decodeEntryHeader(buf, 0)?.index, 7);
 * ```
 */
export function encodeEntryHeader(target: Uint8Array, offset: number, header: EntryHeader): void {
  const view = new DataView(target.buffer, target.byteOffset + offset, ENTRY_HEADER_SIZE);
  view.setUint16(0, ENTRY_MAGIC);
  view.setUint8(2, ENTRY_FORMAT_VERSION);
  view.setUint8(3, header.type);
  view.setUint32(4, Math.floor(header.term / TWO_32));
  view.setUint32(8, header.term >>> 0);
  view.setUint32(12, Math.floor(header.index / TWO_32));
  view.setUint32(16, header.index >>> 0);
  view.setUint32(20, header.dataLength);
  view.setUint32(24, header.dataCrc);
  const crc = crc32cUpdate(0, target.subarray(offset, offset + 28));
  view.setUint32(28, crc);
}

/**
 * Decodes an entry header, verifying its magic, version and header checksum.
 *
 * @param source Buffer holding at least {@linkcode ENTRY_HEADER_SIZE} bytes at `offset`.
 * @param offset Where the header starts.
 * @returns The fields, or `null` when the bytes are not a valid header.
 */
export function decodeEntryHeader(source: Uint8Array, offset: number): EntryHeader | null {
  if (source.byteLength - offset < ENTRY_HEADER_SIZE) return null;
  const view = new DataView(source.buffer, source.byteOffset + offset, ENTRY_HEADER_SIZE);
  if (view.getUint16(0) !== ENTRY_MAGIC || view.getUint8(2) !== ENTRY_FORMAT_VERSION) return null;
  const crc = crc32cUpdate(0, source.subarray(offset, offset + 28));
  if (crc !== view.getUint32(28)) return null;
  return {
    type: view.getUint8(3),
    term: view.getUint32(4) * TWO_32 + view.getUint32(8),
    index: view.getUint32(12) * TWO_32 + view.getUint32(16),
    dataLength: view.getUint32(20),
    dataCrc: view.getUint32(24),
  };
}
