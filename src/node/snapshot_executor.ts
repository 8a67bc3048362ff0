/**
 * `SnapshotExecutor`: a node's snapshots — saving (`node.snapshot()` and the interval timer),
 * loading at startup, serving them to lagging followers and installing one from the leader.
 *
 * @module
 */

import { Configuration } from "../conf/configuration.ts";
import type { RaftCore } from "../core/raft_core.ts";
import type { InstallSnapshotMessage, SnapshotMeta } from "../core/types.ts";
import type { MessageEnvelope } from "../codec/message_codec.ts";
import { ErrorType, RaftError, RaftException, Status } from "../errors/status.ts";
import type { Clock } from "../util/clock.ts";
import { type Deadline, DeadlineQueue } from "./deadline_queue.ts";
import { flags } from "../util/flags.ts";
import type {
  SnapshotReader,
  SnapshotStorage,
  SnapshotWriter,
} from "../../storage/snapshot/snapshot.ts";
import { closure } from "./closure.ts";
import { COPY_DEFAULTS, copySnapshot } from "./file_service.ts";
import type { FSMCaller } from "./fsm_caller.ts";
import {
  fromStoredSnapshotMeta,
  type LogManager,
  toStoredSnapshotMeta,
  typedError,
} from "./log_manager.ts";
import type { NodeManager } from "./node_manager.ts";
import type { StateMachine } from "./state_machine.ts";
import type { SnapshotThrottle } from "./snapshot_throttle.ts";
import { abortableDelay } from "../util/abortable_delay.ts";

/** Chunk calls a follower keeps in flight while copying a snapshot file. */
const COPY_PIPELINE = 16;

/** The state machine callbacks the executor calls. */
export type SnapshotCallbacks = Pick<StateMachine, "onSnapshotSave" | "onSnapshotLoad">;

/** What the executor needs from its node. */
export interface SnapshotHost {
  /** The raft group (for file-copy calls). */
  readonly groupId: string;
  /** This node's endpoint, put into copy URIs. */
  readonly endpoint: string;
  /** The user's state machine (its snapshot callbacks). */
  readonly fsm: SnapshotCallbacks;
  /** Serialises state machine callbacks. */
  readonly caller: FSMCaller;
  /** The node's log view. */
  readonly logManager: LogManager;
  /** The node's endpoint router (file service and calls). */
  readonly manager: NodeManager;
  /** The core (null before init). */
  core(): RaftCore | null;
  /** Whether the node is running (not stopped, not in error). */
  active(): boolean;
  /** Re-delivers a message to the node (after its snapshot was downloaded). */
  receive(envelope: MessageEnvelope): void;
  /** Asks the node to run its Ready loop. */
  drive(): void;
  /** The current election timeout (copy calls time out after a few of these, retry within one). */
  electionTimeoutMs(): number;
}

/** Options of a {@linkcode SnapshotExecutor}. */
export interface SnapshotExecutorOptions {
  /** Seconds between automatic snapshots (≤ 0 disables; first firing random). */
  intervalS: number;
  /** Skip downloading files whose name and checksum match the local snapshot. */
  filterBeforeCopyRemote: boolean;
  /**
   * The node is a witness: an installed snapshot copies only the meta, no file (braft
   * `copy_file=false`). Default false.
   */
  witness?: boolean;
  /** Timers. */
  clock: Clock;
  /**
   * Copy attempts of an install whose files were not downloaded beforehand (default 10); when
   * all fail, `install` fails and the node reports the error instead of blocking for ever.
   */
  installAttempts?: number;
  /**
   * Limits copy throughput on both sides (serving and downloading), unless
   * `flags.raft_enable_throttle_when_install_snapshot` is off.
   */
  throttle?: SnapshotThrottle;
}

/** braft's `snapshot_status` values. */
export type SnapshotStatus = "IDLE" | "SAVING" | "DOWNLOADING" | "LOADING";

const NO_SNAPSHOT: SnapshotMeta = { index: 0, term: 0, conf: { peers: new Configuration() } };

