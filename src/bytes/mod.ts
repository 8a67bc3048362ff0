/**
 * Bytes: `ChunkChain` (braft's IOBuf in web-standard form) and CRC32C.
 *
 * @example
 * ```ts
 * import { ChunkChain, crc32c } from "@webraft/raft/bytes";
 * import assert from "node:assert/strict";
 * assert.equal(crc32c(ChunkChain.from("123456789")), 0xe3069283);
 * ```
 *
 * @module
 */
export { type Bytes, ChunkChain, toBytes, toChunkChain } from "./chunk_chain.ts";
export { crc32c, crc32cUpdate } from "./crc32c.ts";
