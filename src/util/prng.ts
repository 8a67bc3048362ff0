/**
 * A small, fast, seeded pseudo-random generator (xoshiro128**), so that every random choice
 * in the core and the simulator can be replayed from one seed.
 *
 * @module
 */

/**
 * Deterministic PRNG seeded from one 32-bit integer.
 *
 * @example
 * ```ts
 * import { Prng } from "./prng.ts";
 * import assert from "node:assert/strict";
 * const a = new Prng(42);
 * const b = new Prng(42);
 * assert.equal(a.next(), b.next());
 * assert.ok(a.int(10) < 10);
 * ```
 */
export class Prng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  /**
   * Creates a generator.
   *
   * @param seed Any 32-bit integer; equal seeds give equal sequences.
   */
  constructor(seed: number) {
    // splitmix32 to spread the seed over the 128-bit state
    let x = seed >>> 0;
    const split = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#s0 = split();
    this.#s1 = split();
    this.#s2 = split();
    this.#s3 = split() | 1;
  }

  /**
   * The next 32-bit unsigned value.
   *
   * @returns An integer in `[0, 2^32)`.
   */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5), 7), 9) >>> 0;
    const t = this.#s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /**
   * A float in `[0, 1)`.
   *
   * @returns The value.
   */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /**
   * An integer in `[0, n)`.
   *
   * @param n Exclusive upper bound (> 0).
   * @returns The value.
   */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /**
   * An integer in `[lo, hi]`.
   *
   * @param lo Inclusive lower bound.
   * @param hi Inclusive upper bound.
   * @returns The value.
   */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /**
   * `true` with probability `p`.
   *
   * @param p Probability in `[0, 1]`.
   * @returns The coin flip.
   */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /**
   * A uniformly chosen element.
   *
   * @param items A non-empty array.
   * @returns One of its elements.
   */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /**
   * Shuffles an array in place (Fisher–Yates).
   *
   * @param items The array.
   * @returns The same array.
   */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
