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
   * The very closure object given to `apply` as `task.done` for this entry (braft
   * `iter.done()`), if this node proposed it as the same leader; else `null`. A state machine
   * may downcast it to its own closure class to hand a response back to the caller.
   *
   * Fetching it passes ownership to the state machine: it must run it exactly once (now or
   * later). A closure whose entry the iterator moves past without `done()` being called is run
   * by webraft with OK, so every closure runs exactly once either way.
   *
   * @returns The closure or `null`.
   */
  done(): Closure | null;
  /**
   * Marks the last `ntail` entries (counting the current one) as not applied and puts the node
   * into ERROR (ESTATEMACHINE). As in braft, webraft runs the closures of the rolled-back
   * entries and of the rest of the batch with the error, so the state machine must not run the
   * closures of entries it rolls back.
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
  #fetched = new Set<number>();

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
    const done = this.#closures[this.#pos] ?? null;
    if (done !== null) this.#fetched.add(this.#pos);
    return done;
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

  /**
   * Whether `done()` handed out the closure at `position` (the state machine then owns it).
   *
   * @param position A position within the run.
   * @returns `true` once `done()` returned that entry's closure.
   */
  handedOut(position: number): boolean {
    return this.#fetched.has(position);
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
