/**
 * The `Clock` port: the only way the node runtime reads time or waits, so tests can drive
 * time by hand.
 *
 * @module
 */

/** An opaque timer handle. */
export type TimerHandle = unknown;

/** Time and timers. */
export interface Clock {
  /**
   * Milliseconds on a monotonic scale (not wall time).
   *
   * @returns The current time.
   */
  now(): number;
  /**
   * Runs `fn` once after `ms` milliseconds.
   *
   * @param fn The callback.
   * @param ms The delay.
   * @returns A handle for `clearTimer`.
   */
  setTimer(fn: () => void, ms: number): TimerHandle;
  /**
   * Cancels a timer; unknown or fired handles are ignored.
   *
   * @param handle What `setTimer` returned.
   */
  clearTimer(handle: TimerHandle): void;
}

/**
 * The real clock: `performance.now()` and `setTimeout`.
 *
 * @example
 * ```ts
 * import { systemClock } from "./clock.ts";
 * import assert from "node:assert/strict";
 * assert.ok(systemClock.now() >= 0);
 * ```
 */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * A clock that moves only when told to, for deterministic tests.
 *
 * @example
 * ```ts
 * import { ManualClock } from "./clock.ts";
 * import assert from "node:assert/strict";
 * const clock = new ManualClock();
 * let fired = 0;
 * clock.setTimer(() => fired++, 10);
 * clock.advance(9);
 * assert.equal(fired, 0);
 * clock.advance(1);
 * assert.equal(fired, 1);
 * ```
 */
export class ManualClock implements Clock {
  #now = 0;
  #nextId = 1;
  #timers = new Map<number, { at: number; fn: () => void }>();

  /**
   * The manual time.
   *
   * @returns Milliseconds advanced so far.
   */
  now(): number {
    return this.#now;
  }

  /**
   * Schedules `fn` to run when `advance` passes `now() + ms`.
   *
   * @param fn The callback.
   * @param ms The delay.
   * @returns The handle.
   */
  setTimer(fn: () => void, ms: number): TimerHandle {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn });
    return id;
  }

  /**
   * Cancels a timer.
   *
   * @param handle What `setTimer` returned.
   */
  clearTimer(handle: TimerHandle): void {
    this.#timers.delete(handle as number);
  }

  /**
   * Moves time forward, firing due timers in time order (timers they set fire too if due).
   *
   * @param ms How far to move.
   */
  advance(ms: number): void {
    const target = this.#now + ms;
    while (true) {
      let nextId = -1;
      let nextAt = Infinity;
      for (const [id, t] of this.#timers) {
        if (t.at < nextAt || (t.at === nextAt && id < nextId)) {
          nextAt = t.at;
          nextId = id;
        }
      }
      if (nextId < 0 || nextAt > target) break;
      const timer = this.#timers.get(nextId)!;
      this.#timers.delete(nextId);
      this.#now = nextAt;
      timer.fn();
    }
    this.#now = target;
  }
}
