/**
 * `RaftLog`: the core's view of the log — durable entries in `CoreStorage` plus the
 * unstable tail (and a pending snapshot) that the driver has not persisted yet.
 *
 * @module
 */

import { ENTRY_OVERHEAD_BYTES, entryMemorySize, type LogEntry } from "./entry.ts";
import type { CoreStorage } from "./storage.ts";
import type { SnapshotMeta } from "./types.ts";
import { invariant } from "../util/_assert.ts";

/**
 * The log seen by the core.
 *
 * Invariants:
 * - `applied <= applying <= committed <= lastIndex()`;
 * - entries `applied + 1 .. applying` were handed to the driver and not yet reported applied;
 *   `applyingSizes[applyingHead + k]` is the memory size of entry `applied + 1 + k` and
 *   `applyingBytes` their sum;
 * - unstable entries start at `offset` and are consecutive; entries below `offset` are in
 *   storage (storage may still hold stale entries ≥ `offset` until the driver persists);
 * - a committed entry is never truncated.
 */
export class RaftLog {
  /** Durable storage (read-only to the core). */
  readonly storage: CoreStorage;
  /** Highest index known committed. */
  committed: number;
  /** Highest index handed to the driver for applying (in `Ready.committedEntries`). */
  applying: number;
  /** Highest index the state machine finished applying (reported by the driver). */
  applied: number;
  /** Memory size (`entryMemorySize`) of each entry handed out and not yet applied. */
  applyingSizes: number[] = [];
  /** Position in `applyingSizes` of the entry `applied + 1`. */
  applyingHead = 0;
  /** Sum of `applyingSizes`. */
  applyingBytes = 0;
  /** First index of `unstable`. */
  offset: number;
  /** Entries not yet persisted. */
  unstable: LogEntry[] = [];
  /** Storage could not hand out committed entries; wait for `notifyStorageReady()`. */
  applyBlocked = false;
  /** A snapshot received from the leader and not yet installed by the driver. */
  pendingSnapshot: SnapshotMeta | undefined;

  /**
   * @param storage Durable storage.
   * @param applied Index already applied by the state machine (≥ snapshot index).
   */
  constructor(storage: CoreStorage, applied: number) {
    this.storage = storage;
    const snap = storage.snapshotMeta();
    this.offset = storage.lastIndex() + 1;
    this.committed = Math.min(
      Math.max(storage.hardState().commit, snap.index, applied),
      storage.lastIndex(),
    );
    this.applied = Math.max(snap.index, Math.min(applied, this.committed));
    this.applying = this.applied;
  }

  /** The meta of the snapshot the log starts after. */
  snapshotMeta(): SnapshotMeta {
    return this.pendingSnapshot ?? this.storage.snapshotMeta();
  }

  /** First index in the log. */
  firstIndex(): number {
    if (this.pendingSnapshot !== undefined) return this.pendingSnapshot.index + 1;
    return this.storage.firstIndex();
  }

  /** Last index in the log. */
  lastIndex(): number {
    if (this.unstable.length > 0) return this.offset + this.unstable.length - 1;
    if (this.pendingSnapshot !== undefined) return this.pendingSnapshot.index;
    return this.storage.lastIndex();
  }

  /** Last index that is durable. */
  stableLastIndex(): number {
    if (this.pendingSnapshot !== undefined) return -1;
    return this.offset - 1;
  }

  /**
   * @param i Log index.
   * @returns Its term, or `undefined` if compacted or beyond the end.
   */
  term(i: number): number | undefined {
    if (i === 0) return 0;
    if (i >= this.offset) {
      const e = this.unstable[i - this.offset];
      return e?.term;
    }
    if (this.pendingSnapshot !== undefined) {
      return i === this.pendingSnapshot.index ? this.pendingSnapshot.term : undefined;
    }
    return this.storage.term(i);
  }

  /** Term of the last entry. */
  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  /**
   * @param i Log index.
   * @param t Term.
   * @returns Whether the entry at `i` has term `t`.
   */
  matchTerm(i: number, t: number): boolean {
    return this.term(i) === t;
  }

