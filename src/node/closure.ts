/**
 * `Closure` (braft's completion callback) and `Task` (what `node.apply` takes).
 *
 * @module
 */

import type { Bytes } from "../bytes/chunk_chain.ts";
import { RaftException, type Status } from "../errors/status.ts";

/**
 * A completion callback, called exactly once with the outcome. webraft never calls it
 * synchronously inside the call that received it.
 */
export interface Closure {
  /**
   * Reports the outcome.
   *
   * @param status OK, or why the operation failed.
   */
  run(status: Status): void;
}

/**
 * Builds a `Closure` from a function.
 *
 * @param fn Called with the outcome.
 * @returns The closure.
 *
 * @example
 * ```ts
 * import { closure, Status } from "@webraft/raft";
 * import assert from "node:assert/strict";
 * let seen = "";
 * closure((s) => (seen = s.toString())).run(Status.OK());
 * assert.equal(seen, "OK");
 * ```
 */
export function closure(fn: (status: Status) => void): Closure {
  return { run: fn };
}

/**
 * A closure wrapped in a Promise: `await c.promise` resolves on OK and rejects with a
 * `RaftException` otherwise.
 */
export interface PromiseClosure extends Closure {
  /** Settles when `run` is called. */
  readonly promise: Promise<void>;
}

/**
 * Creates a {@linkcode PromiseClosure}.
 *
 * @returns A closure whose `promise` settles when it runs.
 *
 * @example
 * ```ts
 * import { promiseClosure, RaftError, Status } from "@webraft/raft";
 * import assert from "node:assert/strict";
 * const done = promiseClosure();
 * done.run(new Status(RaftError.EPERM, "Not leader"));
 * await assert.rejects(done.promise, /Not leader/);
 * ```
 */
export function promiseClosure(): PromiseClosure {
  let resolve!: () => void;
  let reject!: (e: RaftException) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return {
    promise,
    run(status: Status): void {
      if (status.ok()) resolve();
      else reject(new RaftException(status));
    },
  };
}

/** What `node.apply()` takes: braft's `Task`. */
export interface Task {
  /** The entry's payload; ownership passes to webraft (do not mutate it afterwards). */
  data: Bytes;
  /**
   * Called exactly once with the outcome. Once committed, this very object (not a wrapper) is
   * handed to `onApply` via `iter.done()` on this node, so a state machine can write a
   * response into the caller's own closure class before running it.
   */
  done?: Closure;
  /** Reject with EPERM unless the leader's term equals this (-1 or absent: don't check). */
  expectedTerm?: number;
}
