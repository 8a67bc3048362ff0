/**
 * The `Iterator` handed to `StateMachine.onApply`: a run of committed DATA entries.
 *
 * @module
 */

import type { ChunkChain } from "../bytes/chunk_chain.ts";
import { RaftError, Status } from "../errors/status.ts";
import type { LogEntry } from "../core/entry.ts";
import type { Closure } from "./closure.ts";

/**
 * Walks committed entries inside `onApply` (braft's `Iterator`).
 *
 * @example A counter state machine's onApply
 * ```ts
 * import type { Iterator } from "@webraft/raft";
 * import { Status } from "@webraft/raft";
 *
 * let value = 0n;
 * function onApply(iter: Iterator): void {
 *   for (; iter.valid(); iter.next()) {
 *     value += new DataView(iter.data().toUint8Array().buffer).getBigInt64(0);
 *     iter.done()?.run(Status.OK());
 *   }
 * }
 * void onApply;
 * ```
 */
export interface Iterator {
  /**
   * Whether the iterator is on an entry (and no error was raised).
   *
   * @returns `true` while there is a current entry.
   */
  valid(): boolean;
  /** Moves to the next entry. */
  next(): void;
  /**
   * The current entry's log index.
   *
   * @returns The index.
   */
  index(): number;
  /**
   * The current entry's term.
   *
   * @returns The term.
   */
  term(): number;
  /**
   * The current entry's payload: the bytes given to `apply`.
   *
   * @returns The payload.
   */
  data(): ChunkChain;
  /**
   * The closure given to `apply` for this entry, if this node proposed it as the same leader;
   * else `null`. Whoever gets it must run it.
   *
   * @returns The closure or `null`.
   */
  done(): Closure | null;
  /**
   * Marks the last `ntail` entries (counting the current one) as not applied, fails their
   * closures and the rest of the batch, and puts the node into ERROR (ESTATEMACHINE).
   *
   * @param ntail How many entries, ending at the current one, to roll back (default 1).
   * @param status The reason, reported through `onError`.
   */
  setErrorAndRollback(ntail?: number, status?: Status): void;
}

/**
 * The iterator implementation over one run of DATA entries and their closures.
 *
 * @internal
 */
export class EntryRunIterator implements Iterator {
  #entries: readonly LogEntry[];
  #closures: readonly (Closure | undefined)[];
  #pos = 0;
  #error: { index: number; status: Status } | null = null;

  /**
   * @param entries Consecutive committed DATA entries.
   * @param closures `closures[i]` belongs to `entries[i]` (undefined when none).
   */
  constructor(entries: readonly LogEntry[], closures: readonly (Closure | undefined)[]) {
    this.#entries = entries;
    this.#closures = closures;
  }

  valid(): boolean {
    return this.#error === null && this.#pos < this.#entries.length;
  }

  next(): void {
    if (this.valid()) this.#pos++;
  }

  index(): number {
    return this.#current().index;
  }

  term(): number {
    return this.#current().term;
  }

  data(): ChunkChain {
    return this.#current().data;
  }

  done(): Closure | null {
    if (!this.valid()) return null;
    return this.#closures[this.#pos] ?? null;
  }

  setErrorAndRollback(ntail = 1, status?: Status): void {
    if (!this.valid()) return;
    const n = Math.max(1, Math.min(Math.trunc(ntail), this.#pos + 1));
    const current = this.#current().index;
    this.#error = {
      index: current - n + 1,
      status: status ??
        new Status(RaftError.ESTATEMACHINE, `StateMachine meets error at index ${current}`),
    };
  }

  /** Position within the run (entries before it were iterated). */
  get position(): number {
    return this.#pos;
  }

  /** The rollback point and reason, when `setErrorAndRollback` was called. */
  get error(): { index: number; status: Status } | null {
    return this.#error;
  }

  #current(): LogEntry {
    const entry = this.#entries[this.#pos];
    if (entry === undefined) {
      throw new RangeError("Cannot read iterator: it is not valid (check valid() first)");
    }
    return entry;
  }
}