  /**
   * Raft §5.4.1: a candidate's log is at least as up to date as ours.
   *
   * @param index Candidate's last index.
   * @param term Candidate's last term.
   * @returns Whether to consider it up to date.
   */
  isUpToDate(index: number, term: number): boolean {
    const lt = this.lastTerm();
    return term > lt || (term === lt && index >= this.lastIndex());
  }

  /**
   * The largest index ≤ `index` whose term is ≤ `term` (or the first unknown boundary).
   *
   * @param index Start index.
   * @param term Term bound.
   * @returns The index and its term.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = Math.min(index, this.lastIndex());
    for (; i > 0; i--) {
      const t = this.term(i);
      if (t === undefined) return { index: i, term: 0 };
      if (t <= term) return { index: i, term: t };
    }
    return { index: 0, term: 0 };
  }

  /**
   * Appends entries, truncating any conflicting unstable/stable suffix.
   *
   * @param entries Consecutive entries with `entries[0].index <= lastIndex() + 1`.
   * @returns The new last index.
   */
  append(entries: readonly LogEntry[]): number {
    if (entries.length === 0) return this.lastIndex();
    const first = entries[0]!.index;
    invariant(
      first > this.committed,
      () => `truncating committed entry ${first} <= ${this.committed}`,
    );
    invariant(
      first <= this.lastIndex() + 1,
      () => `gap: append ${first} after ${this.lastIndex()}`,
    );
    if (first === this.offset + this.unstable.length) {
      for (const e of entries) this.unstable.push(e);
    } else if (first <= this.offset) {
      this.offset = first;
      this.unstable = [...entries];
    } else {
      this.unstable.length = first - this.offset;
      for (const e of entries) this.unstable.push(e);
    }
    return this.lastIndex();
  }

  /**
   * Appends one entry at the end (the leader's hot path).
   *
   * @param e The entry, with `index === lastIndex() + 1`.
   */
  appendOne(e: LogEntry): void {
    if (this.unstable.length === 0) this.offset = e.index;
    invariant(e.index === this.offset + this.unstable.length, "appendOne must extend the log");
    this.unstable.push(e);
  }

