/**
 * `flags`: the process-wide raft_* tunables (braft's gflags). Storages read them when they
 * are created; every storage also accepts options that override them.
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
};
