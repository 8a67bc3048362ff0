/**
 * `MemoryLogStorage`: the `memory://` log, entries held in process memory. Its state lives
 * in a process-wide table keyed by name, so a node that shuts down and restarts in the same
 * process finds its log again.
 *
 * @module
 */

import type { LogEntry } from "../../src/core/entry.ts";
import { EntryType } from "../../src/core/entry.ts";
import { RaftError, RaftException } from "../../src/errors/status.ts";
import type { LogStorage } from "./log_storage.ts";
import { checkAppend } from "./_check_append.ts";

interface MemoryLogState {
  first: number;
  entries: LogEntry[];
}

const STATES = new Map<string, MemoryLogState>();

/**
 * An in-memory log storage.
 *
 * @example
 * ```ts
 * import { MemoryLogStorage } from "./memory_log_storage.ts";
 * import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
 * import assert from "node:assert/strict";
 *
 * const log = new MemoryLogStorage("example");
 * await log.init();
 * await log.appendEntries([{ index: 1, term: 2, type: 2, data: ChunkChain.from("x") }]);
 * const again = new MemoryLogStorage("example");
 * await again.init();
 * assert.equal(again.getTerm(1), 2);
 * MemoryLogStorage.destroy("example");
 * ```
 */
export class MemoryLogStorage implements LogStorage {
  readonly #name: string | undefined;
  #state: MemoryLogState;
  #closed = false;

  /**
   * Creates a storage.
   *
   * @param name Process-wide name whose state is shared by every instance with that name;
   *   omit it for a private, unnamed log.
   */
  constructor(name?: string) {
    this.#name = name;
    const existing = name === undefined ? undefined : STATES.get(name);
    this.#state = existing ?? { first: 1, entries: [] };
    if (name !== undefined && !existing) STATES.set(name, this.#state);
  }

  /**
   * Forgets the state of a named log (tests use it to start clean).
   *
   * @param name The name.
   */
  static destroy(name: string): void {
    STATES.delete(name);
  }

  #check(): void {
    if (this.#closed) {
      throw RaftException.of(
        RaftError.EINVAL,
        `Cannot use log storage "memory://${this.#name ?? ""}": it is closed`,
      );
    }
  }

  /** {@inheritDoc LogStorage.init} */
  init(): Promise<void> {
    return Promise.resolve();
  }

  /** {@inheritDoc LogStorage.firstLogIndex} */
  firstLogIndex(): number {
    return this.#state.first;
  }

  /** {@inheritDoc LogStorage.lastLogIndex} */
  lastLogIndex(): number {
    return this.#state.first + this.#state.entries.length - 1;
  }

  #at(index: number): LogEntry | undefined {
    return this.#state.entries[index - this.#state.first];
  }

  /** {@inheritDoc LogStorage.getTerm} */
  getTerm(index: number): number {
    return this.#at(index)?.term ?? 0;
  }

  /** {@inheritDoc LogStorage.getEntry} */
  getEntry(index: number): Promise<LogEntry | null> {
    this.#check();
    return Promise.resolve(this.#at(index) ?? null);
  }

  /** {@inheritDoc LogStorage.getEntries} */
  getEntries(lo: number, hi: number, maxBytes: number = Infinity): Promise<LogEntry[]> {
    this.#check();
    const out: LogEntry[] = [];
    let bytes = 0;
    for (let i = Math.max(lo, this.#state.first); i <= Math.min(hi, this.lastLogIndex()); i++) {
      const e = this.#at(i)!;
      out.push(e);
      bytes += e.data.length;
      if (bytes >= maxBytes) break;
    }
    return Promise.resolve(out);
  }

  /** {@inheritDoc LogStorage.appendEntries} */
  appendEntries(entries: readonly LogEntry[]): Promise<number> {
    this.#check();
    try {
      checkAppend(entries, this.lastLogIndex(), this.getTerm(this.lastLogIndex()));
    } catch (e) {
      return Promise.reject(e);
    }
    this.#state.entries.push(...entries);
    return Promise.resolve(entries.length);
  }

  /** {@inheritDoc LogStorage.truncatePrefix} */
  truncatePrefix(firstIndexKept: number): Promise<void> {
    this.#check();
    const s = this.#state;
    if (firstIndexKept > s.first) {
      s.entries = s.entries.slice(Math.min(firstIndexKept - s.first, s.entries.length));
      s.first = firstIndexKept;
    }
    return Promise.resolve();
  }

  /** {@inheritDoc LogStorage.truncateSuffix} */
  truncateSuffix(lastIndexKept: number): Promise<void> {
    this.#check();
    const s = this.#state;
    const keep = Math.max(0, lastIndexKept - s.first + 1);
    if (keep < s.entries.length) s.entries.length = keep;
    return Promise.resolve();
  }

  /** {@inheritDoc LogStorage.reset} */
  reset(nextLogIndex: number): Promise<void> {
    this.#check();
    if (!(nextLogIndex >= 1)) {
      return Promise.reject(
        RaftException.of(RaftError.EINVAL, `Cannot reset log to index ${nextLogIndex}`),
      );
    }
    this.#state.first = nextLogIndex;
    this.#state.entries = [];
    return Promise.resolve();
  }

  /** {@inheritDoc LogStorage.configurationEntries} */
  configurationEntries(): LogEntry[] {
    return this.#state.entries.filter((e) => e.type === EntryType.CONFIGURATION);
  }

  /** {@inheritDoc LogStorage.close} */
  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}
