/**
 * `OpenFileBudget`: caps the log files a process keeps open across all its segment logs.
 *
 * Each `local://` log keeps its open segment's file open between appends (and a few closed
 * segments' files for reads). With many groups per process that is one descriptor per group
 * even while the group is idle, and the process hits its descriptor limit (commonly 1,024 to
 * 10,240 on a laptop) long before 10,000 groups. The budget keeps the logs that hold open files
 * in least-recently-used order; once more than `flags.raft_max_open_log_files` hold files, the
 * least recently used ones are asked to close the files no read or write is using. They reopen
 * them on their next append or read (one `open` call), so an idle group holds no descriptor
 * while a busy one keeps its file.
 *
 * @module
 */

import { flags } from "../../src/util/flags.ts";

/** A log that can give its idle files back. */
export interface OpenFileHolder {
  /**
   * Closes the files no read or write is using (later work reopens them). Called by the
   * budget; must not throw.
   */
  releaseIdleFiles(): void;
}

/**
 * The logs holding open files, least recently used first.
 *
 * @example
 * ```ts
 * import { OpenFileBudget } from "./open_file_budget.ts";
 * import assert from "node:assert/strict";
 *
 * const budget = new OpenFileBudget(() => 2);
 * const released: string[] = [];
 * const holder = (name: string) => ({ releaseIdleFiles: () => released.push(name) });
 * const [a, b, c] = [holder("a"), holder("b"), holder("c")];
 * budget.touch(a);
 * budget.touch(b);
 * budget.touch(a); // a is now the most recently used
 * budget.touch(c); // three holders, limit two: b gives its files back
 * assert.deepEqual(released, ["b"]);
 * assert.equal(budget.size, 2);
 * ```
 */
export class OpenFileBudget {
  readonly #limit: () => number;
  /** Insertion order is recency: the first is the least recently used. */
  readonly #holders = new Set<OpenFileHolder>();
  /** How many times a holder was asked to release its files. */
  releases = 0;

  /**
   * @param limit The most holders with open files (read on every `touch`; ≤ 0 or not finite:
   *   no limit).
   */
  constructor(limit: () => number) {
    this.#limit = limit;
  }

  /** How many logs hold open files. */
  get size(): number {
    return this.#holders.size;
  }

  /**
   * Notes that `holder` holds files and has just used them; releases the least recently used
   * others beyond the limit.
   *
   * @param holder The log.
   */
  touch(holder: OpenFileHolder): void {
    this.#holders.delete(holder);
    this.#holders.add(holder);
    const limit = this.#limit();
    if (!(limit > 0) || !Number.isFinite(limit)) return;
    for (const old of this.#holders) {
      if (this.#holders.size <= limit) break;
      if (old === holder) continue;
      this.#holders.delete(old);
      this.releases++;
      old.releaseIdleFiles();
    }
  }

  /**
   * Notes that `holder` holds no files any more (it closed them, or was closed).
   *
   * @param holder The log.
   */
  forget(holder: OpenFileHolder): void {
    this.#holders.delete(holder);
  }
}

/** The process's budget for segment-log files, sized by `flags.raft_max_open_log_files`. */
export const openLogFiles: OpenFileBudget = new OpenFileBudget(() => flags.raft_max_open_log_files);
