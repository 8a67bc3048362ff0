/**
 * `flags`: the process-wide raft_* tunables (braft's gflags). Storages read them when they
 * are created (every storage also accepts options that override them); a node reads the
 * replication and snapshot flags when it is initialised.
 *
 * @module
 */

/** The raft_* tunables known to this module. */
export interface RaftFlags {
  /** fsync log appends before acknowledging them (braft `raft_sync`). Default `true`. */
  raft_sync: boolean;
  /** Roll the open log segment once it exceeds this many bytes. Default 8 MiB. */
  raft_max_segment_size: number;
  /** fsync meta files (term/votedFor, log meta, snapshot meta) even when `raft_sync` is off. Default `false`. */
  raft_sync_meta: boolean;
  /** Truncate a corrupt open log segment at the bad entry instead of refusing to start. Default `false`. */
  raft_recover_log_from_corrupt: boolean;
  /** Most entries per AppendEntries, and in flight per follower (braft 1024). */
  raft_max_entries_size: number;
  /** Most payload bytes per AppendEntries (braft 512 KiB). */
  raft_max_body_size: number;
  /** Most DATA entries per `onApply` call (braft 32). */
  raft_apply_batch: number;
  /** Bytes per snapshot file-copy call (braft 128 KiB). */
  raft_max_byte_count_per_rpc: number;
  /** Heartbeat interval = election timeout / this (braft 10). */
  raft_election_heartbeat_factor: number;
  /** Most random extra delay added to the election timeout, in ms (braft 1000). */
  raft_max_election_delay_ms: number;
  /** Skip a snapshot unless this many entries were applied since the last one (braft 1). */
  raft_do_snapshot_min_index_gap: number;
  /**
   * Leader lease and follower lease for nodes whose `NodeOptions.enableLeaderLease` is not set
   * (braft `raft_enable_leader_lease`, default `false`).
   */
  raft_enable_leader_lease: boolean;
  /**
   * A candidate whose vote timed out pre-votes again (`true`, braft's default) instead of
   * starting the next election at once (`false`).
   */
  raft_step_down_when_vote_timedout: boolean;
  /** Most payload bytes per log write (append plus fsync) of one Ready (braft 256 KiB). */
  raft_max_append_buffer_size: number;
  /** Most entries per log write of one Ready (braft 256; unused in braft itself). */
  raft_leader_batch: number;
  /** Apply `NodeOptions.snapshotThrottle` to snapshot copies, on both sides (braft `true`). */
  raft_enable_throttle_when_install_snapshot: boolean;
  /** Floor of a `ThroughputSnapshotThrottle`'s throughput, in MiB/s (braft 0). */
  raft_minimal_throttle_threshold_mb: number;
  /** Most snapshot downloads at once through one `ThroughputSnapshotThrottle` (braft 1000). */
  raft_max_install_snapshot_tasks_num: number;
  /**
   * Admission control (webraft; braft's apply queue is unbounded): most tasks a leader has
   * accepted from `apply` and not yet applied. Beyond it `apply` fails the task with EBUSY at
   * once. Default 65536.
   */
  raft_max_pending_applies: number;
  /**
   * Admission control: most bytes (payload + `ENTRY_OVERHEAD_BYTES` per task) of tasks
   * accepted and not yet applied; beyond it `apply` fails with EBUSY. Default 64 MiB.
   */
  raft_max_pending_apply_bytes: number;
  /**
   * Most bytes (payload + `ENTRY_OVERHEAD_BYTES` per entry) of committed entries handed to
   * the state machine caller and not yet applied, on every node (the core's
   * `maxApplyingBytes`); the rest waits in the log. Default 4 MiB.
   */
  raft_max_applying_bytes: number;
  /**
   * A witness (`NodeOptions.witness`) may become leader for a moment (braft
   * `raft_enable_witness_to_leader`, default `false`): it campaigns after twice the election
   * timeout, steps down at its next step-down check and wakes a replica. When on, witnesses
   * also get the entries' data. Set it alike on every node before they are initialised.
   */
  raft_enable_witness_to_leader: boolean;
}

/**
 * The process-wide tunables; assign to change them.
 *
 * @example
 * ```ts
 * import { flags } from "./flags.ts";
 * import assert from "node:assert/strict";
 * assert.equal(flags.raft_sync, true);
 * assert.equal(flags.raft_max_segment_size, 8 * 1024 * 1024);
 * ```
 */
export const flags: RaftFlags = {
  raft_sync: true,
  raft_max_segment_size: 8 * 1024 * 1024,
  raft_sync_meta: false,
  raft_recover_log_from_corrupt: false,
  raft_max_entries_size: 1024,
  raft_max_body_size: 512 * 1024,
  raft_apply_batch: 32,
  raft_max_byte_count_per_rpc: 128 * 1024,
  raft_election_heartbeat_factor: 10,
  raft_max_election_delay_ms: 1000,
  raft_do_snapshot_min_index_gap: 1,
  raft_enable_leader_lease: false,
  raft_step_down_when_vote_timedout: true,
  raft_max_append_buffer_size: 256 * 1024,
  raft_leader_batch: 256,
  raft_enable_throttle_when_install_snapshot: true,
  raft_minimal_throttle_threshold_mb: 0,
  raft_max_install_snapshot_tasks_num: 1000,
  raft_max_pending_applies: 65536,
  raft_max_pending_apply_bytes: 64 * 1024 * 1024,
  raft_max_applying_bytes: 4 * 1024 * 1024,
  raft_enable_witness_to_leader: false,
};
