/**
 * `NodeOptions`, `BootstrapOptions` and the node-status types `describe()` returns.
 *
 * @module
 */

import type { ChunkChain } from "../bytes/chunk_chain.ts";
import type { Configuration } from "../conf/configuration.ts";
import type { Clock } from "../util/clock.ts";
import type { Transport } from "../../transports/transport.ts";
import type { FileSystem } from "../../storage/fs/file_system.ts";
import type { LogStorage } from "../../storage/log/log_storage.ts";
import type { SnapshotThrottle } from "./snapshot_throttle.ts";
import type { StateMachine } from "./state_machine.ts";

/** Options of `node.init()` (braft's `NodeOptions`). */
export interface NodeOptions {
  /** Follower → candidate timeout in ms (default 1000). Heartbeats go every timeout / 10. */
  electionTimeoutMs?: number;
  /**
   * Lease safety margin for clock drift in ms (default 1000, braft `max_clock_drift_ms`). The
   * leader trusts its lease for less than T − 1 ticks (T = the election timeout; a follower's
   * first tick after a heartbeat may come at once) after sending the heartbeat a quorum last
   * acknowledged, minus this margin. The margin is capped at half of those T − 1 ticks so that
   * a lease stays usable (braft instead lengthens the followers' side, which webraft counts in
   * the core's ticks). Also shown in `describe()`'s vote timer.
   */
  maxClockDriftMs?: number;
  /**
   * How long a new peer may take to catch up in `addPeer`/`changePeers` (braft
   * `catchup_timeout_ms`; default the election timeout). The change fails with ECATCHUP once
   * this long has passed and the peer has not answered for an election timeout.
   */
  catchupTimeoutMs?: number;
  /** Take a snapshot every this many seconds (default 3600; ≤ 0 disables). */
  snapshotIntervalS?: number;
  /** A new peer counts as caught up within this many entries of the leader (default 1000). */
  catchupMargin?: number;
  /** Membership when log and snapshot are both empty. */
  initialConf?: Configuration | string;
  /** The user's state machine (required). */
  fsm: StateMachine;
  /**
   * The node owns the state machine (braft `node_owns_fsm`, default false): after `onShutdown`
   * the node calls the state machine's `[Symbol.asyncDispose]()` or `[Symbol.dispose]()` if it
   * has one (braft deletes it). `onShutdown` itself runs either way, as in braft.
   */
  nodeOwnsFsm?: boolean;
  /**
   * A log storage instance to use instead of `logUri` (braft `log_storage`); the node calls its
   * `init()`.
   */
  logStorage?: LogStorage;
  /** The node closes `logStorage` on shutdown (braft `node_owns_log_storage`, default true). */
  nodeOwnsLogStorage?: boolean;
  /** `local://path` or `memory://name` (required unless `logStorage` is given). */
  logUri?: string;
  /** `local://path` or `memory://name` (required). */
  raftMetaUri: string;
  /**
   * Memory for recent log entries kept for replication and applying, in bytes (default 64 MiB;
   * webraft's own, braft has no such bound). Each entry counts its payload plus a fixed
   * overhead; older entries are read back from the log storage when needed, with as much
   * again for those. A small value trades memory for disk reads.
   */
  logCacheBytes?: number;
  /** `local://path` or `memory://name`; empty disables snapshots. */
  snapshotUri?: string;
  /** Skip downloading snapshot files whose name and checksum match local ones (default false). */
  filterBeforeCopyRemote?: boolean;
  /**
   * The file system `local://` snapshots are stored on (braft `snapshot_file_system_adaptor`;
   * default the runtime's).
   */
  snapshotFileSystemAdaptor?: FileSystem;
  /**
   * Limits snapshot copy throughput, on the serving leader and the downloading follower (braft
   * `snapshot_throttle`, e.g. `new ThroughputSnapshotThrottle(bytesPerSecond, cyclesPerSecond)`;
   * off when `flags.raft_enable_throttle_when_install_snapshot` is false).
   */
  snapshotThrottle?: SnapshotThrottle;
  /** Refuse CLI requests with EACCES (default false). */
  disableCli?: boolean;
  /**
   * Election priority, a non-negative integer (default 1). A node with priority 0 never starts
   * an election on its own timer (it can still be elected through `vote()` or a transfer). A
   * leader hands leadership over to a caught-up voter with a higher priority (followers report
   * theirs in every AppendEntries answer).
   */
  electionPriority?: number;
  /**
   * This node is a witness (braft `NodeOptions.witness`; its PeerId in the configuration
   * should carry role `:1`): it votes and keeps the log's metadata, but its state machine is
   * given no DATA entries and its snapshots hold only the meta. It never campaigns unless
   * `flags.raft_enable_witness_to_leader` (default false).
   */
  witness?: boolean;
  /** Enable the leader lease (default `flags.raft_enable_leader_lease`, which is false). */
  enableLeaderLease?: boolean;
  /**
   * The network endpoint this node is served on. Default: the transport of the raft service
   * registered for the node's endpoint with `addService` (same port); without one, `init`
   * fails with EINVAL. Tests pass a `MemoryNetwork`'s transport.
   */
  transport?: Transport;
  /** Time source (default the system clock; tests may pass a manual one). */
  clock?: Clock;
  /** Seed for election timeouts (default random). */
  seed?: number;
  /**
   * Quiescence (default false): once the group has been idle for an election timeout (all
   * committed, applied and replicated, every follower heard from lately) the leader sends one
   * last heartbeat flagged `quiesce` and stops ticking, and so do the followers that accept it:
   * an idle group then costs no timers and no messages. Any message, any API call that needs
   * progress, or the silence of the leader's endpoint (the process pings each remote endpoint
   * once per heartbeat interval while some group depends on it) wakes the group. Meant for
   * processes serving many groups. A quiesced leader's lease runs out in real time, so lease
   * reads fall back to ReadIndex, which wakes the group. Give every replica of a group the
   * same setting.
   */
  quiesce?: boolean;
}

