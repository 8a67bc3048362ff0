/**
 * `StateMachine`: the user's replicated service, and `LeaderChangeContext`.
 *
 * @module
 */

import type { Configuration } from "../conf/configuration.ts";
import type { PeerId } from "../conf/peer_id.ts";
import { RaftError, type RaftException, Status } from "../errors/status.ts";
import type { Closure } from "./closure.ts";
import type { Iterator } from "./iterator.ts";
import type { SnapshotReader, SnapshotWriter } from "../../storage/snapshot/snapshot.ts";

/** Who leads, in which term, and why it changed (braft's `LeaderChangeContext`). */
export interface LeaderChangeContext {
  /** The leader being followed (start) or left (stop); `null` when unknown. */
  readonly leaderId: PeerId | null;
  /** Its term. */
  readonly term: number;
  /** Why following stopped, or started (ENEWLEADER, as braft's `check_step_down`). */
  readonly status: Status;
}

/**
 * The user's state machine. Subclass it and implement `onApply`; override the other
 * callbacks as needed. webraft calls every callback one at a time, in order (a callback
 * that returns a Promise is awaited before the next one starts). A callback that throws
 * puts the node into ERROR: `onError` is called and nothing else is applied; then a leader
 * gets `onLeaderStop` and a follower `onStopFollowing`, with EBADNODE (braft `on_error`).
 *
 * @example A counter
 * ```ts
 * import { type Iterator, StateMachine, Status } from "@webraft/raft";
 *
 * class Counter extends StateMachine {
 *   value = 0;
 *   onApply(iter: Iterator): void {
 *     for (; iter.valid(); iter.next()) {
 *       this.value += iter.data().toUint8Array()[0] ?? 0;
 *       iter.done()?.run(Status.OK());
 *     }
 *   }
 * }
 * new Counter();
 * ```
 */
export abstract class StateMachine {
  /**
   * Applies a batch of committed user entries, in log order. Run each `iter.done()` closure.
   *
   * @param iter The entries; advance with `next()` while `valid()`.
   */
  abstract onApply(iter: Iterator): void | Promise<void>;

  /** Called once when the node shuts down. */
  onShutdown(): void | Promise<void> {}

  /**
   * Saves a snapshot: write files through `writer`, then run `done` (it may run later, from
   * another task). The framework fills in the snapshot meta.
   *
   * @param _writer Where to put the files.
   * @param done Run with OK once the files are written, or with an error.
   */
  onSnapshotSave(_writer: SnapshotWriter, done: Closure): void | Promise<void> {
    done.run(new Status(RaftError.EINVAL, "onSnapshotSave is not implemented"));
  }

  /**
   * Replaces the state with a snapshot (at startup and after InstallSnapshot). Reject to
   * report failure (the node goes to ERROR).
   *
   * @param _reader The snapshot's files and meta.
   * @returns Resolves when loaded.
   */
  onSnapshotLoad(_reader: SnapshotReader): Promise<void> {
    return Promise.reject(new Error("onSnapshotLoad is not implemented"));
  }

  /**
   * This node became leader, and the term's first entry has been applied (called right after
   * it, before any later entry is applied, as braft).
   *
   * @param _term The leader's term.
   */
  onLeaderStart(_term: number): void | Promise<void> {}

  /**
   * This node stopped being leader (step down, or the start of a transfer), with braft's
   * codes: ETRANSFERLEADERSHIP (transfer starts), ELEADERREMOVED, ESETPEER (resetPeers),
   * EHIGHERTERMREQUEST, EHIGHERTERMRESPONSE, ENEWLEADER, ERAFTTIMEDOUT ("Majority of the
   * group dies"), EBADNODE (the node went to ERROR) or ESHUTDOWN (shutdown). As in braft it
   * is called for every leadership that ends, even one that ended before its first entry
   * committed (so before `onLeaderStart`).
   *
   * @param _status Why.
   */
  onLeaderStop(_status: Status): void | Promise<void> {}

  /**
   * The node met a critical error and stopped applying (state ERROR).
   *
   * @param _error What happened.
   */
  onError(_error: RaftException): void | Promise<void> {}

  /**
   * A non-joint configuration was applied, or loaded from a snapshot (at startup and after
   * InstallSnapshot) whose configuration is not joint.
   *
   * @param _conf The voting members.
   * @param _index The log index of the configuration entry (the snapshot's last included
   *   index when from a snapshot).
   */
  onConfigurationCommitted(_conf: Configuration, _index: number): void | Promise<void> {}

  /**
   * This follower accepted a new leader. `ctx.status` is ENEWLEADER, saying whether the
   * leader came with a higher term or was found in the same term (braft `check_step_down`).
   *
   * @param _ctx The leader, its term and how it was found.
   */
  onStartFollowing(_ctx: LeaderChangeContext): void | Promise<void> {}

  /**
   * This follower lost its leader. `ctx.status` says why, with braft's codes: ERAFTTIMEDOUT
   * (election timeout, or it campaigns for a transfer), EHIGHERTERMREQUEST, ENEWLEADER (a
   * leader of a higher term), ESETPEER, EBADNODE (the node went to ERROR) or ESHUTDOWN
   * (shutdown).
   *
   * @param _ctx The old leader, its term and why.
   */
  onStopFollowing(_ctx: LeaderChangeContext): void | Promise<void> {}
}