/**
 * Saves, serves and installs one node's snapshots.
 *
 * Installing from the leader happens in two steps so that the node never stops voting while
 * it copies: `interceptInstall` downloads the files in the background *before* the core sees
 * the InstallSnapshot message (the node keeps running; a failed copy is dropped and the
 * leader retries), then `install` publishes and loads them when the core hands the snapshot
 * out in a Ready.
 *
 * @internal
 */
export class SnapshotExecutor {
  readonly #storage: SnapshotStorage;
  readonly #host: SnapshotHost;
  readonly #options: SnapshotExecutorOptions;
  #status: SnapshotStatus = "IDLE";
  /** An install from the Ready loop is running: no save or background download may start. */
  #installing = false;
  /**
   * While an install is running: the newest InstallSnapshot for a later index, held back (no
   * download may start meanwhile). A failing install copies it between its own attempts and
   * lets the core take it (see `install`).
   */
  #offer: (MessageEnvelope & { message: InstallSnapshotMessage }) | null = null;
  /** Index of the snapshot being installed (0 when none). */
  #installIndex = 0;
  #last: SnapshotMeta = NO_SNAPSHOT;
  /** The next automatic snapshot (on the clock's shared deadline queue). */
  #deadline: Deadline | null = null;
  #copyUri: { index: number; uri: string } | null = null;
  /** Copy URIs of offered snapshots, by index (made by the first offer). */
  #uris: Map<number, string> | null = null;
  /** The background download (`interceptInstall`), with its own abort. */
  #inflight: { abort: AbortController; done: Promise<void> } | null = null;
  #prepared: { meta: SnapshotMeta; writer: SnapshotWriter } | null = null;
  /** The save in progress (awaited by `stop`). */
  #saving: Promise<void> | null = null;
  /**
   * Aborted by `cancel`: fails every copy call and ends install retries. Made when a copy or
   * install first needs its signal (an idle group never does); `#cancelled` says it is due.
   */
  #closing: AbortController | null = null;
  #cancelled = false;

  /**
   * @param storage An initialised snapshot storage.
   * @param host The node.
   * @param options Interval, copy filter and clock.
   */
  constructor(storage: SnapshotStorage, host: SnapshotHost, options: SnapshotExecutorOptions) {
    this.#storage = storage;
    this.#host = host;
    this.#options = options;
  }

  /** IDLE, SAVING, DOWNLOADING or LOADING. */
  get status(): SnapshotStatus {
    return this.#status;
  }

  /** The latest snapshot this node has (index 0 when none). */
  get lastSnapshot(): SnapshotMeta {
    return this.#last;
  }

  /** Whether the interval timer is armed. */
  get timerArmed(): boolean {
    return this.#deadline !== null;
  }

  /**
   * Loads the newest local snapshot into the state machine (at init, before the core exists).
   *
   * @returns Its meta, or `null` when there is no snapshot.
   * @throws The state machine's error if `onSnapshotLoad` fails.
   */
  async loadLatest(): Promise<SnapshotMeta | null> {
    const reader = await this.#storage.open();
    if (reader === null) return null;
    this.#status = "LOADING";
    try {
      const meta = fromStoredSnapshotMeta(reader.loadMeta());
      await this.#host.caller.run("Loading snapshot", () => this.#host.fsm.onSnapshotLoad(reader));
      this.#host.caller.resetApplied(meta.index, meta.term);
      this.#last = meta;
      return meta;
    } finally {
      this.#status = "IDLE";
      await this.#storage.close(reader);
    }
  }

  /** Arms the interval timer (first firing random in `[1 s, interval]`, as braft). */
  start(): void {
    this.#arm(true);
  }

