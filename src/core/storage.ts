/**
 * `CoreStorage`: the read-only view of durable state the core consults, and
 * `MemoryCoreStorage`, an in-memory implementation for tests, the simulator and benchmarks.
 *
 * The core never writes storage: the driver persists what a `Ready` asks for and then calls
 * `advance()`. An asynchronous log storage implements this interface from its in-memory index
 * (first/last index, term of every entry, configuration entries); only `entries()` may need
 * disk reads, and it may answer `null` ("not available now"): the driver fetches them in the
 * background and calls `core.notifyStorageReady()`.
 *
 * @module
 */

import type { ConfigurationPayload, LogEntry } from "./entry.ts";
import type { HardState, SnapshotMeta } from "./types.ts";
import { invariant } from "../util/_assert.ts";
import { Configuration } from "../conf/configuration.ts";

/** A CONFIGURATION entry's position and membership, as kept by a log's index. */
export interface ConfigurationRecord {
  /** Log index of the entry. */
  readonly index: number;
  /** Term of the entry. */
  readonly term: number;
  /** Membership it carries. */
  readonly conf: ConfigurationPayload;
}

/**
 * What the core reads from durable storage. Everything but `entries` must answer
 * synchronously from memory.
 *
 * Invariants: `firstIndex() === snapshotMeta().index + 1` (an empty snapshot has index 0 and
 * term 0); `lastIndex() >= firstIndex() - 1`; `term(i)` is defined for
 * `snapshotMeta().index <= i <= lastIndex()`.
 */
export interface CoreStorage {
  /** The persisted hard state (term 0 on fresh storage; the core then starts at term 1). */
  hardState(): HardState;
  /** The latest snapshot's meta (`{index: 0, term: 0}` when none). */
  snapshotMeta(): SnapshotMeta;
  /** First index still in the log. */
  firstIndex(): number;
  /** Last index in the log (`firstIndex() - 1` when empty). */
  lastIndex(): number;
  /**
   * Term of entry `i`, or `undefined` if `i` is outside `[snapshot index, lastIndex]`.
   *
   * @param i Log index.
   */
  term(i: number): number | undefined;
  /**
   * Entries `[lo, hi)`, at least one if any, at most `maxBytes` of payload beyond the first;
   * `null` when they are not available synchronously (the driver loads them and calls
   * `notifyStorageReady()`).
   *
   * @param lo First index (≥ firstIndex).
   * @param hi One past the last index (≤ lastIndex + 1).
   * @param maxBytes Payload budget.
   */
  entries(lo: number, hi: number, maxBytes: number): LogEntry[] | null;
  /** CONFIGURATION entries above the snapshot, in index order. */
  configurations(): ConfigurationRecord[];
}

const EMPTY_HARD_STATE: HardState = { term: 0, vote: "", commit: 0 };

/**
 * An in-memory `CoreStorage` with the write operations a driver needs: `append`,
 * `setHardState`, `applySnapshot`, `compact`. Crash simulation copies only what was
 * persisted (`clone()`).
 *
 * @example
 * ```ts
 * import { MemoryCoreStorage } from "./storage.ts";
 * import { ChunkChain } from "../bytes/chunk_chain.ts";
 * import assert from "node:assert/strict";
 * const s = new MemoryCoreStorage();
 * s.append([{ index: 1, term: 1, type: 2, data: ChunkChain.from("x") }]);
 * assert.equal(s.lastIndex(), 1);
 * assert.equal(s.term(1), 1);
 * ```
 */
export class MemoryCoreStorage implements CoreStorage {
  #hard: HardState = EMPTY_HARD_STATE;
  #snap: SnapshotMeta;
  // #log[i] holds index #snap.index + 1 + i
  #log: LogEntry[] = [];

  /**
   * Creates empty storage (or storage starting from a snapshot).
   *
   * @param snapshot Optional initial snapshot meta.
   */
  constructor(snapshot?: SnapshotMeta) {
    this.#snap = snapshot ?? { index: 0, term: 0, conf: { peers: emptyConf() } };
  }

  /** The hard state. */
  hardState(): HardState {
    return this.#hard;
  }

  /** The snapshot meta. */
  snapshotMeta(): SnapshotMeta {
    return this.#snap;
  }

  /** The first log index. */
  firstIndex(): number {
    return this.#snap.index + 1;
  }

  /** The last log index. */
  lastIndex(): number {
    return this.#snap.index + this.#log.length;
  }

  /**
   * The term of a log entry.
   *
   * @param i Log index.
   * @returns Its term, or `undefined` if out of range.
   */
  term(i: number): number | undefined {
    if (i === this.#snap.index) return this.#snap.term;
    if (i < this.#snap.index || i > this.lastIndex()) return undefined;
    return this.#log[i - this.#snap.index - 1]!.term;
  }

  /**
   * Entries `[lo, hi)` within a byte budget.
   *
   * @param lo First index.
   * @param hi One past the last index.
   * @param maxBytes Payload budget (the first entry is always included).
   * @returns The entries.
   */
  entries(lo: number, hi: number, maxBytes: number): LogEntry[] {
    invariant(
      lo > this.#snap.index && hi <= this.lastIndex() + 1,
      () => `entries(${lo}, ${hi}) outside [${this.firstIndex()}, ${this.lastIndex()}]`,
    );
    const out: LogEntry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.#log[i - this.#snap.index - 1]!;
      bytes += e.data.length;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /** The CONFIGURATION entries above the snapshot. */
  configurations(): ConfigurationRecord[] {
    const out: ConfigurationRecord[] = [];
    for (const e of this.#log) {
      if (e.conf !== undefined) out.push({ index: e.index, term: e.term, conf: e.conf });
    }
    return out;
  }

  /**
   * Persists the hard state.
   *
   * @param hs The new hard state.
   */
  setHardState(hs: HardState): void {
    this.#hard = hs;
  }

  /**
   * Appends entries, first truncating any stored suffix from `entries[0].index`.
   *
   * @param entries Consecutive entries; the first must be ≤ lastIndex + 1.
   */
  append(entries: readonly LogEntry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    invariant(
      first > this.#snap.index && first <= this.lastIndex() + 1,
      () => `append at ${first} outside (${this.#snap.index}, ${this.lastIndex() + 1}]`,
    );
    this.#log.length = first - this.#snap.index - 1;
    for (const e of entries) this.#log.push(e);
  }

  /**
   * Replaces the log by a snapshot (an installed one from the leader): keeps the entries
   * after it only if the log holds the snapshot's last entry with the same term.
   *
   * @param meta The snapshot meta.
   */
  applySnapshot(meta: SnapshotMeta): void {
    if (this.term(meta.index) === meta.term) {
      this.compact(meta);
      return;
    }
    this.#snap = meta;
    this.#log = [];
  }

  /**
   * Drops entries up to `meta.index` after a local snapshot at that index.
   *
   * @param meta The snapshot meta (its index must be in the log).
   */
  compact(meta: SnapshotMeta): void {
    if (meta.index <= this.#snap.index) return;
    invariant(meta.index <= this.lastIndex(), "compact beyond the last index");
    this.#log = this.#log.slice(meta.index - this.#snap.index);
    this.#snap = meta;
  }

  /**
   * An independent copy (entries are shared, they are immutable).
   *
   * @returns The copy.
   */
  clone(): MemoryCoreStorage {
    const c = new MemoryCoreStorage(this.#snap);
    c.#hard = this.#hard;
    c.#log = [...this.#log];
    return c;
  }
}

function emptyConf(): Configuration {
  return new Configuration();
}
