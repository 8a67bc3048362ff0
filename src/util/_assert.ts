/**
 * Internal invariant checks. A failed invariant is a bug in webraft, never bad input:
 * bad input gets a `Status`/`RaftException`, not an assertion.
 *
 * @module
 */

/** Thrown when an internal invariant does not hold. */
export class InvariantError extends Error {
  /**
   * @param message Which invariant failed and the values involved.
   */
  constructor(message: string) {
    super(`Invariant violated: ${message}`);
    this.name = "InvariantError";
  }
}

/**
 * Throws `InvariantError` unless `condition` holds.
 *
 * @param condition The invariant.
 * @param message What failed; a function is only called on failure.
 */
export function invariant(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new InvariantError(typeof message === "string" ? message : message());
}
