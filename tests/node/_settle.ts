/**
 * Checks the node API's completion rule in tests: every closure handed to `apply()` runs
 * exactly once and every Promise the node API returns settles, on every path (success,
 * step-down, error, shutdown). `Cluster` instruments each node it starts and checks in
 * `stopAll()`.
 */

import assert from "node:assert/strict";
import type { Status } from "../../src/errors/status.ts";
import type { Closure, Task } from "../../src/node/closure.ts";
import type { Node } from "../../src/node/node.ts";

/** The node methods that return a Promise. */
const ASYNC_METHODS = [
  "applyAsync",
  "addPeer",
  "removePeer",
  "changePeers",
  "addLearner",
  "removeLearner",
  "snapshot",
  "readIndex",
  "readCommittedUserLog",
  "waitLeader",
  "waitApplied",
  "shutdown",
  "join",
] as const;

interface ClosureRecord {
  what: string;
  runs: number;
}

interface PromiseRecord {
  what: string;
  settled: boolean;
}

/** Records closures and promises, then checks that all of them completed exactly once. */
export class SettleTracker {
  readonly #closures: ClosureRecord[] = [];
  readonly #promises: PromiseRecord[] = [];
  readonly #seen = new WeakSet<Closure>();

  /**
   * Counts the runs of `done` (by wrapping its `run` property in place, so the object keeps
   * its identity for `iter.done()`).
   */
  closure(done: Closure, what: string): void {
    if (this.#seen.has(done)) return;
    this.#seen.add(done);
    const record: ClosureRecord = { what, runs: 0 };
    this.#closures.push(record);
    const run = done.run;
    done.run = (status: Status): void => {
      record.runs++;
      run.call(done, status);
    };
  }

  /** Notes whether `p` settles; returns it unchanged. */
  promise<T>(p: Promise<T>, what: string): Promise<T> {
    const record: PromiseRecord = { what, settled: false };
    this.#promises.push(record);
    p.then(() => (record.settled = true), () => (record.settled = true));
    return p;
  }

  /** Instruments a node's `apply` and every method that returns a Promise. */
  instrument(node: Node): void {
    const id = String(node.nodeId());
    const apply = node.apply.bind(node);
    node.apply = (task: Task): void => {
      if (task?.done !== undefined) this.closure(task.done, `apply() on ${id}`);
      apply(task);
    };
    const methods = node as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    for (const name of ASYNC_METHODS) {
      const original = methods[name]!.bind(node);
      methods[name] = (...args: unknown[]) => this.promise(original(...args), `${name}() on ${id}`);
    }
  }

  /**
   * Waits (up to `deadlineMs`) for every promise to settle and every closure to run, then
   * asserts that no closure ran twice.
   */
  async check(deadlineMs: number): Promise<void> {
    const end = Date.now() + deadlineMs;
    const outstanding = (): string[] => [
      ...this.#closures.filter((c) => c.runs === 0).map((c) => `closure from ${c.what}`),
      ...this.#promises.filter((p) => !p.settled).map((p) => `promise from ${p.what}`),
    ];
    while (outstanding().length > 0 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const left = outstanding();
    assert.deepEqual(
      left.slice(0, 10),
      [],
      `${left.length} closures/promises never completed (first 10 shown)`,
    );
    const twice = this.#closures.filter((c) => c.runs > 1);
    assert.deepEqual(
      twice.map((c) => `closure from ${c.what} ran ${c.runs} times`),
      [],
      "closures must run exactly once",
    );
  }

  /** How many closures and promises were tracked (so a test can see the check had work). */
  get counts(): { closures: number; promises: number } {
    return { closures: this.#closures.length, promises: this.#promises.length };
  }
}
