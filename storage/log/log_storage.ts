/**
 * The `LogStorage` interface (braft's `LogStorage`, src/braft/storage.h) and its options.
 *
 * @module
 */

import type { LogEntry } from "../../src/core/entry.ts";

/**
 * Durable storage for the Raft log.
 *
 * Indexes are contiguous from `firstLogIndex()` to `lastLogIndex()`; an empty log has
 * `lastLogIndex() === firstLogIndex() - 1`. Mutating calls are serialised internally in
 * call order. Every failure rejects with a `RaftException` (EIO naming file and offset for
 * corruption, ENOSPC for a full disk, EINVAL for misuse).
 */
export interface LogStorage {
  /** Opens (and recovers) the storage; call once before anything else. */
  init(): Promise<void>;
  /** The first index still in the log (1 on a fresh log). */
  firstLogIndex(): number;
  /** The last index in the log (`firstLogIndex() - 1` when empty). */
  lastLogIndex(): number;
  /** The term of the entry at `index`, from memory; 0 when outside the log. */
  getTerm(index: number): number;
  /** The entry at `index`, or `null` when outside the log. */
  getEntry(index: number): Promise<LogEntry | null>;
  /**
   * The entries in `[lo, hi]` (clamped to the log), stopping after the first entry that
   * brings the payload total to `maxBytes` or more (at least one entry is returned).
   */
  getEntries(lo: number, hi: number, maxBytes?: number): Promise<LogEntry[]>;
  /**
   * Appends entries whose indexes continue the log. With sync on, resolves only once they
   * are durable (one write and one fsync per batch).
   *
   * @returns The number of entries appended.
   */
  appendEntries(entries: readonly LogEntry[]): Promise<number>;
  /** Drops every entry before `firstIndexKept` (the new first index is persisted first). */
  truncatePrefix(firstIndexKept: number): Promise<void>;
  /** Drops every entry after `lastIndexKept`. */
  truncateSuffix(lastIndexKept: number): Promise<void>;
  /** Drops every entry and makes `nextLogIndex` the first index. */
  reset(nextLogIndex: number): Promise<void>;
  /** The CONFIGURATION entries currently in the log, oldest first (for recovery). */
  configurationEntries(): LogEntry[];
  /** Releases files; the storage cannot be used afterwards. */
  close(): Promise<void>;
}

/** Options shared by the log storages; unset fields come from `flags`. */
export interface LogStorageOptions {
  /** fsync each appended batch before resolving (`flags.raft_sync`). */
  sync?: boolean;
  /** Roll the open segment beyond this many bytes (`flags.raft_max_segment_size`). */
  maxSegmentSize?: number;
  /** fsync the log meta file even when `sync` is off (`flags.raft_sync_meta`). */
  syncMeta?: boolean;
  /**
   * Truncate a corrupt open segment at the first bad entry instead of refusing to start
   * (`flags.raft_recover_log_from_corrupt`). Closed segments are never truncated.
   */
  recoverFromCorrupt?: boolean;
}
