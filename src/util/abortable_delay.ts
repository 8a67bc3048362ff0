/**
 * A delay that ends early when a signal aborts.
 *
 * @module
 */

/**
 * Waits `ms`, or less when `signal` aborts (it resolves either way, never rejects).
 *
 * @param ms How long to wait.
 * @param signal Ends the wait early.
 * @returns Resolves after `ms` or on abort.
 *
 * @example
 * ```ts
 * import { abortableDelay } from "./abortable_delay.ts";
 * const c = new AbortController();
 * const wait = abortableDelay(60_000, c.signal);
 * c.abort();
 * await wait; // at once
 * ```
 */
export function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
