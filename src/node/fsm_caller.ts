/**
 * `FSMCaller`: calls the user's `StateMachine` one callback at a time, in order.
 *
 * @module
 */

import { EntryType, type LogEntry } from "../core/entry.ts";
import { ErrorType, RaftError, RaftException, Status } from "../errors/status.ts";
import type { Closure } from "./closure.ts";
import { EntryRunIterator } from "./iterator.ts";
import type { LeaderChangeContext, StateMachine } from "./state_machine.ts";

/** Options for {@linkcode FSMCaller}. */
export interface FSMCallerOptions {
  /** Most DATA entries per `onApply` call (braft `raft_apply_batch`, default 32). */
  applyBatch?: number;
  /** Called after entries up to `index` are applied (in order, never backwards). */
  onApplied?: (index: number, term: number) => void;
  /**
   * Called once when the state machine fails (a callback threw, rejected, or called
   * `setErrorAndRollback`); the node must go to ERROR. `onError` of the state machine has
   * been called already.
   */
  onFatal?: (error: RaftException) => void;
  /**
   * The node is a witness (braft `NodeOptions.witness`): DATA entries (which reach it without
   * their payload) are not given to `onApply`; they count as applied and their closures, if
   * any, run with OK (the entry is committed). Default false.
   */
  witness?: boolean;
}

/** What the caller is doing now, for `describe()` (braft's `state_machine:` line). */
export type FSMCallerActivity = string;

type Work = () => Promise<void> | void;

/**
 * Serialises every StateMachine callback. Committed entries are applied in index order:
 * DATA runs go to `onApply` (in batches of at most `applyBatch`), CONFIGURATION entries run
 * their closure and `onConfigurationCommitted` (when not joint), NO_OP entries only their
 * closure. After a state machine error, nothing else is applied and every later closure
 * fails with the error.
 *
 * @internal
 */
export class FSMCaller {
  #fsm: StateMachine;
  #applyBatch: number;
  #onApplied: (index: number, term: number) => void;
  #onFatal: (error: RaftException) => void;
  #witness: boolean;
  #queue: Work[] = [];
  #running = false;
  #idleWaiters: Array<() => void> = [];
  #lastApplied = 0;
  #lastAppliedTerm = 0;
  #error: RaftException | null = null;
  /** An error reported from outside, to be raised before any further state machine work. */
  #urgent: RaftException | null = null;
  #activity: FSMCallerActivity = "Idle";
  #shutdown = false;

  /**
   * @param fsm The user's state machine.
   * @param options Batch size and notifications.
   */
  constructor(fsm: StateMachine, options: FSMCallerOptions = {}) {
    this.#fsm = fsm;
    this.#applyBatch = Math.max(1, options.applyBatch ?? 32);
    this.#onApplied = options.onApplied ?? (() => {});
    this.#onFatal = options.onFatal ?? (() => {});
    this.#witness = options.witness ?? false;
  }

  /** Index of the last applied entry. */
  get lastAppliedIndex(): number {
    return this.#lastApplied;
  }

  /** Term of the last applied entry. */
  get lastAppliedTerm(): number {
    return this.#lastAppliedTerm;
  }

  /** What the caller is doing (`Idle`, `Applying log_index=N`, `Saving snapshot`, …). */
  get activity(): FSMCallerActivity {
    return this.#activity;
  }

  /** The state machine error, once one happened. */
  get error(): RaftException | null {
    return this.#error;
  }

  /**
   * Sets the applied position without applying (after loading a snapshot), and reports it.
   *
   * @param index Last included index.
   * @param term Last included term.
   */
  resetApplied(index: number, term: number): void {
    this.#advance(index, term);
  }

  /**
   * Queues committed entries. `closures[i]` belongs to `entries[i]`. Entries at or below the
   * applied index are skipped (their closures, if any, get OK: they were applied before).
   * After `shutdown()`, the closures run with EPERM "Node is down" instead (as braft).
   *
   * @param entries Committed entries in index order.
   * @param closures Their closures (may be shorter; missing means none).
   */
  committed(entries: readonly LogEntry[], closures: readonly (Closure | undefined)[] = []): void {
    if (entries.length === 0) return;
    if (this.#shutdown) {
      const down = new Status(RaftError.EPERM, "Node is down");
      queueMicrotask(() => {
        for (const done of closures) done?.run(down);
      });
      return;
    }
    this.#enqueue(() => this.#applyEntries(entries, closures));
  }

  /**
   * Queues `onLeaderStart(term)`.
   *
   * @param term The new leader's term.
   */
  leaderStart(term: number): void {
    this.#enqueueCallback("Notifying leader start", () => this.#fsm.onLeaderStart(term));
  }

  /**
   * Queues `onLeaderStop(status)`; it runs even once the caller is in error (braft).
   *
   * @param status Why leadership ended.
   */
  leaderStop(status: Status): void {
    this.#enqueueCallback("Notifying leader stop", () => this.#fsm.onLeaderStop(status), true);
  }