  /**
   * Begins shutting down, synchronously: stops the timer, refuses new saves and downloads,
   * and aborts every copy call in flight (an install still retrying then fails at once).
   * Idempotent.
   */
  cancel(): void {
    if (this.#deadline !== null) DeadlineQueue.for(this.#options.clock).cancel(this.#deadline);
    this.#deadline = null;
    this.#cancelled = true;
    this.#closing?.abort();
  }

  /** The signal `cancel` aborts. */
  #closingSignal(): AbortSignal {
    if (this.#closing === null) {
      this.#closing = new AbortController();
      if (this.#cancelled) this.#closing.abort();
    }
    return this.#closing.signal;
  }

  /**
   * Shuts down: `cancel()`, then waits for a save in progress to finish (it must not publish
   * or compact after the node closed its storage) and for an aborted download to unwind, and
   * drops a downloaded but not installed snapshot.
   */
  async stop(): Promise<void> {
    this.cancel();
    await this.#saving;
    await this.#inflight?.done;
    await this.#discardPrepared();
  }

  #arm(first: boolean): void {
    const interval = this.#options.intervalS;
    if (interval <= 0) return;
    const ms = interval * 1000;
    const delay = first ? 1000 + Math.random() * Math.max(0, ms - 1000) : ms;
    const queue = DeadlineQueue.for(this.#options.clock);
    if (this.#deadline !== null) queue.cancel(this.#deadline);
    this.#deadline = queue.add(delay, this);
  }

  /** The snapshot interval elapsed: save, then arm the next one. Called by the deadline queue. */
  onDeadline(): void {
    this.#deadline = null;
    if (!this.#host.active()) return;
    this.save().catch(() => {}).finally(() => {
      if (this.#host.active()) this.#arm(false);
    });
  }

  /**
   * Takes a snapshot of the applied state, then drops the log before the previous snapshot
   * (one extra interval of log stays for lagging followers, as braft).
   *
   * @returns Resolves when the snapshot is durable.
   * @throws {RaftException} EBUSY when another snapshot is being saved, downloaded or loaded;
   *   the state machine's status when `onSnapshotSave` fails.
   */
  save(): Promise<void> {
    if (this.#cancelled) {
      return Promise.reject(
        RaftException.of(RaftError.ESHUTDOWN, "Cannot save a snapshot: node is shutting down"),
      );
    }
    if (this.#installing) {
      return Promise.reject(RaftException.of(RaftError.EBUSY, "Is installing a snapshot"));
    }
    if (this.#status !== "IDLE") {
      const doing = { SAVING: "saving", DOWNLOADING: "downloading", LOADING: "loading" }[
        this.#status
      ];
      return Promise.reject(
        RaftException.of(RaftError.EBUSY, `Is ${doing} another snapshot`),
      );
    }
    this.#status = "SAVING";
    const saving = this.#save();
    this.#saving = saving.then(() => {}, () => {});
    return saving;
  }

  async #save(): Promise<void> {
    const storage = this.#storage;
    const host = this.#host;
    try {
      const started = await host.caller.run("Saving snapshot", async () => {
        const index = host.caller.lastAppliedIndex;
        // braft raft_do_snapshot_min_index_gap: too little new state to be worth a snapshot.
        if (index - this.#last.index < Math.max(1, flags.raft_do_snapshot_min_index_gap)) {
          return null;
        }
        const core = host.core()!;
        if (core.firstIndex() > index + 1) {
          // The core took a newer snapshot from the leader that is not installed yet.
          throw RaftException.of(RaftError.EBUSY, "Is installing a snapshot");
        }
        const meta = core.snapshotMetaAt(index);
        const writer = await storage.create();
        let settle!: (s: Status) => void;
        // A Promise settles once, so a closure run twice changes nothing.
        const done = new Promise<Status>((r) => (settle = r));
        try {
          await host.fsm.onSnapshotSave(writer, closure((s) => settle(s)));
        } catch (e) {
          // A throwing onSnapshotSave (say, ENOSPC from writeFile) must not keep the storage's
          // only writer: closing it without meta discards temp/, so the next save can start.
          await storage.close(writer).catch(() => {});
          throw e;
        }
        return { meta, writer, done };
      });
      if (started === null) return;
      // onSnapshotSave may finish its files later; applying goes on meanwhile.
      const status = await started.done;
      if (!status.ok()) {
        await storage.close(started.writer).catch(() => {});
        throw new RaftException(status);
      }
      started.writer.saveMeta(toStoredSnapshotMeta(started.meta));
      await storage.close(started.writer);
      const keepFrom = this.#last.index + 1;
      this.#last = started.meta;
      await host.logManager.compact(started.meta, keepFrom);
    } finally {
      this.#status = "IDLE";
    }
  }

  // ------------------------------------------------------------------ leader side

  /**
   * The copy URI to put into an outgoing InstallSnapshot, or `undefined` while the reader for
   * the latest snapshot is still being opened (the core sends InstallSnapshot again).
   *
   * @returns `remote://host:port/<reader id>` or `undefined`.
   */
  copyUri(): string | undefined {
    if (this.#copyUri !== null && this.#copyUri.index === this.#last.index) {
      return this.#copyUri.uri;
    }
    if (this.#last.index === 0) return undefined;
    const storage = this.#storage;
    void storage.open().then((reader) => {
      if (reader === null) return;
      const index = reader.loadMeta().lastIncludedIndex;
      const id = this.#host.manager.fileService.register(
        reader,
        () => storage.close(reader),
        this.#throttle(),
      );
      this.#copyUri = { index, uri: `remote://${this.#host.endpoint}/${id}` };
      this.#host.core()?.notifyStorageReady();
      this.#host.drive();
    }, () => {});
    return undefined;
  }

  // ------------------------------------------------------------------ follower side

  /**
   * Looks at an incoming InstallSnapshot before the core does.
   *
   * @param core The node's core.
   * @param envelope The message and its copy URI.
   * @returns `true` when the message was taken (its files are being downloaded; it is
   *   re-delivered once they are), `false` when the core should see it now.
   */
  interceptInstall(
    core: RaftCore,
    envelope: MessageEnvelope & { message: InstallSnapshotMessage },
  ): boolean {
    const m = envelope.message;
    if (envelope.uri !== undefined) (this.#uris ??= new Map()).set(m.meta.index, envelope.uri);
    if (m.term < core.term()) return false; // stale: the core rejects it
    if (m.meta.index <= core.commitIndex() || core.termAt(m.meta.index) === m.meta.term) {
      return false;
    }
    const p = this.#prepared;
    if (p !== null && p.meta.index === m.meta.index && p.meta.term === m.meta.term) return false;
    if (this.#installing) {
      if (envelope.uri !== undefined && m.meta.index > this.#installIndex) {
        if (this.#offer === null || m.meta.index >= this.#offer.message.meta.index) {
          this.#offer = envelope;
        }
      }
      return true; // dropped, or kept for a failing install; the leader sends it again
    }
    this.#download(envelope);
    return true;
  }

  /** Whether the core accepted `meta` and waits for the node to install it. */
  #pendingInstall(meta: SnapshotMeta): boolean {
    const core = this.#host.core();
    return core !== null && core.firstIndex() === meta.index + 1 &&
      this.#host.logManager.snapshotMeta().index !== meta.index;
  }

  #download(envelope: MessageEnvelope & { message: InstallSnapshotMessage }): void {
    if (
      this.#inflight !== null || envelope.uri === undefined || this.#status !== "IDLE" ||
      this.#installing ||
      this.#cancelled
    ) return;
    // Files the core already accepted are never dropped for a newer download: the install
    // would have to copy them again from a source that may be gone.
    if (this.#prepared !== null && this.#pendingInstall(this.#prepared.meta)) return;
    this.#status = "DOWNLOADING";
    const meta = envelope.message.meta;
    const inflight = { abort: new AbortController(), done: Promise.resolve() };
    this.#inflight = inflight;
    const abort = inflight.abort;
    inflight.done = (async () => {
      try {
        await this.#discardPrepared();
        this.#prepared = { meta, writer: await this.#copy(envelope.uri!, abort.signal) };
      } catch {
        return; // dropped: the leader sends InstallSnapshot again
      } finally {
        if (this.#inflight === inflight) this.#inflight = null;
        if (this.#status === "DOWNLOADING") this.#status = "IDLE";
      }
      if (!this.#host.active() || abort.signal.aborted) return this.#discardPrepared();
      this.#host.receive(envelope);
      // The core turned it down (stale term, or already covered): free the writer.
      if (!this.#pendingInstall(meta)) await this.#discardPrepared();
    })();
  }

  /**
   * Installs the snapshot the core accepted: publishes the downloaded files (or, if they were
   * not downloaded first, copies them now), loads them into the state machine and resets the
   * log to it.
   *
   * The core has committed to this snapshot, so it comes first: no save or download starts
   * meanwhile, a save in progress is waited for, and a background download of another
   * snapshot is aborted to free the storage's writer. A copy is tried at most
   * `installAttempts` times and ends at once on `cancel()`: the Ready loop is never blocked
   * for ever.
   *
   * A newer snapshot supersedes this one (issue 9): before each copy and after each failed
   * one, if the core's pending snapshot is no longer `meta` (a newer InstallSnapshot replaced
   * it), or a newer InstallSnapshot that arrived meanwhile can be downloaded and the core
   * takes it, the install ends without installing `meta`; the newer snapshot's files stay
   * prepared for the next Ready. Invariant: files of a snapshot the core holds pending are
   * never discarded, so the install that follows never needs the superseded one's source.
   *
   * @param meta The snapshot from the Ready.
   * @param stopping Whether the node is shutting down (stops retrying).
   * @returns `true` when `meta` was installed, `false` when a newer snapshot superseded it
   *   (the core's `superseded(rd)` then holds; the Ready's entries must not be written).
   * @throws {RaftException} The copy's error when every attempt failed or the node is
   *   stopping; ESTATEMACHINE when `onSnapshotLoad` fails; EIO when storage fails.
   */
  async install(meta: SnapshotMeta, stopping: () => boolean): Promise<boolean> {
    const storage = this.#storage;
    const attempts = Math.max(1, this.#options.installAttempts ?? 10);
    const closing = this.#closingSignal();
    this.#installing = true;
    this.#installIndex = meta.index;
    try {
      // A save holds the storage's only writer: let it finish rather than fail to copy.
      while (this.#status === "SAVING") await this.#saving;
      let writer = this.#takePrepared(meta);
      for (let attempt = 1; writer === null; attempt++) {
        if (this.#supersededBy(meta)) return false; // its files are prepared: keep them
        const running = this.#inflight;
        if (running !== null) {
          running.abort.abort();
          await running.done;
          writer = this.#takePrepared(meta);
          if (writer !== null) break;
        }
        await this.#discardPrepared(); // another snapshot's files: this one comes first
        this.#status = "DOWNLOADING";
        const uri = this.#uris?.get(meta.index);
        try {
          if (uri === undefined) {
            throw RaftException.of(
              RaftError.EINVAL,
              `Cannot install snapshot at index ${meta.index}: no copy URI`,
            );
          }
          writer = await this.#copy(uri, closing);
        } catch (e) {
          if (stopping() || closing.aborted) throw e;
          if (await this.#takeOffer(meta)) return false;
          if (attempt >= attempts) {
            const code = e instanceof RaftException ? e.code : RaftError.EIO;
            throw RaftException.of(
              code,
              `Cannot install snapshot at index ${meta.index}: ${attempt} copy attempts failed, the last with: ${
                e instanceof RaftException ? e.status.message : String(e)
              }`,
            );
          }
          await abortableDelay(Math.min(1000, 20 * 2 ** Math.min(attempt, 6)), closing);
        }
      }
      this.#status = "LOADING"; // before publishing: a save must not start meanwhile
      writer.saveMeta(toStoredSnapshotMeta(meta));
      await storage.close(writer);
      const reader = await storage.open();
      if (reader === null) throw RaftException.of(RaftError.EIO, "Installed snapshot vanished");
      try {
        await this.#host.caller.run(
          "Loading snapshot",
          () => this.#host.fsm.onSnapshotLoad(reader),
        );
      } catch (e) {
        throw new RaftException(
          new Status(
            RaftError.ESTATEMACHINE,
            `Cannot load snapshot at index ${meta.index}: onSnapshotLoad failed: ${
              e instanceof RaftException ? e.status.message : e instanceof Error ? e.message : e
            }`,
          ),
          { cause: e, type: ErrorType.STATE_MACHINE },
        );
      } finally {
        await storage.close(reader);
      }
      this.#host.caller.resetApplied(meta.index, meta.term);
      await this.#host.logManager.installSnapshot(meta);
      this.#last = meta;
      this.#uris = null;
      return true;
    } catch (e) {
      throw typedError(e, ErrorType.SNAPSHOT, `install snapshot at index ${meta.index}`);
    } finally {
      this.#installing = false;
      this.#installIndex = 0;
      this.#offer = null;
      this.#status = "IDLE";
    }
  }

  /** Whether the core's pending snapshot is no longer `meta` (a newer one replaced it). */
  #supersededBy(meta: SnapshotMeta): boolean {
    const p = this.#host.core()?.pendingSnapshot?.(); // (test doubles of the core may lack it)
    return p !== undefined && (p.index !== meta.index || p.term !== meta.term);
  }

  /**
   * Between the failed copies of `meta`: downloads the newest InstallSnapshot held back
   * meanwhile and hands it to the core (as a background download would).
   *
   * @returns Whether the core now holds a newer snapshot than `meta` (its files prepared).
   */
  async #takeOffer(meta: SnapshotMeta): Promise<boolean> {
    if (this.#supersededBy(meta)) return true;
    const offer = this.#offer;
    this.#offer = null;
    if (offer === null) return false;
    await this.#discardPrepared(); // (none: each attempt starts by dropping other files)
    let writer: SnapshotWriter;
    try {
      writer = await this.#copy(offer.uri!, this.#closingSignal());
    } catch {
      return false; // its source fails too: go on with `meta`; the leader sends it again
    }
    const newer = offer.message.meta;
    this.#prepared = { meta: newer, writer };
    if (this.#host.active()) this.#host.receive(offer); // the core sees its files prepared
    // The core turned it down (a stale term, say): free the writer.
    if (!this.#pendingInstall(newer)) await this.#discardPrepared();
    return this.#supersededBy(meta);
  }

  #takePrepared(meta: SnapshotMeta): SnapshotWriter | null {
    const p = this.#prepared;
    if (p === null || p.meta.index !== meta.index || p.meta.term !== meta.term) return null;
    this.#prepared = null;
    return p.writer;
  }

  async #discardPrepared(): Promise<void> {
    const p = this.#prepared;
    this.#prepared = null;
    // Closing a writer without meta fails and removes its temporary files.
    if (p !== null) await this.#storage.close(p.writer).catch(() => {});
  }

  #throttle(): SnapshotThrottle | undefined {
    return flags.raft_enable_throttle_when_install_snapshot ? this.#options.throttle : undefined;
  }

  /** Copies a remote snapshot's files into a new writer (not yet published). */
  async #copy(uri: string, signal: AbortSignal): Promise<SnapshotWriter> {
    const m = /^remote:\/\/(.+)\/(\d+)$/.exec(uri);
    if (m === null) throw RaftException.of(RaftError.EINVAL, `Bad snapshot uri "${uri}"`);
    const [, endpoint, id] = m;
    signal = AbortSignal.any([signal, this.#closingSignal()]);
    if (signal.aborted) throw RaftException.of(RaftError.ECANCELED, "Snapshot copy was aborted");
    const throttle = this.#throttle();
    if (throttle?.addOneMoreTask?.(false) === false) {
      throw RaftException.of(RaftError.EBUSY, "Cannot copy snapshot: too many copies running");
    }
    const storage = this.#storage;
    let writer: SnapshotWriter;
    try {
      writer = await storage.create();
    } catch (e) {
      throttle?.finishOneTask?.(false);
      throw e;
    }
    if (this.#options.witness === true) {
      throttle?.finishOneTask?.(false);
      return writer;
    }
    let local: SnapshotReader | null = null;
    try {
      if (this.#options.filterBeforeCopyRemote) local = await storage.open();
      await copySnapshot(
        (req, opts) => this.#host.manager.callFile(endpoint!, this.#host.groupId, req, opts),
        Number(id),
        writer,
        {
          signal,
          // braft's GetFile defaults; a retry comes sooner when elections are fast (tests).
          timeoutMs: Math.max(COPY_DEFAULTS.timeoutMs, this.#host.electionTimeoutMs() * 5),
          maxRetry: COPY_DEFAULTS.maxRetry,
          retryIntervalMs: Math.min(
            COPY_DEFAULTS.retryIntervalMs,
            this.#host.electionTimeoutMs(),
          ),
          local,
          chunkBytes: flags.raft_max_byte_count_per_rpc,
          pipeline: COPY_PIPELINE,
          throttle,
        },
      );
    } catch (e) {
      await storage.close(writer).catch(() => {});
      throw e;
    } finally {
      throttle?.finishOneTask?.(false);
      if (local !== null) await storage.close(local).catch(() => {});
    }
    return writer;
  }
}