/** Options of the free function `bootstrap()` (braft's `BootstrapOptions`). */
export interface BootstrapOptions {
  /** The group's initial membership (required, non-empty). */
  groupConf: Configuration | string;
  /** Index of the existing data; > 0 makes a snapshot at that index first (default 0). */
  lastLogIndex?: number;
  /** The state machine whose `onSnapshotSave` writes that snapshot. */
  fsm?: StateMachine;
  /** Kept for braft parity (default false). */
  nodeOwnsFsm?: boolean;
  /** Log storage URI (required). */
  logUri: string;
  /** Meta storage URI (required). */
  raftMetaUri: string;
  /** Snapshot storage URI (required when `lastLogIndex` > 0). */
  snapshotUri?: string;
}

/** The node states, numbered as braft's `State`. */
export const NodeState = {
  /** Leading. */
  LEADER: 1,
  /** Leading, but handing leadership to another peer (writes get EBUSY). */
  TRANSFERRING: 2,
  /** Campaigning. */
  CANDIDATE: 3,
  /** Following. */
  FOLLOWER: 4,
  /** Stopped by a critical error. */
  ERROR: 5,
  /** Not initialised yet. */
  UNINITIALIZED: 6,
  /** Shutting down. */
  SHUTTING: 7,
  /** Shut down. */
  SHUTDOWN: 8,
} as const;

/** One of the values of {@linkcode NodeState}. */
export type NodeState = (typeof NodeState)[keyof typeof NodeState];

/**
 * The name of a node state (`"LEADER"`, …).
 *
 * @param state The state.
 * @returns Its name.
 *
 * @example
 * ```ts
 * import { NodeState, nodeStateName } from "@webraft/raft";
 * import assert from "node:assert/strict";
 * assert.equal(nodeStateName(NodeState.FOLLOWER), "FOLLOWER");
 * ```
 */
export function nodeStateName(state: NodeState): string {
  return Object.entries(NodeState).find(([, v]) => v === state)?.[0] ?? String(state);
}

