/**
 * `flags`: the process-wide raft_* tunables (braft's gflags). Storages read them when they
 * are created (every storage also accepts options that override them); a node reads the
 * replication and snapshot flags when it is initialised. `FLAG_INFO` says, per flag, its
 * default, when it is read and whether `setFlag` (and `POST /flags/<name>`) may change it while
 * nodes run.
 *
 * @module
 */

import { RaftError, RaftException } from "../errors/status.ts";

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
  /**
   * Most `local://` segment logs of the process that keep files open (webraft; braft keeps
   * every log's open segment open). Beyond it the least recently used logs close their idle
   * files and reopen them on their next append or read, so a process with many idle groups
   * stays under its descriptor limit. Read at each log file use; ≤ 0 is no limit.
   * Default 4096.
   */
  raft_max_open_log_files: number;
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
  raft_max_open_log_files: 4096,
};

/** What `/flags` shows about one flag, and how {@linkcode setFlag} checks a new value. */
export interface FlagInfo<T extends boolean | number = boolean | number> {
  /** The value `flags` starts with. */
  readonly default: T;
  /**
   * Running nodes read the flag at each use, so changing it takes effect at once and is safe:
   * {@linkcode setFlag} and `POST /flags/<name>` accept it. The others are read when a node or
   * storage is created; change them (by assignment) before that.
   */
  readonly runtime: boolean;
  /** When the flag is read, e.g. `"at each log write"` or `"when a node is initialised"`. */
  readonly readAt: string;
  /** One line for people. */
  readonly description: string;
  /** Smallest allowed value (numeric flags). */
  readonly min?: number;
  /** Largest allowed value (numeric flags). */
  readonly max?: number;
}

/** {@linkcode FlagInfo} for every flag of {@linkcode RaftFlags}. */
export type FlagInfoTable = { readonly [K in keyof RaftFlags]: FlagInfo<RaftFlags[K]> };

const INT32_MAX = 2 ** 31 - 1;
const AT_STORAGE = "when a log, meta or snapshot storage is created";
const AT_INIT = "when a node is initialised";

/**
 * Per flag: default, whether it may change at runtime, when it is read, a description and the
 * allowed range. Every key of `flags` has an entry.
 *
 * @example
 * ```ts
 * import { FLAG_INFO, flags } from "./flags.ts";
 * import assert from "node:assert/strict";
 * assert.equal(FLAG_INFO.raft_sync.default, true);
 * assert.equal(FLAG_INFO.raft_leader_batch.runtime, true);
 * assert.deepEqual(Object.keys(FLAG_INFO).sort(), Object.keys(flags).sort());
 * ```
 */
