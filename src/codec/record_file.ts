/**
 * A checksummed container for small metadata records (log meta, raft meta, snapshot meta).
 *
 * Layout: magic `"WRF1"` (4 bytes), body length (uint32 BE), CRC32C of the body (uint32 BE),
 * then the body: a CBOR-encoded value. Unlike braft's ProtoBufFile, a torn or flipped byte is
 * always detected.
 *
 * @module
 */

import { decode, encode } from "cbor-x";
import { crc32cUpdate } from "../bytes/crc32c.ts";

const MAGIC = [0x57, 0x52, 0x46, 0x31] as const; // "WRF1"
/** Size of the record file header. */
export const RECORD_HEADER_SIZE = 12;

/**
 * Encodes a value as a checksummed record.
 *
 * @param value Any CBOR-encodable value.
 * @returns The record bytes.
 *
 * @example
 * ```ts
 * import { decodeRecord, encodeRecord } from "./record_file.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(decodeRecord(encodeRecord({ term: 3 })), { term: 3 });
 * ```
 */
export function encodeRecord(value: unknown): Uint8Array {
  const body: Uint8Array = encode(value);
  const out = new Uint8Array(RECORD_HEADER_SIZE + body.byteLength);
  out.set(MAGIC, 0);
  const view = new DataView(out.buffer);
  view.setUint32(4, body.byteLength);
  view.setUint32(8, crc32cUpdate(0, body));
  out.set(body, RECORD_HEADER_SIZE);
  return out;
}

/**
 * Decodes a checksummed record.
 *
 * @param bytes The record bytes.
 * @returns The value.
 * @throws {RangeError} If the magic, length or checksum do not match, or the body is not CBOR
 *   (the message says which).
 */
export function decodeRecord(bytes: Uint8Array): unknown {
  if (bytes.byteLength < RECORD_HEADER_SIZE || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new RangeError("bad magic at offset 0");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(4);
  if (RECORD_HEADER_SIZE + length !== bytes.byteLength) {
    throw new RangeError(
      `length ${length} at offset 4 does not match file size ${bytes.byteLength}`,
    );
  }
  const body = bytes.subarray(RECORD_HEADER_SIZE);
  if (crc32cUpdate(0, body) !== view.getUint32(8)) {
    throw new RangeError(`checksum mismatch at offset ${RECORD_HEADER_SIZE}`);
  }
  try {
    return decode(body);
  } catch (e) {
    // A right checksum over bytes that are not CBOR (written by something else).
    throw new RangeError(
      `body at offset ${RECORD_HEADER_SIZE} is not valid CBOR (${
        e instanceof Error ? e.message : String(e)
      })`,
    );
  }
}
