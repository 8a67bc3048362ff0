/**
 * webraft: a Raft consensus library for Deno, Bun and Node, modelled on braft's server API.
 *
 * Write a {@linkcode StateMachine}, create a {@linkcode Node}, and `apply()` tasks: webraft
 * replicates, persists, snapshots, elects leaders and changes membership.
 *
 * @example A three-node group on an in-process network
 * ```ts
 * import { type Iterator, MemoryNetwork, Node, StateMachine, Status } from "@webraft/raft";
 * import assert from "node:assert/strict";
 *
 * class Counter extends StateMachine {
 *   value = 0;
 *   onApply(iter: Iterator): void {
 *     for (; iter.valid(); iter.next()) {
 *       this.value += iter.data().toUint8Array()[0] ?? 0;
 *       iter.done()?.run(Status.OK());
 *     }
 *   }
 * }
 *
 * const net = new MemoryNetwork();
 * const peers = ["127.0.0.1:8100:0", "127.0.0.1:8101:0", "127.0.0.1:8102:0"];
 * const nodes = await Promise.all(peers.map(async (peer, i) => {
 *   const node = new Node("counter", peer);
 *   await node.init({
 *     fsm: new Counter(),
 *     initialConf: peers.join(","),
 *     logUri: `memory://mod-doc/${i}/log`,
 *     raftMetaUri: `memory://mod-doc/${i}/meta`,
 *     transport: net.transport(`127.0.0.1:${8100 + i}`),
 *     electionTimeoutMs: 200,
 *   });
 *   return node;
 * }));
 * const leader = await Promise.race(nodes.map((n) => n.waitLeader().then(() => n)));
 * await leader.applyAsync(new Uint8Array([2]));
 * assert.ok(leader.isLeader());
 * for (const n of nodes) await n.shutdown();
 * await net.close();
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
  ErrorType,
  RaftError,
  type RaftErrorCode,
  RaftException,
  Status,
} from "./src/errors/status.ts";
export {
  type ConfigurationPayload,
  EntryType,
  type LogEntry,
  type LogId,
} from "./src/core/entry.ts";
export * as cli from "./src/cli/mod.ts";
export type { CliCaller, CliOptions, ConfigurationChange } from "./src/cli/mod.ts";
export { Node } from "./src/node/node.ts";
export { bootstrap } from "./src/node/bootstrap.ts";
export {
  type BootstrapOptions,
  type LeaderLeaseStatus,
  LeaseState,
  type NodeOptions,
  NodeState,
  nodeStateName,
  type NodeStatus,
  type PeerStatus,
  type UserLog,
} from "./src/node/options.ts";
export { type LeaderChangeContext, StateMachine } from "./src/node/state_machine.ts";
export { type SnapshotThrottle, ThroughputSnapshotThrottle } from "./src/node/snapshot_throttle.ts";
export type { Iterator } from "./src/node/iterator.ts";
export {
  type Closure,
  closure,
  type PromiseClosure,
  promiseClosure,
  type Task,
} from "./src/node/closure.ts";
export { type Clock, ManualClock, systemClock, type TimerHandle } from "./src/util/clock.ts";
export {
  FLAG_INFO,
  type FlagInfo,
  type FlagInfoTable,
  flags,
  isFlagName,
  parseFlagValue,
  type RaftFlags,
  setFlag,
} from "./src/util/flags.ts";
export type {
  FileMeta,
  SnapshotMeta,
  SnapshotReader,
  SnapshotWriter,
} from "./storage/snapshot/snapshot.ts";
export { registerLogStorage, registerMetaStorage, registerSnapshotStorage } from "./storage/uri.ts";
export { type GCOptions, gcRaftData } from "./storage/gc.ts";
export type { FileHandle, FileInfo, FileSystem, OpenOptions } from "./storage/fs/file_system.ts";
export type {
  LogStorageFactory,
  MetaStorageFactory,
  SnapshotStorageFactory,
} from "./storage/uri.ts";
export type { LogStorage, LogStorageOptions } from "./storage/log/log_storage.ts";
export type {
  MetaStorageOptions,
  RaftMetaStorage,
  TermAndVotedFor,
} from "./storage/meta/meta_storage.ts";
export type { SnapshotStorage } from "./storage/snapshot/snapshot.ts";
export type { SnapshotStorageOptions } from "./storage/snapshot/local_snapshot_storage.ts";
export type { CallOptions, Transport, TransportHandler } from "./transports/transport.ts";
export {
  addService,
  type AddServiceOptions,
  type AnyHono,
  httpCall,
  type HttpCallOptions,
  HttpTransport,
  type HttpTransportOptions,
  type HttpTransportStats,
  isServing,
  mountTransport,
  RaftService,
  type RouteContext,
  type RouteHandler,
  serve,
  type ServeHandle,
  type ServeOptions,
  type ServerSocket,
  type ServerSocketEvents,
} from "./transports/http/mod.ts";
export type { DescribableNode } from "./transports/http/status_routes.ts";
export {
  MemoryNetwork,
  type MemoryNetworkOptions,
  type MemoryNetworkStats,
} from "./transports/memory/memory_network.ts";
