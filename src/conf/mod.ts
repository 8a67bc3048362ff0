/**
 * Identities: `PeerId`, `Configuration` and `ANY_PEER`.
 *
 * @example
 * ```ts
 * import { Configuration } from "@webraft/raft/conf";
 * import assert from "node:assert/strict";
 * assert.equal(Configuration.parse("a:1,b:2,").size, 2);
 * ```
 *
 * @module
 */
export { ANY_PEER, PeerId, type PeerRole } from "./peer_id.ts";
export { Configuration, type ConfigurationDiff } from "./configuration.ts";
