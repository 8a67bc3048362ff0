/**
 * `LogManager`: the node's durable log, meta and snapshot position, seen by the core as a
 * synchronous `CoreStorage` and written by the node's Ready loop.
 *
 * @module
 */

import { Configuration } from "../conf/configuration.ts";
import { PeerId } from "../conf/peer_id.ts";
import {
  type ConfigurationPayload,
  ENTRY_OVERHEAD_BYTES,
  entryMemorySize,
  type LogEntry,
} from "../core/entry.ts";
import type { ConfigurationRecord, CoreStorage } from "../core/storage.ts";
import type { HardState, SnapshotMeta } from "../core/types.ts";
import { ErrorType, RaftError, RaftException } from "../errors/status.ts";
import { flags } from "../util/flags.ts";
import type { LogStorage } from "../../storage/log/log_storage.ts";
import type { RaftMetaStorage } from "../../storage/meta/meta_storage.ts";
import type { SnapshotMeta as StoredSnapshotMeta } from "../../storage/snapshot/snapshot.ts";

/** Options for {@linkcode LogManager}. */
export interface LogManagerOptions {
  /**
   * Memory for recent entries kept for replication and applying, counted as payload plus
   * `ENTRY_OVERHEAD_BYTES` per entry (default 64 MiB). Entries loaded back from disk get as
   * much again.
   */
  cacheBytes?: number;
  /** Called when entries that `entries()` could not serve have been loaded from disk. */
  onEntriesLoaded?: () => void;
  /** Called when a background load fails (the node reports it as a storage error). */
  onLoadError?: (error: unknown) => void;
}

const EMPTY_SNAPSHOT: SnapshotMeta = { index: 0, term: 0, conf: { peers: emptyConf() } };

/**
 * Adapts the asynchronous storages to the synchronous `CoreStorage` the core reads, and
 * performs the writes a `Ready` asks for.
 *
 * Terms, bounds and configuration entries come from the log storage's in-memory index. Entry
 * payloads come from an in-memory cache of recent entries; older ones are loaded in the
 * background (`entries()` answers `null`, then `onEntriesLoaded` fires).
 *
 * Invariant: every entry `entries()` serves is the one the log storage holds at that index
 * now. Truncation and reset invalidate both caches and every load still in flight (a
 * generation counter), and a disk-loaded entry whose term disagrees with the log's index is
 * never served.
 *
 * Writes must be issued by one caller at a time (the node's Ready loop): appends of one
 * Ready become one `appendEntries` call, i.e. one disk write and one fsync (group commit).
 *
 * @internal
 */
export class LogManager implements CoreStorage {
  readonly #log: LogStorage;
  readonly #meta: RaftMetaStorage;
  readonly #cacheBytes: number;
  readonly #onLoaded: () => void;
  readonly #onLoadError: (error: unknown) => void;
  #hard: HardState;
  #snap: SnapshotMeta = EMPTY_SNAPSHOT;
  /** Recent entries: `#cache[k]` has index `#cacheStart + k`. */
  #cache: LogEntry[] = [];
  #cacheStart = 1;
  #cachedBytes = 0;
  /**
   * Entries loaded from disk on demand, by index (small, cleared as the cache moves); made on
   * the first load (most groups never read back from disk).
   */
  #loaded: Map<number, LogEntry> | null = null;
  /** Memory size of `#loaded`. */
  #loadedBytes = 0;
  #loading = false;
  /**
   * Bumped by every change that can replace stored entries (suffix truncation, reset). A
   * background load started under an older generation may have read replaced entries, so
   * its result is dropped.
   */
  #generation = 0;
  #diskIndex = 0;

  /**
   * @param log An initialised log storage.
   * @param meta An initialised meta storage.
   * @param options Cache size and notifications.
   */
  constructor(log: LogStorage, meta: RaftMetaStorage, options: LogManagerOptions = {}) {
    this.#log = log;
    this.#meta = meta;
    this.#cacheBytes = options.cacheBytes ?? 64 * 1024 * 1024;
    this.#onLoaded = options.onEntriesLoaded ?? (() => {});
    this.#onLoadError = options.onLoadError ?? (() => {});
    const { term, votedFor } = meta.getTermAndVotedFor();
    this.#hard = { term, vote: votedFor?.key() ?? "", commit: 0 };
    this.#cacheStart = log.lastLogIndex() + 1;
    this.#diskIndex = log.lastLogIndex();
  }

