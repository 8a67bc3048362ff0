/**
 * The consensus core: Raft as a pure, deterministic state machine (`RaftCore`), its
 * messages and `Ready` batches, the storage view it reads (`CoreStorage`) and an in-memory
 * implementation (`MemoryCoreStorage`).
 *
 * @example
 * ```ts
 * import { MemoryCoreStorage, RaftCore } from "./mod.ts";
 * import { Configuration } from "../conf/configuration.ts";
 * import { Prng } from "../util/prng.ts";
 * import assert from "node:assert/strict";
 * const core = new RaftCore({
 *   id: "a:1:0",
 *   storage: new MemoryCoreStorage(),
 *   prng: new Prng(7),
 *   initialConf: { peers: Configuration.parse("a:1:0") },
 * });
 * assert.equal(core.term(), 1);
 * ```
 *
 * @module
 */
export {
  type ConfChangeRequest,
  type FollowerStatus,
  type ProposeResult,
  RaftCore,
  type RaftCoreOptions,
} from "./raft_core.ts";
export { type ConfigurationRecord, type CoreStorage, MemoryCoreStorage } from "./storage.ts";
export type {
  AppendEntriesMessage,
  AppendEntriesRespMessage,
  ConfChangeResult,
  HardState,
  InstallSnapshotMessage,
  InstallSnapshotRespMessage,
  Message,
  MessageBase,
  MessageType,
  PreVoteMessage,
  ReadState,
  Ready,
  RequestVoteMessage,
  Role,
  SnapshotMeta,
  SoftState,
  TimeoutNowMessage,
  TimeoutNowRespMessage,
  VoteResponseMessage,
} from "./types.ts";
export { type ConfigurationPayload, EntryType, type LogEntry, type LogId } from "./entry.ts";
export { Prng } from "../util/prng.ts";
