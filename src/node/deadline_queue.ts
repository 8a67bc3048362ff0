/**
 * `DeadlineQueue`: one timer per clock for the long, rarely firing timers of many nodes (the
 * snapshot interval of every group of a process). A binary heap ordered by deadline keeps one
 * small entry per armed deadline; the clock holds a single timer, for the earliest one. A
 * process with 10,000 groups thus keeps 10,000 heap entries of a few dozen bytes instead of
 * 10,000 runtime timers, each with its closures.
 *
 * @module
 */

import type { Clock, TimerHandle } from "../util/clock.ts";

/** What a deadline calls when it is due. */
export interface DeadlineTarget {
  /** Called once, on the clock's timer, when the deadline is due (unless cancelled). */
  onDeadline(): void;
}

/** An armed deadline: cancel it with {@linkcode DeadlineQueue.cancel}. */
export interface Deadline {
  /** When it is due, on the clock's scale. */
  readonly at: number;
}

interface Entry extends Deadline {
  readonly at: number;
  /** Arrival order: equal deadlines fire in the order they were armed. */
  readonly seq: number;
  target: DeadlineTarget | null;
  /** Position in the heap, -1 once removed. */
  pos: number;
}

/** The largest delay a runtime timer takes (2^31 - 1 ms); longer waits re-arm. */
const MAX_TIMER_MS = 0x7fffffff;

const queues = new WeakMap<Clock, DeadlineQueue>();

/**
 * Deadlines of many targets on one clock timer.
 *
 * @example
 * ```ts
 * import { DeadlineQueue } from "./deadline_queue.ts";
 * import { ManualClock } from "../util/clock.ts";
 * import assert from "node:assert/strict";
 *
 * const clock = new ManualClock();
 * const queue = DeadlineQueue.for(clock);
 * const fired: string[] = [];
 * queue.add(30, { onDeadline: () => fired.push("b") });
 * const a = queue.add(10, { onDeadline: () => fired.push("a") });
 * queue.cancel(a);
 * clock.advance(30);
 * assert.deepEqual(fired, ["b"]);
 * assert.equal(queue.size, 0);
 * ```
 */
export class DeadlineQueue {
  /** The clock the timer runs on. */
  readonly clock: Clock;
  #heap: Entry[] = [];
  #seq = 0;
  #timer: TimerHandle | null = null;
  /** When the armed timer fires (Infinity when none). */
  #timerAt = Infinity;
  /** Targets that threw (the others still fire). */
  errors = 0;

  /**
   * The shared queue of `clock`, created on first use.
   *
   * @param clock The clock.
   * @returns The queue.
   */
  static for(clock: Clock): DeadlineQueue {
    let queue = queues.get(clock);
    if (queue === undefined) {
      queue = new DeadlineQueue(clock);
      queues.set(clock, queue);
    }
    return queue;
  }

  private constructor(clock: Clock) {
    this.clock = clock;
  }

  /** How many deadlines are armed. */
  get size(): number {
    return this.#heap.length;
  }

  /** Whether the clock timer is armed (exactly while a deadline is). */
  get running(): boolean {
    return this.#timer !== null;
  }

  /**
   * Arms a deadline `delayMs` from now.
   *
   * @param delayMs Milliseconds from now (negative or NaN: as soon as the timer runs).
   * @param target What to call then.
   * @returns The deadline, for `cancel`.
   */
  add(delayMs: number, target: DeadlineTarget): Deadline {
    const at = this.clock.now() + (delayMs > 0 ? delayMs : 0);
    const entry: Entry = { at, seq: this.#seq++, target, pos: this.#heap.length };
    this.#heap.push(entry);
    this.#up(entry.pos);
    this.#arm();
    return entry;
  }

  /**
   * Cancels a deadline: its target is not called. Cancelling one that fired or was cancelled
   * does nothing.
   *
   * @param deadline What `add` returned.
   */
  cancel(deadline: Deadline): void {
    const entry = deadline as Entry;
    if (entry.pos < 0 || this.#heap[entry.pos] !== entry) return;
    entry.target = null;
    this.#removeAt(entry.pos);
    this.#arm();
  }

  #fire(): void {
    this.#timer = null;
    this.#timerAt = Infinity;
    const now = this.clock.now();
    // Deadlines armed by the targets called here wait for the next timer, even if due now.
    const due: Entry[] = [];
    while (this.#heap.length > 0 && this.#heap[0]!.at <= now) {
      due.push(this.#heap[0]!);
      this.#removeAt(0);
    }
    for (const entry of due) {
      const target = entry.target;
      entry.target = null;
      try {
        target?.onDeadline();
      } catch {
        this.errors++;
      }
    }
    this.#arm();
  }

  /** Keeps the clock timer on the earliest deadline (none while the heap is empty). */
  #arm(): void {
    const first = this.#heap[0]?.at ?? Infinity;
    if (first === this.#timerAt) return;
    if (this.#timer !== null) this.clock.clearTimer(this.#timer);
    this.#timer = null;
    this.#timerAt = first;
    if (first === Infinity) return;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, first - this.clock.now()));
    this.#timer = this.clock.setTimer(() => this.#fire(), delay);
  }

  #removeAt(pos: number): void {
    const heap = this.#heap;
    const removed = heap[pos]!;
    const last = heap.pop()!;
    removed.pos = -1;
    if (last === removed) return;
    heap[pos] = last;
    last.pos = pos;
    this.#down(pos);
    this.#up(last.pos);
  }

  #before(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  #up(pos: number): void {
    const heap = this.#heap;
    const entry = heap[pos]!;
    while (pos > 0) {
      const parentPos = (pos - 1) >> 1;
      const parent = heap[parentPos]!;
      if (!this.#before(entry, parent)) break;
      heap[pos] = parent;
      parent.pos = pos;
      pos = parentPos;
    }
    heap[pos] = entry;
    entry.pos = pos;
  }

  #down(pos: number): void {
    const heap = this.#heap;
    const entry = heap[pos]!;
    for (;;) {
      const left = 2 * pos + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && this.#before(heap[right]!, heap[left]!) ? right : left;
      if (!this.#before(heap[child]!, entry)) break;
      heap[pos] = heap[child]!;
      heap[pos]!.pos = pos;
      pos = child;
    }
    heap[pos] = entry;
    entry.pos = pos;
  }
}