  /**
   * Queues `onStartFollowing(ctx)`.
   *
   * @param ctx The new leader.
   */
  startFollowing(ctx: LeaderChangeContext): void {
    this.#enqueueCallback("Notifying start following", () => this.#fsm.onStartFollowing(ctx));
  }

  /**
   * Queues `onStopFollowing(ctx)`; it runs even once the caller is in error (braft).
   *
   * @param ctx The old leader.
   */
  stopFollowing(ctx: LeaderChangeContext): void {
    this.#enqueueCallback(
      "Notifying stop following",
      () => this.#fsm.onStopFollowing(ctx),
      true,
    );
  }

  /**
   * Queues state machine work that must run between callbacks (snapshot save or load). It
   * does not put the caller into error by itself. A rejection that is not a `RaftException`
   * (what a state machine callback throws) comes back as ESTATEMACHINE naming `activity`, so
   * a failing `onSnapshotLoad` is not mistaken for a storage error; a `RaftException` (say,
   * EIO from storage) comes back unchanged.
   *
   * @param activity Shown in `describe()` while it runs.
   * @param work The work.
   * @returns Settles with the work's outcome.
   */
  run<T>(activity: string, work: () => Promise<T> | T): Promise<T> {
    if (this.#shutdown) {
      return Promise.reject(
        RaftException.of(RaftError.ESHUTDOWN, "State machine caller is shut down"),
      );
    }
    return new Promise<T>((resolve, reject) => {
      this.#enqueue(async () => {
        this.#activity = activity;
        try {
          resolve(await work());
        } catch (e) {
          reject(e instanceof RaftException ? e : userError(activity, e));
        } finally {
          this.#activity = "Idle";
        }
      });
    });
  }

  /**
   * Reports an error raised outside the state machine (e.g. storage): calls `onError` once,
   * before any further state machine work (braft queues `on_error` as an urgent task). Only a
   * callback already running finishes first; every closure still queued then fails with the
   * error.
   *
   * @param error The error.
   */
  reportError(error: RaftException): void {
    if (this.#error !== null || this.#urgent !== null || this.#shutdown) return;
    this.#urgent = error;
    this.#queue.unshift(() => this.#takeUrgent());
    if (!this.#running) void this.#pump();
  }

  async #takeUrgent(): Promise<void> {
    const urgent = this.#urgent;
    if (urgent === null) return;
    this.#urgent = null;
    await this.#fail(urgent);
  }

  /**
   * Runs `onShutdown` after everything queued, then refuses further work.
   *
   * @returns Resolves when `onShutdown` has returned.
   */
  async shutdown(): Promise<void> {
    if (this.#shutdown) return this.idle();
    const done = this.run("Shutting down", () => this.#fsm.onShutdown());
    this.#shutdown = true;
    await done.catch(() => {});
  }

  /**
   * Resolves once the queue is empty.
   *
   * @returns A promise.
   */
  idle(): Promise<void> {
    if (!this.#running && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * `afterError`: braft's FSMCaller runs LEADER_STOP and STOP_FOLLOWING tasks even once it
   * is in error (NodeImpl::on_error steps down to deliver them); the other callbacks stop.
   */
  #enqueueCallback(
    activity: string,
    fn: () => void | Promise<void>,
    afterError = false,
  ): void {
    this.#enqueue(async () => {
      if (this.#error !== null && !afterError) return;
      this.#activity = activity;
      try {
        await fn();
      } catch (e) {
        await this.#fail(userError(activity, e));
      } finally {
        this.#activity = "Idle";
      }
    });
  }

  #enqueue(work: Work): void {
    if (this.#shutdown) return;
    this.#queue.push(work);
    if (!this.#running) void this.#pump();
  }

  async #pump(): Promise<void> {
    this.#running = true;
    // Never run a callback synchronously inside the call that queued it.
    await Promise.resolve();
    while (this.#queue.length > 0) {
      const work = this.#queue.shift()!;
      try {
        await this.#takeUrgent();
        await work();
      } catch (e) {
        await this.#fail(userError("apply", e));
      }
    }
    this.#running = false;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const wake of waiters) wake();
  }

  async #applyEntries(
    entries: readonly LogEntry[],
    closures: readonly (Closure | undefined)[],
  ): Promise<void> {
    let i = 0;
    while (i < entries.length) {
      const entry = entries[i]!;
      const done = closures[i];
      await this.#takeUrgent();
      if (this.#error !== null) {
        done?.run(this.#error.status);
        i++;
        continue;
      }
      if (entry.index <= this.#lastApplied) {
        done?.run(Status.OK());
        i++;
        continue;
      }
      if (entry.type !== EntryType.DATA || this.#witness) {
        await this.#applyInternal(entry, done);
        i++;
        continue;
      }
      let end = i + 1;
      while (
        end < entries.length && end - i < this.#applyBatch &&
        entries[end]!.type === EntryType.DATA
      ) end++;
      await this.#applyDataRun(entries.slice(i, end), closures.slice(i, end));
      i = end;
    }
  }

  async #applyInternal(entry: LogEntry, done: Closure | undefined): Promise<void> {
    if (entry.type === EntryType.CONFIGURATION && entry.conf !== undefined) {
      const joint = entry.conf.oldPeers !== undefined && !entry.conf.oldPeers.isEmpty();
      if (!joint) {
        this.#activity = `Applying log_index=${entry.index}`;
        try {
          await this.#fsm.onConfigurationCommitted(entry.conf.peers.clone(), entry.index);
        } catch (e) {
          done?.run(new Status(RaftError.ESTATEMACHINE, "onConfigurationCommitted failed"));
          await this.#fail(userError("onConfigurationCommitted", e));
          return;
        } finally {
          this.#activity = "Idle";
        }
      }
    }
    this.#advance(entry.index, entry.term);
    done?.run(Status.OK());
  }

  /**
   * Hands a run of DATA entries to `onApply`, as braft's `do_committed` does. Every closure in
   * the run ends with exactly one owner: the state machine (it fetched it through
   * `iter.done()`), or this caller, which runs it with OK (the iterator moved past the entry),
   * with the error (rolled back or failed), or with ESTATEMACHINE (skipped, see below).
   *
   * If `onApply` returns while the iterator is still valid, braft logs an error, skips the
   * current entry and calls `onApply` again for the rest; so does this. The skipped entry
   * counts as applied (the state machine stood on it), but an unfetched closure of it gets
   * ESTATEMACHINE rather than OK, since nothing says the entry took effect.
   */
  async #applyDataRun(
    run: readonly LogEntry[],
    closures: readonly (Closure | undefined)[],
  ): Promise<void> {
    let start = 0;
    while (start < run.length) {
      await this.#takeUrgent();
      if (this.#error !== null) {
        for (let k = start; k < run.length; k++) closures[k]?.run(this.#error.status);
        return;
      }
      const part = run.slice(start);
      const parts = closures.slice(start, run.length);
      const iter = new EntryRunIterator(part, parts);
      this.#activity = `Applying log_index=${part[0]!.index}`;
      let thrown: unknown = undefined;
      let threw = false;
      try {
        await this.#fsm.onApply(iter);
      } catch (e) {
        threw = true;
        thrown = e;
      } finally {
        this.#activity = "Idle";
      }
      const pos = iter.position;
      const error = iter.error;
      // Closures of the entries the iterator moved past, not fetched: applied, so OK.
      const passed = (end: number): void => {
        for (let k = 0; k < end; k++) {
          if (!iter.handedOut(k)) parts[k]?.run(Status.OK());
        }
      };
      if (error === null && !threw) {
        if (pos >= part.length) {
          passed(part.length);
          const last = part[part.length - 1]!;
          this.#advance(last.index, last.term);
          return;
        }
        // onApply returned early: skip the current entry (braft) and go on with the rest.
        passed(pos);
        const skipped = part[pos]!;
        if (!iter.handedOut(pos)) {
          parts[pos]?.run(
            new Status(
              RaftError.ESTATEMACHINE,
              `onApply returned before finishing the entry at index ${skipped.index}`,
            ),
          );
        }
        this.#advance(skipped.index, skipped.term);
        start += pos + 1;
        continue;
      }
      // A throw counts as a rollback of the current entry.
      const failFrom = error !== null ? error.index - part[0]!.index : Math.min(pos, part.length);
      const status = error?.status ??
        new Status(RaftError.ESTATEMACHINE, `onApply failed at index ${part[failFrom]?.index}`);
      passed(failFrom);
      if (failFrom > 0) {
        const lastApplied = part[failFrom - 1]!;
        this.#advance(lastApplied.index, lastApplied.term);
      }
      // braft run_the_rest_closure_with_error: from the rollback point to the end.
      for (let k = failFrom; k < part.length; k++) parts[k]?.run(status);
      await this.#fail(
        threw
          ? userError("onApply", thrown)
          : new RaftException(new Status(RaftError.ESTATEMACHINE, status.message), {
            type: ErrorType.STATE_MACHINE,
          }),
      );
      return;
    }
  }

  #advance(index: number, term: number): void {
    this.#lastApplied = index;
    this.#lastAppliedTerm = term;
    this.#onApplied(index, term);
  }

  async #fail(error: RaftException): Promise<void> {
    if (this.#error !== null) return;
    this.#error = error;
    this.#activity = "Notifying error";
    try {
      await this.#fsm.onError(error);
    } catch {
      // The state machine is already failed; an error from onError changes nothing.
    } finally {
      this.#activity = "Idle";
    }
    this.#onFatal(error);
  }
}

function userError(where: string, e: unknown): RaftException {
  if (e instanceof RaftException) return e.withType(ErrorType.STATE_MACHINE);
  const why = e instanceof Error ? e.message : String(e);
  return new RaftException(
    new Status(RaftError.ESTATEMACHINE, `StateMachine ${where} threw: ${why}`),
    { cause: e, type: ErrorType.STATE_MACHINE },
  );
}