export const FLAG_INFO: FlagInfoTable = {
  raft_sync: {
    default: true,
    runtime: false,
    readAt: AT_STORAGE,
    description: "fsync log appends (and meta and snapshot files) before acknowledging them",
  },
  raft_max_segment_size: {
    default: 8 * 1024 * 1024,
    runtime: false,
    readAt: AT_STORAGE,
    description: "roll the open log segment once it exceeds this many bytes",
    min: 1,
    max: INT32_MAX,
  },
  raft_sync_meta: {
    default: false,
    runtime: false,
    readAt: AT_STORAGE,
    description: "fsync meta files (term/vote, log meta, snapshot meta) even when raft_sync is off",
  },
  raft_recover_log_from_corrupt: {
    default: false,
    runtime: false,
    readAt: AT_STORAGE,
    description:
      "truncate a corrupt open log segment at the bad entry instead of refusing to start",
  },
  raft_max_entries_size: {
    default: 1024,
    runtime: false,
    readAt: AT_INIT,
    description: "most entries per AppendEntries, and in flight per follower",
    min: 1,
    max: INT32_MAX,
  },
  raft_max_body_size: {
    default: 512 * 1024,
    runtime: false,
    readAt: `${AT_INIT}; the transport's message limit is derived from it when it is created`,
    description: "most payload bytes per AppendEntries",
    min: 1,
    max: INT32_MAX,
  },
  raft_apply_batch: {
    default: 32,
    runtime: false,
    readAt: AT_INIT,
    description: "most DATA entries per onApply call",
    min: 1,
    max: INT32_MAX,
  },
  raft_max_byte_count_per_rpc: {
    default: 128 * 1024,
    runtime: true,
    readAt: "when a snapshot copy starts",
    description: "bytes per snapshot file-copy call (at most 1 MiB, to fit the transport's limit)",
    min: 1,
    max: 1024 * 1024,
  },
  raft_election_heartbeat_factor: {
    default: 10,
    runtime: false,
    readAt: AT_INIT,
    description: "heartbeat interval = election timeout / this factor",
    min: 1,
    max: INT32_MAX,
  },
  raft_max_election_delay_ms: {
    default: 1000,
    runtime: false,
    readAt: AT_INIT,
    description: "most random extra delay added to the election timeout, in ms",
    min: 0,
    max: INT32_MAX,
  },
  raft_do_snapshot_min_index_gap: {
    default: 1,
    runtime: true,
    readAt: "at each snapshot",
    description: "skip a snapshot unless this many entries were applied since the last one",
    min: 1,
    max: Number.MAX_SAFE_INTEGER,
  },
  raft_enable_leader_lease: {
    default: false,
    runtime: false,
    readAt: `${AT_INIT} (set it alike on every node)`,
    description: "leader lease and follower lease, for nodes whose options do not say",
  },
  raft_step_down_when_vote_timedout: {
    default: true,
    runtime: false,
    readAt: AT_INIT,
    description: "a candidate whose vote timed out pre-votes again instead of re-electing at once",
  },
  raft_max_append_buffer_size: {
    default: 256 * 1024,
    runtime: true,
    readAt: "at each log write",
    description: "most payload bytes per log write (append plus fsync)",
    min: 1,
    max: INT32_MAX,
  },
  raft_leader_batch: {
    default: 256,
    runtime: true,
    readAt: "at each log write",
    description: "most entries per log write (append plus fsync)",
    min: 1,
    max: INT32_MAX,
  },
  raft_enable_throttle_when_install_snapshot: {
    default: true,
    runtime: true,
    readAt: "when a snapshot copy starts",
    description: "apply the node's snapshot throttle to snapshot copies, on both sides",
  },
  raft_minimal_throttle_threshold_mb: {
    default: 0,
    runtime: true,
    readAt: "at each throttled read",
    description: "floor of a throughput snapshot throttle, in MiB/s",
    min: 0,
    max: INT32_MAX,
  },
  raft_max_install_snapshot_tasks_num: {
    default: 1000,
    runtime: true,
    readAt: "when a snapshot download asks the throttle to start",
    description: "most snapshot downloads at once through one throughput throttle",
    min: 1,
    max: INT32_MAX,
  },
  raft_max_pending_applies: {
    default: 65536,
    runtime: false,
    readAt: AT_INIT,
    description:
      "most tasks a leader has accepted and not yet applied; beyond it apply fails EBUSY",
    min: 1,
    max: INT32_MAX,
  },
  raft_max_pending_apply_bytes: {
    default: 64 * 1024 * 1024,
    runtime: false,
    readAt: AT_INIT,
    description: "most bytes of tasks accepted and not yet applied; beyond it apply fails EBUSY",
    min: 1,
    max: Number.MAX_SAFE_INTEGER,
  },
  raft_max_applying_bytes: {
    default: 4 * 1024 * 1024,
    runtime: false,
    readAt: AT_INIT,
    description: "most bytes of committed entries handed to the state machine and not yet applied",
    min: 1,
    max: Number.MAX_SAFE_INTEGER,
  },
  raft_enable_witness_to_leader: {
    default: false,
    runtime: false,
    readAt: `${AT_INIT} (set it alike on every node)`,
    description: "a witness may become leader for a moment, to wake a replica",
  },
  raft_max_open_log_files: {
    default: 4096,
    runtime: true,
    readAt: "at each log file use",
    description:
      "most segment logs of the process keeping files open; the least recently used close idle ones (0: no limit)",
    min: 0,
    max: INT32_MAX,
  },
};

