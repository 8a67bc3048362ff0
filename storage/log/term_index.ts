/**
 * `TermIndex`: the terms of a contiguous log range, kept as runs (first index, term) so that
 * synchronous term lookups need memory proportional to the number of term changes.
 *
 * @module
 */

/**
 * Run-length index of log terms.
 *
 * @example
 * ```ts
 * import { TermIndex } from "./term_index.ts";
 * import assert from "node:assert/strict";
 * const t = new TermIndex();
 * t.append(1, 1); t.append(2, 1); t.append(3, 2);
 * assert.equal(t.termAt(2), 1);
 * assert.equal(t.termAt(3), 2);
 * ```
 */
export class TermIndex {
  #starts: number[] = [];
  #terms: number[] = [];

  /**
   * Records that entry `index` (the next one) has `term`.
   *
   * @param index The entry index (must follow the previous one).
   * @param term Its term.
   */
  append(index: number, term: number): void {
    const n = this.#terms.length;
    if (n > 0 && this.#terms[n - 1] === term) return;
    if (n === 0) {
      // One-element literals: a first push() would reserve room for 17 (the log of an idle
      // group rarely sees a second term).
      this.#starts = [index];
      this.#terms = [term];
      return;
    }
    this.#starts.push(index);
    this.#terms.push(term);
  }

  /**
   * The term of `index` (the caller checks that it is inside the log).
   *
   * @param index An index inside the log.
   * @returns The term, 0 when before every run.
   */
  termAt(index: number): number {
    const starts = this.#starts;
    let lo = 0;
    let hi = starts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid]! <= index) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found < 0 ? 0 : this.#terms[found]!;
  }

  /**
   * Forgets entries after `lastKept`.
   *
   * @param lastKept The last index kept.
   */
  dropAfter(lastKept: number): void {
    while (this.#starts.length > 0 && this.#starts[this.#starts.length - 1]! > lastKept) {
      this.#starts.pop();
      this.#terms.pop();
    }
  }

  /**
   * Forgets entries before `firstKept`.
   *
   * @param firstKept The first index kept.
   */
  dropBefore(firstKept: number): void {
    let k = 0;
    while (k + 1 < this.#starts.length && this.#starts[k + 1]! <= firstKept) k++;
    if (k > 0) {
      this.#starts.splice(0, k);
      this.#terms.splice(0, k);
    }
    if (this.#starts.length > 0 && this.#starts[0]! < firstKept) this.#starts[0] = firstKept;
  }
}
