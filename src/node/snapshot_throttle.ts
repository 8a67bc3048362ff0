/**
 * Snapshot copy throttling (braft `SnapshotThrottle`, `ThroughputSnapshotThrottle`).
 *
 * @module
 */

import { type Clock, systemClock } from "../util/clock.ts";
import { flags } from "../util/flags.ts";

/**
 * Limits how fast snapshot files are copied. A node given one (`NodeOptions.snapshotThrottle`)
 * asks it before each chunk it serves to a follower and before each chunk it downloads from a
 * leader, as braft does on both sides.
 */
export interface SnapshotThrottle {
  /**
   * Takes up to `bytes` of the allowance (braft `throttled_by_throughput`).
   *
   * @param bytes How many bytes the caller wants to move.
   * @returns How many it may move now (0 means retry after `retryIntervalMs()`).
   */
  throttledByThroughput(bytes: number): number;
  /**
   * How long to wait after being given 0 bytes (braft `get_retry_interval_ms`).
   *
   * @returns Milliseconds.
   */
  retryIntervalMs(): number;
  /**
   * Admits one more snapshot copy (braft `add_one_more_task`); a follower's download that is
   * refused fails with EBUSY and the leader sends the snapshot again later. Optional.
   *
   * @param isLeader Whether the caller serves the snapshot (braft never limits that side).
   * @returns Whether the copy may start.
   */
  addOneMoreTask?(isLeader: boolean): boolean;
  /**
   * Ends a copy admitted by `addOneMoreTask` (braft `finish_one_task`).
   *
   * @param isLeader As given to `addOneMoreTask`.
   */
  finishOneTask?(isLeader: boolean): void;
}

/**
 * braft's `ThroughputSnapshotThrottle`: at most `throughputBytes` per second, handed out in
 * `checkCycle` cycles per second (each cycle allows `throughputBytes / checkCycle` bytes), but
 * never less than `flags.raft_minimal_throttle_threshold_mb` MiB per second. One instance may be shared by several nodes to cap a whole disk or network link.
 *
 * @example
 * ```ts
 * import { ThroughputSnapshotThrottle } from "@webraft/raft";
 * import { ManualClock } from "@webraft/raft";
 * import assert from "node:assert/strict";
 * const clock = new ManualClock();
 * const t = new ThroughputSnapshotThrottle(1000, 10, clock); // 100 bytes per 100 ms cycle
 * assert.equal(t.throttledByThroughput(60), 60);
 * assert.equal(t.throttledByThroughput(60), 40); // the rest of this cycle
 * assert.equal(t.throttledByThroughput(60), 0);
 * clock.advance(101);
 * assert.equal(t.throttledByThroughput(60), 60);
 * assert.equal(t.retryIntervalMs(), 101);
 * ```
 */
export class ThroughputSnapshotThrottle implements SnapshotThrottle {
  readonly #throughput: number;
  readonly #checkCycle: number;
  readonly #cycleMs: number;
  readonly #clock: Clock;
  #cycleStart: number;
  #used = 0;
  #tasks = 0;

  /**
   * Creates a throttle.
   *
   * @param throughputBytes Bytes per second (braft `throttle_throughput_bytes`), > 0.
   * @param checkCycle Cycles per second (braft `check_cycle`), an integer > 0.
   * @param clock Time source (default the system clock).
   * @throws {RangeError} When an argument is out of range.
   */
  constructor(throughputBytes: number, checkCycle: number, clock: Clock = systemClock) {
    if (!(Number.isFinite(throughputBytes) && throughputBytes > 0)) {
      throw new RangeError(
        `Cannot create snapshot throttle: throughput ${throughputBytes} must be > 0`,
      );
    }
    if (!(Number.isSafeInteger(checkCycle) && checkCycle > 0)) {
      throw new RangeError(
        `Cannot create snapshot throttle: check cycle ${checkCycle} must be an integer > 0`,
      );
    }
    this.#throughput = throughputBytes;
    this.#checkCycle = checkCycle;
    this.#cycleMs = 1000 / checkCycle;
    this.#clock = clock;
    this.#cycleStart = this.#cycleOf(clock.now());
  }

  /**
   * Takes up to `bytes` of the current cycle's allowance; a new cycle starts afresh.
   *
   * @param bytes Wanted bytes.
   * @returns Allowed bytes now (0 when this cycle is used up).
   */
  throttledByThroughput(bytes: number): number {
    const now = this.#clock.now();
    if (now - this.#cycleStart > this.#cycleMs) {
      this.#cycleStart = this.#cycleOf(now);
      this.#used = 0;
    }
    const perSecond = Math.max(
      this.#throughput,
      flags.raft_minimal_throttle_threshold_mb * 1024 * 1024,
    );
    const limitPerCycle = Math.max(1, Math.floor(perSecond / this.#checkCycle));
    const allowed = Math.max(0, Math.min(bytes, limitPerCycle - this.#used));
    this.#used += allowed;
    return allowed;
  }

  /**
   * One cycle plus a millisecond (braft `1000 / check_cycle + 1`).
   *
   * @returns Milliseconds.
   */
  retryIntervalMs(): number {
    return Math.floor(this.#cycleMs) + 1;
  }

  /**
   * Admits a follower's download while fewer than `flags.raft_max_install_snapshot_tasks_num`
   * run through this throttle; the serving side is always admitted.
   *
   * @param isLeader Whether the caller serves the snapshot.
   * @returns Whether the copy may start.
   */
  addOneMoreTask(isLeader: boolean): boolean {
    if (isLeader) return true;
    if (this.#tasks >= flags.raft_max_install_snapshot_tasks_num) return false;
    this.#tasks++;
    return true;
  }

  /**
   * Ends an admitted download.
   *
   * @param isLeader As given to `addOneMoreTask`.
   */
  finishOneTask(isLeader: boolean): void {
    if (!isLeader && this.#tasks > 0) this.#tasks--;
  }

  #cycleOf(now: number): number {
    return Math.floor(now / this.#cycleMs) * this.#cycleMs;
  }
}

/**
 * Waits until `throttle` allows some of `bytes` and takes them.
 *
 * @param throttle The throttle.
 * @param bytes Wanted bytes (> 0).
 * @param signal Stops waiting (then resolves 0).
 * @returns The allowed bytes (> 0 unless aborted).
 * @internal
 */
export async function acquireThroughput(
  throttle: SnapshotThrottle,
  bytes: number,
  signal?: AbortSignal,
): Promise<number> {
  while (!(signal?.aborted ?? false)) {
    const n = throttle.throttledByThroughput(bytes);
    if (n > 0) return n;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, Math.max(1, throttle.retryIntervalMs()));
      signal?.addEventListener("abort", done, { once: true });
      function done(): void {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      }
    });
  }
  return 0;
}
