/**
 * `TickSource`: one timer per (clock, period) shared by every node of the process. Nodes
 * subscribe a callback; each tick runs all subscribers in one loop, so the heartbeats of every
 * group leave in the same event-loop turn (and a coalescing transport packs them together).
 * The timer runs only while the source has subscribers.
 *
 * @module
 */

import type { Clock, TimerHandle } from "../util/clock.ts";

const sources = new WeakMap<Clock, Map<number, TickSource>>();

/**
 * A periodic tick shared by its subscribers.
 *
 * @example
 * ```ts
 * import { TickSource } from "./tick_source.ts";
 * import { ManualClock } from "../util/clock.ts";
 * import assert from "node:assert/strict";
 *
 * const clock = new ManualClock();
 * const source = TickSource.for(clock, 10);
 * let a = 0;
 * let b = 0;
 * const fa = () => a++;
 * source.subscribe(fa);
 * source.subscribe(() => b++);
 * clock.advance(25);
 * assert.deepEqual([a, b], [2, 2]);
 * source.unsubscribe(fa);
 * clock.advance(10);
 * assert.deepEqual([a, b], [2, 3]);
 * assert.equal(TickSource.for(clock, 10), source); // one per (clock, period)
 * ```
 */
export class TickSource {
  /** The clock the timer runs on. */
  readonly clock: Clock;
  /** Milliseconds between ticks. */
  readonly periodMs: number;
  #subscribers = new Set<() => void>();
  #timer: TimerHandle | null = null;
  /** Subscribers that threw (they are kept: the next tick calls them again). */
  errors = 0;

  /**
   * The shared source of `clock` ticking every `periodMs`, created on first use.
   *
   * @param clock The clock.
   * @param periodMs The period in ms (> 0).
   * @returns The source.
   */
  static for(clock: Clock, periodMs: number): TickSource {
    let byPeriod = sources.get(clock);
    if (byPeriod === undefined) {
      byPeriod = new Map();
      sources.set(clock, byPeriod);
    }
    let source = byPeriod.get(periodMs);
    if (source === undefined) {
      source = new TickSource(clock, periodMs);
      byPeriod.set(periodMs, source);
    }
    return source;
  }

  private constructor(clock: Clock, periodMs: number) {
    this.clock = clock;
    this.periodMs = periodMs;
  }

  /** How many callbacks are subscribed. */
  get size(): number {
    return this.#subscribers.size;
  }

  /** Whether the timer is armed (exactly while there are subscribers). */
  get running(): boolean {
    return this.#timer !== null;
  }

  /**
   * Calls `fn` on every tick from now on (once per tick, however often subscribed).
   *
   * @param fn The callback.
   */
  subscribe(fn: () => void): void {
    this.#subscribers.add(fn);
    if (this.#timer === null) this.#arm();
  }

  /**
   * Stops calling `fn`; the timer stops with the last subscriber.
   *
   * @param fn What was subscribed.
   */
  unsubscribe(fn: () => void): void {
    this.#subscribers.delete(fn);
    if (this.#subscribers.size === 0 && this.#timer !== null) {
      this.clock.clearTimer(this.#timer);
      this.#timer = null;
    }
  }

  /** When the next tick is due (clock ms): ticks keep to `start + k × period`. */
  #due = 0;

  /**
   * Arms the timer for the next tick. Ticks are scheduled against when they are due, not
   * `periodMs` after the last one ran, so a late timer does not push every later tick back
   * (a chained `setTimeout` drifts by its lateness on every tick: 20 ticks of an election
   * timeout added 11–35 ms on a loaded machine). A tick more than a period late is not
   * repeated: the next one is due a period from now.
   *
   * @param fromFire Called after a tick ran (else the first tick after a subscribe).
   */
  #arm(fromFire = false): void {
    const now = this.clock.now();
    this.#due = fromFire ? this.#due + this.periodMs : now + this.periodMs;
    if (this.#due <= now) this.#due = now + this.periodMs;
    this.#timer = this.clock.setTimer(() => this.#fire(), this.#due - now);
  }

  #fire(): void {
    this.#timer = null;
    // A callback may (un)subscribe: this tick runs the subscribers it started with.
    for (const fn of [...this.#subscribers]) {
      if (!this.#subscribers.has(fn)) continue;
      try {
        fn();
      } catch {
        this.errors++;
      }
    }
    if (this.#subscribers.size > 0 && this.#timer === null) this.#arm(true);
  }
}
