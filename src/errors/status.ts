/**
 * `Status`, braft's error codes (`RaftError`) and `RaftException`.
 *
 * @module
 */

/**
 * Error codes: braft's raft-specific codes (same numbers as braft's `errno.proto`) and the
 * Linux errno values braft reports in statuses.
 *
 * @example
 * ```ts
 * import { RaftError } from "@webraft/raft";
 * import assert from "node:assert/strict";
 * assert.equal(RaftError.ERAFTTIMEDOUT, 10001);
 * assert.equal(RaftError.EPERM, 1);
 * ```
 */
export const RaftError = {
  /** Success. */
  OK: 0,
  /** Not leader, expected-term mismatch, leader stepped down, node stopped. */
  EPERM: 1,
  /** No such peer, group or file. */
  ENOENT: 2,
  /** Interrupted (e.g. by a retried InstallSnapshot). */
  EINTR: 4,
  /** I/O error. */
  EIO: 5,
  /** Try again (unknown leader, throttled). */
  EAGAIN: 11,
  /** Permission denied (CLI disabled). */
  EACCES: 13,
  /** Busy: transferring leadership, another configuration change, snapshot in progress. */
  EBUSY: 16,
  /** Already exists. */
  EEXIST: 17,
  /** Invalid argument. */
  EINVAL: 22,
  /** No space left on device. */
  ENOSPC: 28,
  /** Out of range. */
  ERANGE: 34,
  /** No data. */
  ENODATA: 61,
  /** Shut down. */
  ESHUTDOWN: 108,
  /** Timed out (transport level). */
  ETIMEDOUT: 110,
  /** Host down. */
  EHOSTDOWN: 112,
  /** Host unreachable (e.g. transfer target keeps failing). */
  EHOSTUNREACH: 113,
  /** Stale (e.g. a snapshot older than applied state). */
  ESTALE: 116,
  /** Cancelled. */
  ECANCELED: 125,
  /** Any raft timeout: election, vote, lost quorum, lease expired. */
  ERAFTTIMEDOUT: 10001,
  /** The user state machine failed. */
  ESTATEMACHINE: 10002,
  /** A new peer failed to catch up. */
  ECATCHUP: 10003,
  /** The leader was removed from the configuration. */
  ELEADERREMOVED: 10004,
  /** `resetPeers` forced a step-down. */
  ESETPEER: 10005,
  /** The node is shut down (declared by braft; `ESHUTDOWN` is what it uses). */
  ENODESHUTDOWN: 10006,
  /** A request with a higher term arrived. */
  EHIGHERTERMREQUEST: 10007,
  /** A response with a higher term arrived. */
  EHIGHERTERMRESPONSE: 10008,
  /** The node is in error. */
  EBADNODE: 10009,
  /** Voted for a candidate. */
  EVOTEFORCANDIDATE: 10010,
  /** A new leader appeared. */
  ENEWLEADER: 10011,
  /** Two leaders in one term. */
  ELEADERCONFLICT: 10012,
  /** Leadership is being transferred. */
  ETRANSFERLEADERSHIP: 10013,
  /** `readCommittedUserLog`: the log at that index was compacted. */
  ELOGDELETED: 10014,
  /** `readCommittedUserLog`: no user entry at or after that index is applied yet. */
  ENOMOREUSERLOG: 10015,
  /** Readonly mode rejects new user entries. */
  EREADONLY: 10016,
} as const;

/** One of the numbers in {@linkcode RaftError}. */
export type RaftErrorCode = (typeof RaftError)[keyof typeof RaftError];

const NAMES = new Map<number, string>(
  Object.entries(RaftError).map(([name, code]) => [code, name]),
);

/**
 * The symbolic name of an error code, e.g. `"EPERM"`, or `"E<code>"` when unknown.
 *
 * @param code A status code.
 * @returns The name.
 *
 * @example
 * ```ts
 * import { errorName, RaftError } from "@webraft/raft";
 * import assert from "node:assert/strict";
 * assert.equal(errorName(RaftError.ECATCHUP), "ECATCHUP");
 * ```
 */
export function errorName(code: number): string {
  return NAMES.get(code) ?? `E${code}`;
}

/**
 * The outcome of an operation: code 0 is success, anything else is an error with a message.
 *
 * @example
 * ```ts
 * import { RaftError, Status } from "@webraft/raft";
 * import assert from "node:assert/strict";
 * assert.ok(Status.OK().ok());
 * const s = new Status(RaftError.EPERM, "Not leader");
 * assert.equal(s.ok(), false);
 * assert.equal(s.toString(), "EPERM: Not leader");
 * ```
 */