  /** The log storage underneath (for reads such as `readCommittedUserLog`). */
  get logStorage(): LogStorage {
    return this.#log;
  }

  /** Last index known durable on disk. */
  get diskIndex(): number {
    return this.#diskIndex;
  }

  /**
   * What the entry cache holds now: recent entries plus entries loaded back from disk, and
   * their memory size as counted against `cacheBytes`.
   *
   * @returns Entry count and bytes.
   */
  cacheStats(): { entries: number; bytes: number } {
    return {
      entries: this.#cache.length + (this.#loaded?.size ?? 0),
      bytes: this.#cachedBytes + this.#loadedBytes,
    };
  }

  // ------------------------------------------------------------------ CoreStorage

  hardState(): HardState {
    return this.#hard;
  }

  snapshotMeta(): SnapshotMeta {
    return this.#snap;
  }

  firstIndex(): number {
    return this.#snap.index + 1;
  }

  lastIndex(): number {
    return Math.max(this.#log.lastLogIndex(), this.#snap.index);
  }

  term(i: number): number | undefined {
    if (i === this.#snap.index) return this.#snap.term;
    if (i < this.#snap.index || i > this.lastIndex()) return undefined;
    const t = this.#log.getTerm(i);
    return t === 0 ? undefined : t;
  }

  entries(lo: number, hi: number, maxBytes: number): LogEntry[] | null {
    const out: LogEntry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.#cached(i);
      if (e === undefined) {
        if (out.length > 0) return out; // serve the prefix we have; the rest comes next time
        this.#load(i, hi, maxBytes);
        return null;
      }
      bytes += e.data.length;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  configurations(): ConfigurationRecord[] {
    const out: ConfigurationRecord[] = [];
    for (const e of this.#log.configurationEntries()) {
      if (e.index > this.#snap.index && e.conf !== undefined) {
        out.push({ index: e.index, term: e.term, conf: e.conf });
      }
    }
    return out;
  }

  // ------------------------------------------------------------------ writes

  /**
   * Appends entries durably, first truncating any stored suffix from `entries[0].index`. As
   * braft's disk batches, one write (append and fsync) carries at most
   * `flags.raft_leader_batch` entries and `flags.raft_max_append_buffer_size` payload bytes
   * (and at least one entry).
   *
   * @param entries Consecutive entries from one Ready.
   * @throws {RaftException} The log storage's error, with type LOG.
   */
  async append(entries: readonly LogEntry[]): Promise<void> {
    if (entries.length === 0) return;
    try {
      const first = entries[0]!.index;
      if (first <= this.#log.lastLogIndex()) {
        this.#generation++;
        await this.#log.truncateSuffix(first - 1);
        this.#dropCacheFrom(first);
      }
      this.#addToCache(entries);
      const maxEntries = Math.max(1, flags.raft_leader_batch);
      const maxBytes = Math.max(1, flags.raft_max_append_buffer_size);
      for (let i = 0; i < entries.length;) {
        let j = i;
        let bytes = 0;
        while (j < entries.length && j - i < maxEntries) {
          const size = entries[j]!.data.length;
          if (j > i && bytes + size > maxBytes) break;
          bytes += size;
          j++;
        }
        const batch = i === 0 && j === entries.length ? entries : entries.slice(i, j);
        await this.#log.appendEntries(batch);
        this.#diskIndex = batch[batch.length - 1]!.index;
        i = j;
      }
    } catch (e) {
      throw typedError(e, ErrorType.LOG, "append to the log");
    }
  }

  /**
   * Persists term and vote when they changed (the commit index is not persisted).
   *
   * @param hs The new hard state.
   * @throws {RaftException} The meta storage's error, with type STABLE.
   */
  async setHardState(hs: HardState): Promise<void> {
    const changed = hs.term !== this.#hard.term || hs.vote !== this.#hard.vote;
    this.#hard = hs;
    if (changed) {
      try {
        await this.#meta.setTermAndVotedFor(
          hs.term,
          hs.vote === "" ? null : PeerId.parse(hs.vote),
        );
      } catch (e) {
        throw typedError(e, ErrorType.STABLE, "persist term and vote");
      }
    }
  }

  /**
   * Sets the snapshot position found at startup (before the core is created). As braft's
   * `set_snapshot`, a log that does not reach the snapshot, or holds its index with another
   * term (a crash between publishing an installed snapshot and resetting the log), is reset
   * to start right after it; a log that agrees with it is kept.
   *
   * @param meta The loaded snapshot's meta.
   */
  async setInitialSnapshot(meta: SnapshotMeta): Promise<void> {
    this.#snap = meta;
    const log = this.#log;
    const conflicts = log.lastLogIndex() < meta.index ||
      (log.firstLogIndex() <= meta.index && log.getTerm(meta.index) !== meta.term);
    if (!conflicts) return;
    this.#generation++;
    await log.reset(meta.index + 1);
    this.#cache = [];
    this.#cachedBytes = 0;
    this.#cacheStart = meta.index + 1;
    this.#clearLoaded();
    this.#diskIndex = meta.index;
  }

  /**
   * Replaces the log by an installed snapshot: entries after it survive only if the log
   * holds the snapshot's last entry with the same term.
   *
   * @param meta The installed snapshot's meta.
   */
  async installSnapshot(meta: SnapshotMeta): Promise<void> {
    const keep = this.term(meta.index) === meta.term;
    this.#snap = meta;
    if (keep) {
      await this.#log.truncatePrefix(meta.index + 1);
    } else {
      this.#generation++;
      await this.#log.reset(meta.index + 1);
      this.#cache = [];
      this.#cachedBytes = 0;
      this.#cacheStart = meta.index + 1;
      this.#clearLoaded();
    }
    this.#diskIndex = Math.max(this.#diskIndex, meta.index);
    this.#trimCacheBelow(meta.index + 1);
  }

  /**
   * Records a local snapshot and drops log entries before `firstIndexKept` (braft keeps one
   * extra snapshot interval of log for lagging followers; the core sees the log from the
   * snapshot on).
   *
   * @param meta The new snapshot's meta.
   * @param firstIndexKept The first log index to keep on disk.
   */
  async compact(meta: SnapshotMeta, firstIndexKept: number): Promise<void> {
    if (meta.index > this.#snap.index) this.#snap = meta;
    const keep = Math.min(firstIndexKept, meta.index + 1);
    if (keep > this.#log.firstLogIndex()) await this.#log.truncatePrefix(keep);
    this.#trimCacheBelow(this.#snap.index + 1);
  }

  // ------------------------------------------------------------------ cache

  #cached(i: number): LogEntry | undefined {
    if (i >= this.#cacheStart) return this.#cache[i - this.#cacheStart];
    const e = this.#loaded?.get(i);
    if (e !== undefined && e.term !== this.#log.getTerm(i)) {
      this.#unload(i); // replaced on disk since it was loaded
      return undefined;
    }
    return e;
  }

  #addToCache(entries: readonly LogEntry[]): void {
    const first = entries[0]!.index;
    if (first !== this.#cacheStart + this.#cache.length) {
      // Not contiguous with the cache (e.g. after a reset): restart it here.
      this.#cache = [];
      this.#cachedBytes = 0;
      this.#cacheStart = first;
    }
    for (const e of entries) {
      this.#cache.push(e);
      this.#cachedBytes += entryMemorySize(e);
    }
    let drop = 0;
    while (this.#cachedBytes > this.#cacheBytes && drop < this.#cache.length - 1) {
      this.#cachedBytes -= entryMemorySize(this.#cache[drop]!);
      drop++;
    }
    if (drop > 0) {
      this.#cache = this.#cache.slice(drop);
      this.#cacheStart += drop;
    }
  }

  #dropCacheFrom(index: number): void {
    if (index < this.#cacheStart) {
      this.#cache = [];
      this.#cachedBytes = 0;
      this.#cacheStart = index;
    } else {
      for (let k = index - this.#cacheStart; k < this.#cache.length; k++) {
        this.#cachedBytes -= entryMemorySize(this.#cache[k]!);
      }
      this.#cache.length = Math.max(0, index - this.#cacheStart);
    }
    if (this.#loaded !== null) {
      for (const i of this.#loaded.keys()) if (i >= index) this.#unload(i);
    }
  }

  #trimCacheBelow(index: number): void {
    if (this.#loaded !== null) {
      for (const i of this.#loaded.keys()) {
        if (i < index) this.#unload(i);
      }
    }
    if (index <= this.#cacheStart) return;
    const drop = Math.min(index - this.#cacheStart, this.#cache.length);
    for (let k = 0; k < drop; k++) this.#cachedBytes -= entryMemorySize(this.#cache[k]!);
    this.#cache = this.#cache.slice(drop);
    this.#cacheStart += drop;
  }

  #unload(i: number): void {
    const e = this.#loaded?.get(i);
    if (e === undefined) return;
    this.#loaded!.delete(i);
    this.#loadedBytes -= entryMemorySize(e);
  }

  #clearLoaded(): void {
    this.#loaded = null;
    this.#loadedBytes = 0;
  }

  #load(lo: number, hi: number, maxBytes: number): void {
    if (this.#loading) return;
    this.#loading = true;
    const generation = this.#generation;
    // at most a cache's worth of entries, however small they are (a few for a tiny cache)
    const most = Math.max(64, Math.floor(this.#cacheBytes / ENTRY_OVERHEAD_BYTES));
    const last = Math.min(hi - 1, lo + most - 1, this.#cacheStart - 1, this.#log.lastLogIndex());
    this.#log.getEntries(lo, last, maxBytes).then((entries) => {
      if (generation === this.#generation) {
        if ((this.#loaded?.size ?? 0) > 8192 || this.#loadedBytes > this.#cacheBytes) {
          this.#clearLoaded();
        }
        for (const e of entries) {
          this.#unload(e.index);
          (this.#loaded ??= new Map()).set(e.index, e);
          this.#loadedBytes += entryMemorySize(e);
        }
      } // else the log changed meanwhile: drop them; the notification makes the core ask again
      this.#loading = false;
      this.#onLoaded();
    }, (e: unknown) => {
      this.#loading = false;
      // A load racing a truncation may read a file cut under it: only a current one is fatal.
      if (generation === this.#generation) {
        this.#onLoadError(typedError(e, ErrorType.LOG, "read the log"));
      } else this.#onLoaded();
    });
  }
}

/**
 * `e` as a `RaftException` of the given type (EIO naming `what` if it was another error).
 *
 * @param e What was thrown.
 * @param type Which storage failed.
 * @param what The action, for the message.
 * @returns The typed exception.
 * @internal
 */
export function typedError(e: unknown, type: ErrorType, what: string): RaftException {
  if (e instanceof RaftException) return e.withType(type);
  return new RaftException(
    RaftException.of(
      RaftError.EIO,
      `Cannot ${what}: ${e instanceof Error ? e.message : String(e)}`,
    ).status,
    { cause: e, type },
  );
}

/**
 * Converts the core's snapshot meta into the storage's form.
 *
 * @param meta The core's meta.
 * @returns The storage's meta.
 * @internal
 */
export function toStoredSnapshotMeta(meta: SnapshotMeta): StoredSnapshotMeta {
  const out: StoredSnapshotMeta = {
    lastIncludedIndex: meta.index,
    lastIncludedTerm: meta.term,
    peers: meta.conf.peers,
    oldPeers: meta.conf.oldPeers ?? emptyConf(),
  };
  if (meta.conf.learners !== undefined) out.learners = meta.conf.learners;
  if (meta.conf.oldLearners !== undefined) out.oldLearners = meta.conf.oldLearners;
  return out;
}

/**
 * Converts the storage's snapshot meta into the core's form.
 *
 * @param meta The stored meta.
 * @returns The core's meta.
 * @internal
 */
export function fromStoredSnapshotMeta(meta: StoredSnapshotMeta): SnapshotMeta {
  const conf: { -readonly [K in keyof ConfigurationPayload]: ConfigurationPayload[K] } = {
    peers: meta.peers,
  };
  if (!meta.oldPeers.isEmpty()) conf.oldPeers = meta.oldPeers;
  if (meta.learners !== undefined && !meta.learners.isEmpty()) conf.learners = meta.learners;
  if (meta.oldLearners !== undefined && !meta.oldLearners.isEmpty()) {
    conf.oldLearners = meta.oldLearners;
  }
  return { index: meta.lastIncludedIndex, term: meta.lastIncludedTerm, conf };
}

function emptyConf(): Configuration {
  return new Configuration();
}
