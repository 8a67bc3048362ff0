/**
 * Log entries: the unit the core replicates and storage persists.
 *
 * @module
 */

import type { ChunkChain } from "../bytes/chunk_chain.ts";
import type { Configuration } from "../conf/configuration.ts";

/**
 * Entry types, numbered as braft's `EntryType` (src/braft/enum.proto).
 *
 * @example
 * ```ts
 * import { EntryType } from "./entry.ts";
 * import assert from "node:assert/strict";
 * assert.equal(EntryType.CONFIGURATION, 3);
 * ```
 */
export const EntryType = {
  /** An empty entry (the core uses CONFIGURATION as the first entry of a term, as braft). */
  NO_OP: 1,
  /** A user entry from `node.apply()`. */
  DATA: 2,
  /** A membership change; carries `conf` (and `oldConf` while joint). */
  CONFIGURATION: 3,
} as const;

/** One of the values of {@linkcode EntryType}. */
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

/** The membership carried by a CONFIGURATION entry. */
export interface ConfigurationPayload {
  /** The voting peers of the (new) configuration. */
  readonly peers: Configuration;
  /** The old voting peers while in joint consensus; absent or empty otherwise. */
  readonly oldPeers?: Configuration;
  /** Non-voting members (learners) of the (new) configuration. */
  readonly learners?: Configuration;
  /** Learners of the old configuration while joint. */
  readonly oldLearners?: Configuration;
}

/**
 * One log entry. `index` and `term` identify it (a LogId); `data` is the user's payload for
 * DATA entries and empty for the others; `conf` is set exactly for CONFIGURATION entries.
 */
export interface LogEntry {
  /** Position in the log, from 1. */
  readonly index: number;
  /** Term of the leader that created it. */
  readonly term: number;
  /** What kind of entry this is. */
  readonly type: EntryType;
  /** Payload bytes (shared, never copied on the hot path). */
  readonly data: ChunkChain;
  /** Membership, for CONFIGURATION entries. */
  readonly conf?: ConfigurationPayload;
}

/** `(index, term)` — braft's `LogId`. */
export interface LogId {
  /** Log index (0 = none). */
  readonly index: number;
  /** Term (0 = none). */
  readonly term: number;
}

/**
 * Bytes of memory an entry is assumed to cost beyond its payload (the entry object, its
 * `ChunkChain` and the views in it). Memory limits (the applying limit of the core, the
 * log manager's cache) count it, so that many tiny entries are bounded as well as few big ones.
 */
export const ENTRY_OVERHEAD_BYTES = 128;

/**
 * The memory an entry is charged against a memory limit: payload plus a fixed overhead.
 *
 * @param entry The entry.
 * @returns `entry.data.length + ENTRY_OVERHEAD_BYTES`.
 *
 * @example
 * ```ts
 * import { ENTRY_OVERHEAD_BYTES, EntryType, entryMemorySize } from "./entry.ts";
 * import { ChunkChain } from "../bytes/chunk_chain.ts";
 * import assert from "node:assert/strict";
 * const e = { index: 1, term: 1, type: EntryType.DATA, data: ChunkChain.from("abc") };
 * assert.equal(entryMemorySize(e), 3 + ENTRY_OVERHEAD_BYTES);
 * ```
 */
export function entryMemorySize(entry: LogEntry): number {
  return entry.data.length + ENTRY_OVERHEAD_BYTES;
}
