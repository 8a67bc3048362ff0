/**
 * webraft: a Raft consensus library for Deno, Bun and Node, modelled on braft's server API.
 *
 * @example
 * ```ts
 * import { Configuration, PeerId, RaftError, Status } from "@webraft/raft";
 * import assert from "node:assert/strict";
 *
 * const conf = Configuration.parse("127.0.0.1:8100:0,127.0.0.1:8101:0,127.0.0.1:8102:0");
 * assert.ok(conf.contains(PeerId.parse("127.0.0.1:8101")));
 * assert.equal(new Status(RaftError.EPERM, "Not leader").ok(), false);
 * ```
 *
 * @module
 */
export {
  type Bytes,
  ChunkChain,
  crc32c,
  crc32cUpdate,
  toBytes,
  toChunkChain,
} from "./src/bytes/mod.ts";
export {
  ANY_PEER,
  Configuration,
  type ConfigurationDiff,
  PeerId,
  type PeerRole,
} from "./src/conf/mod.ts";
export {
  errorName,
  RaftError,
  type RaftErrorCode,
  RaftException,
  Status,
} from "./src/errors/status.ts";