  /**
   * Index of the first entry whose term conflicts with ours (0 if none; or the first new one).
   *
   * @param entries Entries from the leader.
   * @returns The conflict index, or 0.
   */
  findConflict(entries: readonly LogEntry[]): number {
    for (const e of entries) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Entries from `lo`, at most `maxCount` and about `maxBytes`.
   *
   * @param lo First index (≥ firstIndex).
   * @param maxCount Maximum entries.
   * @param maxBytes Payload budget (the first entry always fits).
   * @returns The entries, or `null` if storage cannot answer now.
   */
  entries(lo: number, maxCount: number, maxBytes: number): LogEntry[] | null {
    const hi = Math.min(this.lastIndex() + 1, lo + maxCount);
    if (lo >= hi) return [];
    invariant(lo >= this.firstIndex(), () => `entries(${lo}) below first ${this.firstIndex()}`);
    let out: LogEntry[];
    let bytes = 0;
    if (lo < this.offset) {
      const got = this.storage.entries(lo, Math.min(hi, this.offset), maxBytes);
      if (got === null) return null;
      out = got;
      for (const e of out) bytes += e.data.length;
      if (out.length < Math.min(hi, this.offset) - lo) return out;
    } else {
      out = [];
    }
    for (let i = Math.max(lo, this.offset); i < hi; i++) {
      const e = this.unstable[i - this.offset]!;
      bytes += e.data.length;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /**
   * Raises the commit index.
   *
   * @param index New commit index (ignored if not higher).
   */
  commitTo(index: number): void {
    if (index <= this.committed) return;
    invariant(index <= this.lastIndex(), () => `commit ${index} beyond last ${this.lastIndex()}`);
    this.committed = index;
  }

  /**
   * Whether committed, durable entries exist that were not handed out for applying yet, and
   * the applying budget allows handing out more.
   *
   * @param maxApplying Budget for `applyingBytes` (entries are handed out while below it).
   * @returns `true` when `nextCommitted` would return at least one entry (unless storage
   *   cannot answer now).
   */
  hasNextCommitted(maxApplying: number = Infinity): boolean {
    if (this.pendingSnapshot !== undefined || this.applyBlocked) return false;
    if (this.applyingBytes >= maxApplying) return false;
    return Math.min(this.committed, this.stableLastIndex()) > this.applying;
  }

  /**
   * Hands out the next committed, durable entries for applying and records them as applying.
   * At least one entry is handed out when any is available, so a small budget never stalls.
   *
   * @param maxBytes Payload budget of this batch.
   * @param maxApplying Budget for `applyingBytes` after this batch (one entry may exceed it).
   * @returns The entries (empty if none, over budget, or not available now).
   */
  nextCommitted(maxBytes: number, maxApplying: number = Infinity): LogEntry[] {
    if (!this.hasNextCommitted(maxApplying)) return [];
    const hi = Math.min(this.committed, this.stableLastIndex());
    // no more entries than the budget can take, however small they are
    const room = Math.floor((maxApplying - this.applyingBytes) / ENTRY_OVERHEAD_BYTES) + 1;
    const got = this.entries(this.applying + 1, Math.min(hi - this.applying, room), maxBytes);
    if (got === null) {
      this.applyBlocked = true; // until notifyStorageReady()
      return [];
    }
    let n = 0;
    for (const e of got) {
      const size = entryMemorySize(e);
      if (n > 0 && this.applyingBytes + size > maxApplying) break;
      this.applyingSizes.push(size);
      this.applyingBytes += size;
      n++;
    }
    if (n < got.length) got.length = n;
    if (n > 0) this.applying = got[n - 1]!.index;
    return got;
  }

  /**
   * The state machine finished applying entries up to `index` (ignored beyond `applying`
   * or below `applied`).
   *
   * @param index Last applied index.
   */
  appliedTo(index: number): void {
    const to = Math.min(index, this.applying);
    if (to <= this.applied) return;
    const end = this.applyingHead + (to - this.applied);
    for (let k = this.applyingHead; k < end; k++) this.applyingBytes -= this.applyingSizes[k]!;
    if (end === this.applyingSizes.length) {
      this.applyingSizes = [];
      this.applyingHead = 0;
    } else if (end > 1024 && end * 2 > this.applyingSizes.length) {
      this.applyingSizes = this.applyingSizes.slice(end);
      this.applyingHead = 0;
    } else {
      this.applyingHead = end;
    }
    this.applied = to;
  }

  /**
   * The driver persisted entries up to `index` (with term `term`).
   *
   * @param index Last persisted index.
   * @param term Its term.
   */
  stableTo(index: number, term: number): void {
    if (index < this.offset) return;
    const e = this.unstable[index - this.offset];
    if (e === undefined || e.term !== term) return;
    this.unstable = this.unstable.slice(index - this.offset + 1);
    this.offset = index + 1;
  }

  /**
   * Replaces the log with a snapshot from the leader (to be installed by the driver).
   *
   * @param meta The snapshot meta.
   */
  restore(meta: SnapshotMeta): void {
    this.pendingSnapshot = meta;
    this.unstable = [];
    this.offset = meta.index + 1;
    this.committed = meta.index;
  }

  /**
   * The driver installed the pending snapshot.
   *
   * @param index The snapshot index.
   */
  stableSnapTo(index: number): void {
    if (this.pendingSnapshot?.index !== index) return;
    this.pendingSnapshot = undefined;
    if (index <= this.applied) return;
    // The snapshot holds every entry up to `index` (all of them beyond what was committed
    // when it arrived): nothing before it is still applying.
    this.applied = index;
    this.applying = Math.max(this.applying, index);
    this.applyingSizes = [];
    this.applyingHead = 0;
    this.applyingBytes = 0;
  }
}