export class Status {
  /** 0 on success, else a {@linkcode RaftError} code. */
  readonly code: number;
  /** Human-readable detail; empty on success. */
  readonly message: string;

  /**
   * Creates a status.
   *
   * @param code 0 for success or an error code.
   * @param message What went wrong.
   */
  constructor(code: number = 0, message: string = "") {
    this.code = code;
    this.message = message;
  }

  /**
   * The success status.
   *
   * @returns A status with code 0.
   */
  static OK(): Status {
    return OK_STATUS;
  }

  /**
   * An error status.
   *
   * @param code The error code.
   * @param message What went wrong.
   * @returns The status.
   */
  static error(code: number, message: string): Status {
    return new Status(code, message);
  }

  /**
   * Whether this is success.
   *
   * @returns `true` when `code` is 0.
   */
  ok(): boolean {
    return this.code === 0;
  }

  /**
   * `"OK"` or `"<NAME>: <message>"`.
   *
   * @returns The printable form.
   */
  toString(): string {
    return this.ok() ? "OK" : `${errorName(this.code)}: ${this.message}`;
  }
}

const OK_STATUS = new Status(0, "");

/**
 * What failed when a node went to ERROR (braft `ErrorType`), carried by the `RaftException`
 * that `StateMachine.onError` receives.
 *
 * @example
 * ```ts
 * import { ErrorType, RaftError, RaftException, Status } from "@webraft/raft";
 * import assert from "node:assert/strict";
 * const e = new RaftException(new Status(RaftError.EIO, "disk"), { type: ErrorType.LOG });
 * assert.equal(e.type, ErrorType.LOG);
 * assert.equal(new RaftException(new Status(RaftError.EIO, "x")).type, ErrorType.NONE);
 * ```
 */
export const ErrorType = {
  /** Not a node error (or not classified). */
  NONE: 0,
  /** The log storage failed (braft `ERROR_TYPE_LOG`). */
  LOG: 1,
  /** The term/vote meta storage failed (braft `ERROR_TYPE_STABLE`). */
  STABLE: 2,
  /** Saving, copying or installing a snapshot failed (braft `ERROR_TYPE_SNAPSHOT`). */
  SNAPSHOT: 3,
  /** The state machine failed (braft `ERROR_TYPE_STATE_MACHINE`). */
  STATE_MACHINE: 4,
} as const;

/** One of the values of {@linkcode ErrorType}. */
export type ErrorType = (typeof ErrorType)[keyof typeof ErrorType];

/**
 * The error every rejected webraft Promise rejects with: an `Error` carrying a `Status`.
 *
 * @example
 * ```ts
 * import { RaftError, RaftException, Status } from "@webraft/raft";
 * import assert from "node:assert/strict";
 * const e = new RaftException(new Status(RaftError.EBUSY, "Doing another configuration change"));
 * assert.equal(e.code, RaftError.EBUSY);
 * assert.match(e.message, /EBUSY/);
 * ```
 */
export class RaftException extends Error {
  /** The failed status. */
  readonly status: Status;
  /** What failed, for errors that put a node into ERROR (braft `Error.type`). */
  readonly type: ErrorType;

  /**
   * Wraps a failed status.
   *
   * @param status The error status.
   * @param options Standard error options (`cause`) and the error type (default NONE).
   */
  constructor(status: Status, options?: ErrorOptions & { type?: ErrorType }) {
    super(status.toString(), options);
    this.name = "RaftException";
    this.status = status;
    this.type = options?.type ?? ErrorType.NONE;
  }

  /**
   * This error with `type` set, unless it already has one.
   *
   * @param type What failed.
   * @returns `this`, or a copy carrying `type`.
   */
  withType(type: ErrorType): RaftException {
    if (this.type !== ErrorType.NONE) return this;
    return new RaftException(this.status, { cause: this.cause, type });
  }

  /**
   * Shorthand for `new RaftException(new Status(code, message))`.
   *
   * @param code The error code.
   * @param message What went wrong.
   * @returns The exception.
   */
  static of(code: number, message: string): RaftException {
    return new RaftException(new Status(code, message));
  }

  /** The status code. */
  get code(): number {
    return this.status.code;
  }
}