/**
 * Whether `name` is a flag of {@linkcode RaftFlags}.
 *
 * @param name Any string.
 * @returns `true` for a flag name.
 *
 * @example
 * ```ts
 * import { isFlagName } from "./flags.ts";
 * import assert from "node:assert/strict";
 * assert.equal(isFlagName("raft_sync"), true);
 * assert.equal(isFlagName("toString"), false);
 * ```
 */
export function isFlagName(name: string): name is keyof RaftFlags {
  return Object.hasOwn(FLAG_INFO, name);
}

/**
 * Checks and converts a new value for a flag: a boolean flag takes `true`/`false` (or the
 * strings `"true"`, `"false"`, `"1"`, `"0"`); a numeric flag takes an integer (or its decimal
 * string) within the flag's range.
 *
 * @param name A flag name.
 * @param value The new value, from JSON or a form.
 * @returns The value to store.
 * @throws {RaftException} ENOENT for an unknown flag; EINVAL for a bad value.
 *
 * @example
 * ```ts
 * import { parseFlagValue } from "./flags.ts";
 * import assert from "node:assert/strict";
 * assert.equal(parseFlagValue("raft_sync", "0"), false);
 * assert.equal(parseFlagValue("raft_leader_batch", "64"), 64);
 * assert.throws(() => parseFlagValue("raft_leader_batch", 0), /range/);
 * ```
 */
export function parseFlagValue(name: string, value: unknown): boolean | number {
  if (!isFlagName(name)) {
    throw RaftException.of(RaftError.ENOENT, `Unknown flag "${name}"`);
  }
  const info: FlagInfo = FLAG_INFO[name];
  // (never String() on an object: from JSON, {"toString": 1} makes String() throw)
  const shown = typeof value === "string"
    ? `"${value.slice(0, 40)}"`
    : typeof value === "object" && value !== null
    ? Array.isArray(value) ? "an array" : "an object"
    : String(value);
  const bad = (why: string): never => {
    throw RaftException.of(RaftError.EINVAL, `Cannot set ${name} to ${shown}: ${why}`);
  };
  if (typeof info.default === "boolean") {
    if (typeof value === "boolean") return value;
    if (value === "true" || value === "1") return true;
    if (value === "false" || value === "0") return false;
    return bad("expected true or false");
  }
  let n: number;
  if (typeof value === "number") n = value;
  else if (typeof value === "string" && /^-?\d{1,16}$/.test(value.trim())) n = Number(value);
  else return bad("expected an integer");
  if (!Number.isSafeInteger(n)) bad("expected an integer");
  const min = info.min ?? 0;
  const max = info.max ?? Number.MAX_SAFE_INTEGER;
  if (n < min || n > max) bad(`out of range ${min}..${max}`);
  return n;
}

/**
 * Changes a runtime flag (one whose {@linkcode FlagInfo.runtime} is true) after checking the
 * value with {@linkcode parseFlagValue}; nothing changes when it throws. This is what
 * `POST /flags/<name>` does. Other flags are read when nodes or storages are created: assign
 * them in code before that.
 *
 * @param name A flag name.
 * @param value The new value (see {@linkcode parseFlagValue}).
 * @returns The value now in `flags`.
 * @throws {RaftException} ENOENT for an unknown flag; EINVAL for a bad value; EPERM for a flag
 *   that may not change at runtime.
 *
 * @example
 * ```ts
 * import { flags, setFlag } from "./flags.ts";
 * import assert from "node:assert/strict";
 * const before = flags.raft_leader_batch;
 * try {
 *   assert.equal(setFlag("raft_leader_batch", "64"), 64);
 *   assert.equal(flags.raft_leader_batch, 64);
 *   assert.throws(() => setFlag("raft_sync", false), /runtime/);
 * } finally {
 *   flags.raft_leader_batch = before;
 * }
 * ```
 */
export function setFlag(name: string, value: unknown): boolean | number {
  const parsed = parseFlagValue(name, value);
  const key = name as keyof RaftFlags;
  if (!FLAG_INFO[key].runtime) {
    throw RaftException.of(
      RaftError.EPERM,
      `Cannot set ${name} at runtime: it is read ${FLAG_INFO[key].readAt}`,
    );
  }
  (flags as unknown as Record<string, boolean | number>)[key] = parsed;
  return parsed;
}