/** A follower as the leader sees it (braft `PeerStatus`). */
export interface PeerStatus {
  /** Peer id string. */
  peer: string;
  /** Next index to send. */
  nextIndex: number;
  /** Highest index known replicated. */
  matchIndex: number;
  /** Replication state: probe, replicate or snapshot. */
  state: string;
  /** The leader waits for this follower's answer before it sends more (braft `blocking`). */
  blocking: boolean;
  /** The follower is being sent a snapshot (braft `installing_snapshot`). */
  installingSnapshot: boolean;
  /**
   * Heartbeat intervals the follower has not answered, beyond the first (braft
   * `consecutive_error_times`; webraft's messages are one-way, so silence counts as failure).
   */
  consecutiveErrorTimes: number;
  /** Milliseconds since the follower last answered (rounded to the node's tick). */
  lastContactMs: number;
}

/** Everything `describe()` reports: braft's `raft_stat` fields. */
export interface NodeStatus {
  /** The group. */
  groupId: string;
  /** This node. */
  peerId: string;
  /** State name (LEADER, FOLLOWER, …). */
  state: string;
  /** Readonly mode. */
  readonly: boolean;
  /** Current term. */
  term: number;
  /** Log index of the configuration in effect. */
  confIndex: number;
  /** Voting members. */
  peers: string[];
  /** Learners. */
  learners: string[];
  /** Old voters while joint. */
  oldPeers: string[];
  /** Known leader, or "". */
  leader: string;
  /** Election timer description. */
  electionTimer: string;
  /** Vote timer description. */
  voteTimer: string;
  /** Step-down timer description. */
  stepdownTimer: string;
  /** Snapshot timer description. */
  snapshotTimer: string;
  /** First log index in storage. */
  firstIndex: number;
  /** Last log index in storage. */
  lastIndex: number;
  /** Last index durable on disk. */
  diskIndex: number;
  /** Last index applied by the state machine. */
  knownAppliedIndex: number;
  /** Last log id. */
  lastLogId: { index: number; term: number };
  /** What the state machine caller is doing. */
  stateMachine: string;
  /** Highest committed index. */
  lastCommittedIndex: number;
  /** Leader: the first uncommitted index (braft `pending_index`); 0 when none. */
  pendingIndex: number;
  /**
   * Tasks this node accepted from `apply` and not yet applied (braft `pending_queue_size`,
   * which counts only uncommitted ones); `apply` answers EBUSY at `raft_max_pending_applies`.
   */
  pendingQueueSize: number;
  /** Bytes of those tasks (payload + per-entry overhead), bounded by `raft_max_pending_apply_bytes`. */
  pendingQueueBytes: number;
  /**
   * Highest index handed to the state machine and not yet applied (braft `applying_index`);
   * 0 when idle. At most `raft_max_applying_bytes` of entries wait between the two.
   */
  applyingIndex: number;
  /** Latest snapshot index (0 when none). */
  lastSnapshotIndex: number;
  /** Latest snapshot term. */
  lastSnapshotTerm: number;
  /** IDLE, SAVING, DOWNLOADING or LOADING. */
  snapshotStatus: string;
  /** Leader only: the followers. */
  followers: PeerStatus[];
  /** The node is quiesced: its group is idle and it does not tick (`NodeOptions.quiesce`). */
  quiesced: boolean;
}

/** braft's `LeaderLeaseStatus` states. */
export const LeaseState = {
  /** The lease is not enabled. */
  DISABLED: 1,
  /** Not leader, or the lease lapsed. */
  EXPIRED: 2,
  /** Leader, but the first entry of its term is not applied yet. */
  NOT_READY: 3,
  /** Lease reads are safe. */
  VALID: 4,
} as const;

/** One of the values of {@linkcode LeaseState}. */
export type LeaseState = (typeof LeaseState)[keyof typeof LeaseState];

/** The leader lease (braft `get_leader_lease_status`). */
export interface LeaderLeaseStatus {
  /** DISABLED, EXPIRED, NOT_READY or VALID. */
  state: LeaseState;
  /** The leader's term (0 when not leader). */
  term: number;
  /** Increases each time this node starts leading. */
  leaseEpoch: number;
}

/** An entry returned by `readCommittedUserLog`. */
export interface UserLog {
  /** Its index. */
  index: number;
  /** Its term. */
  term: number;
  /** Its payload. */
  data: ChunkChain;
}
