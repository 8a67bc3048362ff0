/**
 * `Node`: one replica of one raft group — braft's `Node` on top of the pure core.
 *
 * @module
 */

import { type Bytes, ChunkChain, toChunkChain } from "../bytes/chunk_chain.ts";
import { Configuration } from "../conf/configuration.ts";
import { ANY_PEER, PeerId } from "../conf/peer_id.ts";
import { ENTRY_OVERHEAD_BYTES, EntryType, type LogEntry } from "../core/entry.ts";
import { jointIndex } from "../core/quorum.ts";
import { RaftCore } from "../core/raft_core.ts";
import type { Message, Ready, SoftState } from "../core/types.ts";
import type { MessageEnvelope } from "../codec/message_codec.ts";
import { RaftError, RaftException, Status } from "../errors/status.ts";
import { type Clock, systemClock } from "../util/clock.ts";
import { flags } from "../util/flags.ts";
import { Prng } from "../util/prng.ts";
import { createLogStorage, createMetaStorage, createSnapshotStorage } from "../../storage/uri.ts";
import type { LogStorage } from "../../storage/log/log_storage.ts";
import type { RaftMetaStorage } from "../../storage/meta/meta_storage.ts";
import { type Closure, closure, type Task } from "./closure.ts";
import { FSMCaller } from "./fsm_caller.ts";
import { fromStoredSnapshotMeta, LogManager } from "./log_manager.ts";
import {
  type SnapshotCallbacks,
  SnapshotExecutor,
  type SnapshotHost,
} from "./snapshot_executor.ts";
import type { SnapshotReader, SnapshotWriter } from "../../storage/snapshot/snapshot.ts";
import { findService } from "./service_registry.ts";
import { NodeManager } from "./node_manager.ts";
import { callReadIndex } from "./read_index_service.ts";
import type { QuiescedNode } from "./endpoint_liveness.ts";
import { TickSource } from "./tick_source.ts";
import {
  type LeaderLeaseStatus,
  LeaseState,
  type NodeOptions,
  NodeState,
  nodeStateName,
  type NodeStatus,
  type UserLog,
} from "./options.ts";
import type { StateMachine } from "./state_machine.ts";

/** Election timeout in ticks: fine enough for the randomised timeout, cheap enough to tick. */
const TICKS_PER_ELECTION = 20;
/**
 * How many recent tick times are kept: more than the lease's window of T - 1 ticks (an older
 * acknowledgement cannot keep the lease anyway, and is refused).
 */
const TICK_HISTORY = 32;

interface Pending {
  term: number;
  done: Closure;
  /** Its admission-control token (released when the closure fails here or the entry applies). */
  token: Admitted;
}

/** A task accepted by `apply` and not yet applied (admission control). */
interface Admitted {
  /** Its log index. */
  readonly index: number;
  /** Payload + ENTRY_OVERHEAD_BYTES. */
  readonly bytes: number;
  /** Still counted: neither applied nor its closure failed. */
  live: boolean;
}

interface ConfWaiter {
  peers: string;
  resolve: () => void;
  reject: (e: RaftException) => void;
}

interface ReadWaiter {
  resolve: (index: number) => void;
  reject: (e: RaftException) => void;
  /** Resolve once this node applied the read index (a local read), not at confirmation. */
  waitApply: boolean;
}

/**
 * One replica of a raft group.
 *
 * @example A single-node group on an in-process network
 * ```ts
 * import { ChunkChain, type Iterator, MemoryNetwork, Node, StateMachine, Status } from "@webraft/raft";
 * import assert from "node:assert/strict";
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
 * const net = new MemoryNetwork();
 * const fsm = new Counter();
 * const node = new Node("counter", "127.0.0.1:8100:0");
 * await node.init({
 *   fsm,
 *   initialConf: "127.0.0.1:8100:0",
 *   logUri: "memory://doc/log",
 *   raftMetaUri: "memory://doc/meta",
 *   transport: net.transport("127.0.0.1:8100"),
 *   electionTimeoutMs: 200,
 * });
 * await node.waitLeader();
 * await node.applyAsync(new Uint8Array([5]));
 * assert.equal(fsm.value, 5);
 * await node.shutdown();
 * await net.close();
 * ```
 */
export class Node {
  /** The raft group. */
  readonly groupId: string;
  readonly #peer: PeerId;
  #state: NodeState = NodeState.UNINITIALIZED;
  #options!: NodeOptions;
  #clock: Clock = systemClock;
  #core: RaftCore | null = null;
  #manager: NodeManager | null = null;
  #log: LogStorage | null = null;
  #meta: RaftMetaStorage | null = null;
  #logManager: LogManager | null = null;
  #fsm!: StateMachine;
  #caller!: FSMCaller;
  #tickMs = 50;
  /** Heartbeat interval in ticks (set at init). */
  #heartbeatTick = 1;
  /** The leader lease is on (`enableLeaderLease`, else `raft_enable_leader_lease` at init). */
  #leaseOn = false;
  #electionTimeoutMs = 1000;
  // braft max_clock_drift_ms, changed with the election timeout (resetElectionTimeoutMs)
  #maxClockDriftMs = 1000;
  /** The shared tick source this node is subscribed to, or `null` while it does not tick. */
  #tickSource: TickSource | null = null;
  readonly #onTick = (): void => this.#tick();
  // Quiescence (see endpoint_liveness.ts for the design and the safety argument).
  #quiesceOn = false;
  #quiesced = false;
  /** Leader: consecutive ticks its group was idle enough to quiesce. */
  #idleTicks = 0;
  /** Leader: its next heartbeat round carries `quiesce`, then it stops ticking. */
  #quiesceArmed = false;
  /** Follower: it quiesces once this index is applied (0: not waiting). */
  #quiesceAtApplied = 0;
  /** Follower: the tick of its last `vote()` (its campaign waits for ticks: no quiescing). */
  #voteTick = -Infinity;
  /** What the endpoint liveness tracker watches while this node is quiesced. */
  #livenessEntry: QuiescedNode | null = null;
  #driving = false;
  #driveQueued = false;
  // The maps and sets below are made on first use: an idle follower (most nodes of a process
  // with many groups) never needs them.
  #pending: Map<number, Pending> | null = null;
  #confWaiters: ConfWaiter[] = [];
  #readSeq = 0;
  #readWaiters: Map<number, ReadWaiter> | null = null;
  /** Follower reads waiting for the leader's answer: each fails (and aborts its call) on stop. */
  #forwardedReads: Set<(e: RaftException) => void> | null = null;
  #appliedWaiters: Array<
    { index: number; resolve: () => void; reject: (e: RaftException) => void }
  > = [];
  #leaderWaiters: Array<{ resolve: () => void; reject: (e: RaftException) => void }> = [];
  #soft: SoftState = { role: "follower", leader: "", term: 0, transferring: false };
  #leaderStartIndex = 0;
  #leaderStartTerm = 0;
  #leaseEpoch = 0;
  #leaderStarted = false;
  #snapshotExecutor: SnapshotExecutor | null = null;
  #error: RaftException | null = null;
  #shutdownPromise: Promise<void> | null = null;
  #rejectedMessages = 0;
  /** The core's tick counter (it starts at 1), mirrored to time-stamp its ticks. */
  #tickNo = 1;
  /** Clock reading of tick `n` at `[n % TICK_HISTORY]` (the lease's real-time check). */
  #tickAt: number[] = new Array<number>(TICK_HISTORY).fill(-Infinity);
  /** Per follower, the newest `sentTick` it acknowledged in `#ackTerm` (as the core counts). */
  #acked: Map<string, number> | null = null;
  #ackTerm = 0;
  #driveDone: Promise<void> = Promise.resolve();
  // Admission control. Invariant: #pendingApplies / #pendingApplyBytes count exactly the
  // live tokens in #admitted, i.e. tasks this node accepted from apply() whose entry is not
  // applied and whose closure was not failed by the node (a token is released when the
  // FSMCaller reports its index applied, or when #pending gives up its closure). apply()
  // accepts a task only while both are below raft_max_pending_applies /
  // raft_max_pending_apply_bytes (read at init).
  #admitted: Admitted[] = [];
  #admittedHead = 0;
  #pendingApplies = 0;
  #pendingApplyBytes = 0;
  #maxPendingApplies = 0;
  #maxPendingApplyBytes = 0;

  /**
   * Creates an uninitialised node; call {@linkcode Node.init} next.
   *
   * @param groupId The raft group's name.
   * @param peerId This replica's id (`host:port:idx`).
   * @throws {TypeError} If `peerId` does not parse.
   */
  constructor(groupId: string, peerId: PeerId | string) {
    if (typeof groupId !== "string" || groupId.length === 0) {
      throw new TypeError(`Cannot create node: groupId must be a non-empty string`);
    }
    this.groupId = groupId;
    this.#peer = PeerId.from(peerId);
  }

  /** This node's peer key (`host:port:idx`), used for routing. */
  get peerKey(): string {
    return this.#peer.key();
  }

  /** Whether this node refuses CLI requests (`NodeOptions.disableCli`). */
  get cliDisabled(): boolean {
    return this.#options?.disableCli === true;
  }

  // ------------------------------------------------------------------ lifecycle

  /**
   * Opens storage, loads the latest snapshot, and starts the node as a follower. A group
   * whose configuration is only this node elects itself at once.
   *
   * @param options See {@linkcode NodeOptions}.
   * @throws {RaftException} EINVAL for bad options or a second `init`; EEXIST if the same
   *   (group, peer) already runs in this process; EIO for storage errors; the snapshot
   *   loader's error if `onSnapshotLoad` fails.
   */
  async init(options: NodeOptions): Promise<void> {
    if (this.#state !== NodeState.UNINITIALIZED) {
      throw RaftException.of(
        RaftError.EINVAL,
        `Cannot init node ${this.#describeId()}: already initialised`,
      );
    }
    validateOptions(options);
    this.#state = NodeState.SHUTTING; // blocks a concurrent second init
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#fsm = options.fsm;
    this.#maxPendingApplies = flags.raft_max_pending_applies;
    this.#maxPendingApplyBytes = flags.raft_max_pending_apply_bytes;
    this.#setElectionTimeout(options.electionTimeoutMs ?? 1000);
    this.#maxClockDriftMs = options.maxClockDriftMs ?? 1000;
    let transport = options.transport;
    if (transport === undefined) {
      const service = findService(this.#peer.endpoint);
      if (service === null) {
        this.#state = NodeState.UNINITIALIZED;
        throw RaftException.of(
          RaftError.EINVAL,
          `Cannot init node ${this.#describeId()}: no raft service serves "${this.#peer.endpoint}"; call addService(app, "${this.#peer.endpoint}") and serve the app before init, or pass options.transport`,
        );
      }
      transport = service.transportFor(this.#peer.endpoint);
    } else if (transport.endpoint !== this.#peer.endpoint) {
      this.#state = NodeState.UNINITIALIZED;
      throw RaftException.of(
        RaftError.EINVAL,
        `Cannot init node ${this.#describeId()}: transport serves "${transport.endpoint}", not "${this.#peer.endpoint}"`,
      );
    }
    const manager = NodeManager.for(transport);
    try {
      manager.add(this);
    } catch (e) {
      this.#state = NodeState.UNINITIALIZED;
      throw e;
    }
    this.#manager = manager;
    try {
      await this.#openStorage(options);
    } catch (e) {
      await this.#closeStorage();
      manager.remove(this);
      this.#state = NodeState.SHUTDOWN;
      throw e;
    }
    this.#state = NodeState.FOLLOWER;
    this.#startTicking();
    this.#snapshotExecutor?.start();
    this.#drive();
  }

  async #openStorage(options: NodeOptions): Promise<void> {
    this.#log = options.logStorage ?? await createLogStorage(options.logUri!);
    await this.#log.init();
    this.#meta = await createMetaStorage(options.raftMetaUri);
    await this.#meta.init();
    this.#caller = new FSMCaller(this.#fsm, {
      applyBatch: flags.raft_apply_batch,
      onApplied: (index) => this.#onApplied(index),
      onFatal: (e) => this.#enterError(e),
      witness: options.witness ?? false,
    });
    this.#logManager = new LogManager(this.#log, this.#meta, {
      ...(options.logCacheBytes === undefined ? {} : { cacheBytes: options.logCacheBytes }),
      onEntriesLoaded: () => {
        this.#core?.notifyStorageReady();
        this.#drive();
      },
      onLoadError: (e) => this.#storageFailed("read the log", e),
    });
    let applied = 0;
    if (options.snapshotUri) {
      const storage = await createSnapshotStorage(
        options.snapshotUri,
        options.snapshotFileSystemAdaptor === undefined
          ? {}
          : { fs: options.snapshotFileSystemAdaptor },
      );
      await storage.init();
      const fsm = new SnapshotFsm(this.#fsm, options.witness === true);
      this.#snapshotExecutor = new SnapshotExecutor(
        storage,
        new Node.#SnapshotHostView(this, fsm),
        {
          intervalS: options.snapshotIntervalS ?? 3600,
          filterBeforeCopyRemote: options.filterBeforeCopyRemote ?? false,
          witness: options.witness ?? false,
          clock: this.#clock,
          ...(options.snapshotThrottle === undefined ? {} : { throttle: options.snapshotThrottle }),
        },
      );
      const meta = await this.#snapshotExecutor.loadLatest();
      if (meta !== null) {
        await this.#logManager.setInitialSnapshot(meta);
        applied = meta.index;
      }
    }
    // braft check_consistency: the log must continue the snapshot without a gap.
    const first = this.#log.firstLogIndex();
    if (first > applied + 1 && this.#log.lastLogIndex() >= first) {
      throw RaftException.of(
        RaftError.EIO,
        `Cannot init node ${this.#describeId()}: the log starts at ${first} but the latest snapshot ends at ${applied}`,
      );
    }
    const initialConf = options.initialConf === undefined
      ? new Configuration()
      : Configuration.from(options.initialConf);
    const delayTicks = Math.ceil(
      Math.min(this.#electionTimeoutMs, flags.raft_max_election_delay_ms) / this.#tickMs,
    );
    const heartbeatTick = Math.max(
      1,
      Math.min(
        TICKS_PER_ELECTION - 1,
        Math.round(TICKS_PER_ELECTION / flags.raft_election_heartbeat_factor),
      ),
    );
    this.#heartbeatTick = heartbeatTick;
    this.#leaseOn = options.enableLeaderLease ?? flags.raft_enable_leader_lease;
    this.#quiesceOn = options.quiesce ?? false;
    this.#tickAt[1] = this.#clock.now(); // the core's ticks start at 1
    this.#core = new RaftCore({
      id: this.#peer.key(),
      storage: this.#logManager,
      prng: new Prng(options.seed ?? Math.floor(Math.random() * 2 ** 31)),
      electionTick: TICKS_PER_ELECTION,
      heartbeatTick,
      maxElectionDelayTicks: delayTicks,
      maxEntriesPerMsg: flags.raft_max_entries_size,
      maxBodyBytes: flags.raft_max_body_size,
      catchupMargin: options.catchupMargin ?? 1000,
      ...(options.catchupTimeoutMs === undefined
        ? {}
        : { catchupTimeoutTick: Math.ceil(options.catchupTimeoutMs / this.#tickMs) }),
      stepDownWhenVoteTimedout: flags.raft_step_down_when_vote_timedout,
      leaseEnabled: this.#leaseOn,
      maxApplyingBytes: flags.raft_max_applying_bytes,
      priority: options.electionPriority ?? 1,
      witness: options.witness ?? false,
      witnessToLeader: flags.raft_enable_witness_to_leader,
      initialConf: { peers: initialConf },
      applied,
    });
    const conf = this.#core.configuration();
    if (
      conf.peers.size === 1 && conf.peers.contains(this.#peer) && (conf.oldPeers?.isEmpty() ?? true)
    ) {
      this.#core.campaign();
    }
  }

  /**
   * Stops the node: a leader first wakes a successor with TimeoutNow, then timers stop,
   * pending work fails with EPERM "Node is down" (as braft), `onShutdown` runs and storage
   * closes. A leader calls `onLeaderStop` and a follower `onStopFollowing` with ESHUTDOWN.
   * Idempotent.
   *
   * @returns Resolves when the node is fully stopped (also what `join()` waits for).
   */
  shutdown(): Promise<void> {
    if (this.#shutdownPromise !== null) return this.#shutdownPromise;
    this.#shutdownPromise = this.#doShutdown();
    return this.#shutdownPromise;
  }

  async #doShutdown(): Promise<void> {
    const wasInit = this.#core !== null;
    if (this.#state === NodeState.UNINITIALIZED) {
      this.#state = NodeState.SHUTDOWN;
      this.#failAllWaiters(RaftException.of(RaftError.EPERM, "Node is down"));
      return;
    }
    if (this.#core?.isLeader()) {
      // braft: a leader that shuts down steps down for good and wakes the most caught-up
      // follower, saying so, so the voters need not wait out their follower lease.
      const st = this.#core.stepDownAndWakeCandidate();
      if (st.ok()) await this.#driveNow();
    } else if (this.#soft.role === "follower" && this.#soft.leader !== "" && this.#core !== null) {
      // braft step_down(ESHUTDOWN) on a follower: it stops following
      this.#caller.stopFollowing({
        leaderId: PeerId.parse(this.#soft.leader),
        term: this.#soft.term,
        status: new Status(RaftError.ESHUTDOWN, "Raft node is going to quit."),
      });
    }
    this.#state = NodeState.SHUTTING;
    this.#clearTimers();
    const down = new Status(RaftError.EPERM, "Node is down");
    this.#failPending(down);
    this.#failAllWaiters(new RaftException(down));
    this.#manager?.remove(this);
    this.#snapshotExecutor?.cancel(); // aborts copies: an install in the Ready loop ends now
    await this.#driveDone;
    await this.#snapshotExecutor?.stop();
    if (wasInit) await this.#caller.shutdown();
    if (wasInit && this.#options?.nodeOwnsFsm === true) await disposeOwned(this.#fsm);
    await this.#closeStorage();
    this.#state = NodeState.SHUTDOWN;
  }

  /**
   * Waits until a `shutdown()` has finished (braft `join`).
   *
   * @returns Resolves when the node is shut down.
   */
  async join(): Promise<void> {
    await (this.#shutdownPromise ?? Promise.resolve());
  }

  async #closeStorage(): Promise<void> {
    const ownsLog = this.#options?.logStorage === undefined ||
      (this.#options.nodeOwnsLogStorage ?? true);
    if (ownsLog) await this.#log?.close().catch(() => {});
    await this.#meta?.close().catch(() => {});
    this.#log = null;
    this.#meta = null;
  }

  // ------------------------------------------------------------------ writes

  /**
   * Proposes `task.data` as a new log entry (braft `apply`). The outcome goes to `task.done`,
   * exactly once: once committed, that very object is handed to `onApply` through
   * `iter.done()`; otherwise it runs with EPERM (not leader, expected-term mismatch, leader
   * stepped down, node down or in ERROR, as braft), EBUSY (transferring, or overloaded:
   * `raft_max_pending_applies` tasks or `raft_max_pending_apply_bytes` bytes are already
   * accepted and not yet applied — retry later), EREADONLY or EINVAL. Never blocks, and never
   * runs `done` synchronously.
   *
   * @param task Data, completion and expected term.
   */
  apply(task: Task): void {
    // The caller's own object travels to onApply (iter.done()), never a wrapper: a state
    // machine may downcast it to hand back a response. It has one owner at a time (#pending,
    // then the FSMCaller, then the state machine), so it runs exactly once without a guard.
    const done = task?.done;
    const fail = (code: number, message: string): void => {
      if (done !== undefined) queueMicrotask(() => done.run(new Status(code, message)));
    };
    if (task === null || typeof task !== "object" || task.data === undefined) {
      return fail(RaftError.EINVAL, "Task has no data");
    }
    if (!(task.data instanceof Uint8Array) && !(task.data instanceof ChunkChain)) {
      return fail(RaftError.EINVAL, "Task data must be a Uint8Array or ChunkChain");
    }
    const inactive = this.#inactiveStatus();
    if (inactive !== null) return fail(inactive.code, inactive.message);
    this.#wake();
    const data = toChunkChain(task.data);
    const bytes = data.length + ENTRY_OVERHEAD_BYTES;
    const overloaded = this.#overloaded(bytes);
    if (overloaded !== null) return fail(RaftError.EBUSY, overloaded);
    const r = this.#core!.propose(data, task.expectedTerm ?? -1);
    if (!r.status.ok()) return fail(r.status.code, r.status.message);
    const token = this.#admit(r.index, bytes);
    if (done !== undefined) {
      (this.#pending ??= new Map()).set(r.index, { term: r.term, done, token });
    }
    this.#drive();
  }

  /**
   * `apply` as a Promise: resolves once the entry is applied on this node.
   *
   * @param data The entry's payload.
   * @param expectedTerm Optional term check (-1 = none).
   * @returns Resolves on success; rejects with a `RaftException`.
   */
  applyAsync(data: Bytes, expectedTerm = -1): Promise<void> {
    return new Promise((resolve, reject) => {
      this.apply({
        data,
        expectedTerm,
        done: closure((s) => (s.ok() ? resolve() : reject(new RaftException(s)))),
      });
    });
  }

  // ------------------------------------------------------------------ membership

  /**
   * Adds a voter (braft `add_peer`). With `oldPeers`, only if the current configuration
   * equals it.
   *
   * @param peer The new peer.
   * @param options `oldPeers`: the configuration the change expects.
   * @returns Resolves when the new configuration is committed.
   */
  addPeer(
    peer: PeerId | string,
    options: { oldPeers?: Configuration | string } = {},
  ): Promise<void> {
    return this.#changeWith((conf) => {
      conf.add(PeerId.from(peer));
    }, options.oldPeers);
  }

  /**
   * Removes a voter (braft `remove_peer`). A leader that removes itself steps down and wakes
   * a successor with TimeoutNow.
   *
   * @param peer The peer to remove.
   * @returns Resolves when the new configuration is committed.
   */
  removePeer(peer: PeerId | string): Promise<void> {
    return this.#changeWith((conf) => {
      conf.remove(PeerId.from(peer));
    });
  }

  /**
   * Changes the voters to `newPeers` (braft `change_peers`): new peers catch up first, then a
   * joint configuration if more than one peer changes.
   *
   * @param newPeers The new configuration.
   * @returns Resolves when it is committed; rejects with EPERM, EBUSY, ECATCHUP, EINVAL.
   */
  changePeers(newPeers: Configuration | string): Promise<void> {
    let target: Configuration;
    try {
      target = Configuration.from(newPeers).clone();
    } catch (e) {
      return Promise.reject(RaftException.of(RaftError.EINVAL, (e as Error).message));
    }
    return this.#changeWith((conf) => {
      for (const p of conf.peers) conf.remove(p);
      for (const p of target) conf.add(p);
    });
  }

  /**
   * Adds a learner: a non-voting member that receives the log.
   *
   * @param peer The learner.
   * @returns Resolves when committed.
   */
  addLearner(peer: PeerId | string): Promise<void> {
    return this.#changeLearners((l) => l.add(PeerId.from(peer)));
  }

  /**
   * Removes a learner.
   *
   * @param peer The learner.
   * @returns Resolves when committed.
   */
  removeLearner(peer: PeerId | string): Promise<void> {
    return this.#changeLearners((l) => l.remove(PeerId.from(peer)));
  }

  #changeLearners(edit: (learners: Configuration) => void): Promise<void> {
    const inactive = this.#inactiveStatus();
    if (inactive !== null) return Promise.reject(new RaftException(inactive));
    const cur = this.#core!.configuration();
    const learners = (cur.learners ?? new Configuration()).clone();
    try {
      edit(learners);
    } catch (e) {
      return Promise.reject(RaftException.of(RaftError.EINVAL, (e as Error).message));
    }
    return this.#proposeConf(cur.peers.clone(), learners);
  }

  #changeWith(
    edit: (conf: Configuration) => void,
    expected?: Configuration | string,
  ): Promise<void> {
    const inactive = this.#inactiveStatus();
    if (inactive !== null) return Promise.reject(new RaftException(inactive));
    const cur = this.#core!.configuration();
    if (expected !== undefined) {
      let exp: Configuration;
      try {
        exp = Configuration.from(expected);
      } catch (e) {
        return Promise.reject(RaftException.of(RaftError.EINVAL, (e as Error).message));
      }
      if (!exp.equals(cur.peers)) {
        return Promise.reject(
          RaftException.of(
            RaftError.EINVAL,
            `Configuration is ${cur.peers}, not the expected ${exp}`,
          ),
        );
      }
    }
    const next = cur.peers.clone();
    try {
      edit(next);
    } catch (e) {
      return Promise.reject(RaftException.of(RaftError.EINVAL, (e as Error).message));
    }
    return this.#proposeConf(next);
  }

  #proposeConf(peers: Configuration, learners?: Configuration): Promise<void> {
    const core = this.#core!;
    if (!core.isLeader()) return Promise.reject(RaftException.of(RaftError.EPERM, "Not leader"));
    this.#wake();
    const st = core.proposeConfChange(learners === undefined ? { peers } : { peers, learners });
    if (!st.ok()) return Promise.reject(new RaftException(st));
    return new Promise<void>((resolve, reject) => {
      this.#confWaiters.push({ peers: keysString(peers), resolve, reject });
      this.#drive();
    });
  }

  /**
   * Forces the membership (braft `reset_peers`): unsafe, for when a majority is lost for
   * good. The node steps down and can then elect itself among `newPeers`.
   *
   * @param newPeers The surviving peers.
   * @returns OK, or EINVAL / EPERM / EBUSY.
   */
  resetPeers(newPeers: Configuration | string): Status {
    const inactive = this.#inactiveStatus();
    if (inactive !== null) return inactive;
    let conf: Configuration;
    try {
      conf = Configuration.from(newPeers);
    } catch (e) {
      return new Status(RaftError.EINVAL, (e as Error).message);
    }
    if (conf.isEmpty()) return new Status(RaftError.EINVAL, "new_peers is empty");
    this.#wake();
    const current = this.#core!.configuration();
    if (conf.equals(current.peers) && (current.oldPeers?.isEmpty() ?? true)) return Status.OK();
    const st = this.#core!.resetPeers(conf);
    if (st.ok()) {
      if (conf.size === 1 && conf.contains(this.#peer)) this.#core!.campaign();
      this.#drive();
    }
    return st;
  }

  /**
   * Starts a leadership transfer (braft `transfer_leadership_to`).
   *
   * @param peer The target, or `ANY_PEER` for the most caught-up follower.
   * @returns OK, or EPERM (not leader) / EBUSY / EINVAL.
   */
  transferLeadershipTo(peer: PeerId | string): Status {
    const inactive = this.#inactiveStatus();
    if (inactive !== null) return inactive;
    let target: PeerId;
    try {
      target = PeerId.from(peer);
    } catch (e) {
      return new Status(RaftError.EINVAL, (e as Error).message);
    }
    this.#wake();
    const st = this.#core!.transferLeader(
      target.isEmpty() || target.equals(ANY_PEER) ? "" : target.key(),
    );
    this.#drive();
    return st;
  }

  /**
   * Triggers an election (braft `vote`): a follower sets its election timeout to
   * `electionTimeoutMs` (keeping `electionTimeoutMs + maxClockDriftMs` as it is) and, when it
   * next fires, campaigns even while it hears from a leader (the leader grants its pre-vote
   * and vote, and so steps down). Used to steer leadership.
   *
   * @param electionTimeoutMs The new election timeout (default unchanged).
   * @returns OK, EPERM (not a follower, node down) or EINVAL (above the safety bound).
   */
  vote(electionTimeoutMs?: number): Status {
    const inactive = this.#inactiveStatus();
    if (inactive !== null) return inactive;
    if (this.#core!.role() !== "follower") {
      return new Status(RaftError.EPERM, "Node is not follower");
    }
    const st = this.resetElectionTimeoutMs(electionTimeoutMs ?? this.#electionTimeoutMs);
    if (!st.ok()) return st;
    this.#wake();
    this.#voteTick = this.#tickNo;
    this.#core!.triggerVote();
    this.#drive();
    return Status.OK();
  }

  /**
   * Changes the election timeout (and so the heartbeat interval) from now on (braft
   * `reset_election_timeout_ms`). With one argument the sum `electionTimeoutMs +
   * maxClockDriftMs` stays as it is, so the lease stays safe; a larger timeout is EINVAL.
   * With `maxClockDriftMs` both are set as given (braft's 2-argument form: unsafe for the
   * leader lease unless done as its documented procedure).
   *
   * @param electionTimeoutMs The new timeout in ms (> 0).
   * @param maxClockDriftMs The new clock drift bound (2-argument form).
   * @returns OK or EINVAL.
   */
  resetElectionTimeoutMs(electionTimeoutMs: number, maxClockDriftMs?: number): Status {
    if (!Number.isFinite(electionTimeoutMs) || electionTimeoutMs <= 0) {
      return new Status(RaftError.EINVAL, `Election timeout ${electionTimeoutMs} must be > 0`);
    }
    if (maxClockDriftMs !== undefined) {
      if (!Number.isFinite(maxClockDriftMs) || maxClockDriftMs < 0) {
        return new Status(RaftError.EINVAL, `Clock drift ${maxClockDriftMs} must be >= 0`);
      }
      this.#setElectionTimeout(electionTimeoutMs);
      this.#maxClockDriftMs = maxClockDriftMs;
      this.#wake();
      return Status.OK();
    }
    const bound = this.#electionTimeoutMs + this.#maxClockDriftMs;
    if (electionTimeoutMs > bound) {
      return new Status(
        RaftError.EINVAL,
        `Election timeout ${electionTimeoutMs} is larger than the safety threshold ${bound}`,
      );
    }
    this.#setElectionTimeout(electionTimeoutMs);
    this.#maxClockDriftMs = bound - electionTimeoutMs;
    this.#wake();
    return Status.OK();
  }

  /**
   * What the snapshot executor sees of its node: one object whose accessors read the node's
   * private state (a class nested here for that access; closures would cost an idle group a
   * few hundred bytes more).
   */
  static readonly #SnapshotHostView = class implements SnapshotHost {
    readonly #node: Node;
    readonly fsm: SnapshotCallbacks;
    constructor(node: Node, fsm: SnapshotCallbacks) {
      this.#node = node;
      this.fsm = fsm;
    }
    get groupId(): string {
      return this.#node.groupId;
    }
    get endpoint(): string {
      return this.#node.#peer.endpoint;
    }
    get caller(): FSMCaller {
      return this.#node.#caller;
    }
    get logManager(): LogManager {
      return this.#node.#logManager!;
    }
    get manager(): NodeManager {
      return this.#node.#manager!;
    }
    core(): RaftCore | null {
      return this.#node.#core;
    }
    active(): boolean {
      return this.#node.#active();
    }
    receive(envelope: MessageEnvelope): void {
      this.#node.receive(envelope);
    }
    drive(): void {
      this.#node.#drive();
    }
    electionTimeoutMs(): number {
      return this.#node.#electionTimeoutMs;
    }
  };

  #setElectionTimeout(ms: number): void {
    this.#electionTimeoutMs = ms;
    this.#tickMs = Math.max(1, ms / TICKS_PER_ELECTION);
    if (this.#tickSource !== null && this.#tickSource.periodMs !== this.#tickMs) {
      this.#stopTicking(); // another period: another shared source
      this.#startTicking();
    }
  }

  // ------------------------------------------------------------------ snapshots

  /**
   * Takes a snapshot now (braft `snapshot`): `onSnapshotSave` writes the files, then the log
   * before the previous snapshot is dropped (one snapshot interval of log is kept for
   * lagging followers).
   *
   * @returns Resolves when the snapshot is durable; rejects with EINVAL (snapshots not
   *   configured), EBUSY (another snapshot in progress), EPERM (node stopped) or the state
   *   machine's error.
   */
  async snapshot(): Promise<void> {
    const inactive = this.#inactiveStatus();
    if (inactive !== null) throw new RaftException(inactive);
    if (this.#snapshotExecutor === null) {
      throw RaftException.of(RaftError.EINVAL, "Snapshot is not supported");
    }
    this.#wake();
    await this.#snapshotExecutor.save();
  }

  // ------------------------------------------------------------------ reads

  /**
   * A linearizable read barrier: resolves with a read index once this node has applied at
   * least that far; read the state machine after. The leader confirms its leadership (by a
   * heartbeat quorum, or a valid lease) and takes its commit index. A follower or learner asks
   * its leader for that index over the transport (a follower read, see
   * `read_index_service.ts`) and then waits for its own state machine. A witness has no state
   * machine data to read.
   *
   * @returns The read index; rejects with EPERM (a witness, no leader known, not leader,
   *   stepped down, node in ERROR or down — also while a read waits for the apply), or, on a
   *   follower, with the leader's error or the call's (ETIMEDOUT after the election timeout
   *   plus `maxClockDriftMs`, EHOSTUNREACH), its message naming the leader asked.
   */
  readIndex(): Promise<number> {
    const inactive = this.#inactiveStatus();
    if (inactive !== null) return Promise.reject(new RaftException(inactive));
    this.#wake();
    if (this.#options.witness === true) {
      return Promise.reject(
        RaftException.of(
          RaftError.EPERM,
          `Cannot read on ${this.#describeId()}: a witness has no state machine data`,
        ),
      );
    }
    if (this.#core!.role() !== "leader") return this.#forwardRead(this.#core!);
    return this.#confirmRead(true);
  }

  /**
   * Leader only: a confirmed read index, without waiting for this node's own apply — what a
   * follower read asks the leader for.
   *
   * @returns The read index; rejects with EPERM (not leader, stepped down, node in ERROR or
   *   down).
   * @internal
   */
  leaderReadIndex(): Promise<number> {
    const inactive = this.#inactiveStatus();
    if (inactive !== null) return Promise.reject(new RaftException(inactive));
    this.#wake();
    return this.#confirmRead(false);
  }

  #confirmRead(waitApply: boolean): Promise<number> {
    const seq = ++this.#readSeq;
    const st = this.#core!.readIndex(seq, this.#leaseConfirmedByClock());
    if (!st.ok()) return Promise.reject(new RaftException(st));
    const p = new Promise<number>((resolve, reject) =>
      (this.#readWaiters ??= new Map()).set(seq, { resolve, reject, waitApply })
    );
    this.#drive();
    return p;
  }

  /** A follower read: the leader's read index, then this node's apply up to it. */
  #forwardRead(core: RaftCore): Promise<number> {
    const leader = core.leader();
    if (leader === "") {
      return Promise.reject(
        RaftException.of(
          RaftError.EPERM,
          `Cannot read on ${this.#describeId()}: not leader and the leader is unknown`,
        ),
      );
    }
    const controller = new AbortController();
    return new Promise<number>((resolve, reject) => {
      const fail = (e: RaftException): void => {
        controller.abort();
        reject(e);
      };
      const forwarded = (this.#forwardedReads ??= new Set());
      forwarded.add(fail);
      callReadIndex(
        this.#manager!.transport,
        PeerId.parse(leader).endpoint,
        { g: this.groupId, peer: leader, term: core.term() },
        // by then the leader has confirmed the read or stepped down (vote timeout, as braft)
        { timeoutMs: this.#electionTimeoutMs + this.#maxClockDriftMs, signal: controller.signal },
      ).then(
        (r) => {
          if (!forwarded.delete(fail)) return; // already failed by a stop
          this.waitApplied(r.index).then(() => resolve(r.index), reject);
        },
        (e: unknown) => {
          if (!forwarded.delete(fail)) return;
          const code = e instanceof RaftException ? e.code : RaftError.EIO;
          const why = e instanceof RaftException
            ? e.status.message
            : e instanceof Error
            ? e.message
            : String(e);
          reject(RaftException.of(code, `Read index from leader ${leader} failed: ${why}`));
        },
      );
    });
  }

  /**
   * The first DATA entry at or after `index` that is applied (braft `read_committed_user_log`).
   *
   * @param index A log index (≥ 1).
   * @returns The entry.
   * @throws {RaftException} EINVAL (index ≤ 0), ENOMOREUSERLOG (none applied yet),
   *   ELOGDELETED (compacted).
   */
  async readCommittedUserLog(index: number): Promise<UserLog> {
    if (!Number.isSafeInteger(index) || index <= 0) {
      throw RaftException.of(RaftError.EINVAL, `Cannot read log at index ${index}: must be > 0`);
    }
    const inactive = this.#inactiveStatus();
    if (inactive !== null) throw new RaftException(inactive);
    const applied = this.#caller.lastAppliedIndex;
    if (index > applied) {
      throw RaftException.of(
        RaftError.ENOMOREUSERLOG,
        `No user log at or after ${index} is applied (applied ${applied})`,
      );
    }
    const log = this.#log!;
    for (let i = index; i <= applied; i++) {
      if (i < log.firstLogIndex()) {
        throw RaftException.of(RaftError.ELOGDELETED, `Log at index ${i} was compacted`);
      }
      const e = await log.getEntry(i);
      if (e === null) {
        throw RaftException.of(RaftError.ELOGDELETED, `Log at index ${i} was compacted`);
      }
      if (e.type === EntryType.DATA) return { index: e.index, term: e.term, data: e.data };
    }
    throw RaftException.of(RaftError.ENOMOREUSERLOG, `No user log between ${index} and ${applied}`);
  }

  /** Refuses new user entries from now on (writes get EREADONLY). */
  enterReadonlyMode(): void {
    this.#wake();
    this.#core?.setReadonly(true);
    this.#drive();
  }

  /** Accepts user entries again. */
  leaveReadonlyMode(): void {
    this.#wake();
    this.#core?.setReadonly(false);
    this.#drive();
  }

  /**
   * Whether this node is in readonly mode, or (as leader) a majority of voters are.
   *
   * @returns The readonly flag.
   */
  readonly(): boolean {
    const core = this.#core;
    if (core === null) return false;
    return core.readonlyMode() || (core.isLeader() && core.isReadonlyLeader());
  }

  /**
   * Whether lease reads are safe now (requires `enableLeaderLease`).
   *
   * @returns `true` when the leader lease is valid.
   */
  isLeaderLeaseValid(): boolean {
    const core = this.#core;
    return core !== null && this.isLeader() && core.isLeaderLeaseValid() &&
      this.#leaseConfirmedByClock();
  }

  /**
   * The core measures the lease in ticks: it holds while a quorum acknowledged a heartbeat sent
   * at most T - 2 ticks ago. Ticks can lag real time (a stalled event loop) and a tick count
   * says nothing of where within a tick a message went, so the clock must confirm it. The
   * heartbeat the lease rests on (the quorum's newest acknowledged `sentTick` s) left after
   * tick s fired. A follower that received it refuses votes and does not campaign until its
   * T-th tick after the receipt; its first tick may come at once, so that holds for more than
   * T - 1 ticks of real time. The leader trusts the lease for less than that, minus a margin
   * for clock drift (see #leaseDriftMarginMs).
   */
  #leaseConfirmedByClock(): boolean {
    const core = this.#core;
    if (core === null) return false;
    const acked = core.term() === this.#ackTerm ? this.#acked : null;
    const conf = core.configuration();
    const self = this.#peer.key();
    const cur = this.#tickNo;
    const s = jointIndex(
      conf.peers.peers.map((p) => p.key()),
      conf.oldPeers?.peers.map((p) => p.key()) ?? [],
      (id) => id === self ? cur : acked?.get(id) ?? -Infinity,
    );
    if (!(s > cur - TICK_HISTORY) || s > cur) return false;
    const sentAfter = this.#tickAt[s % TICK_HISTORY]!;
    const bound = (TICKS_PER_ELECTION - 1) * this.#tickMs - this.#leaseDriftMarginMs();
    return this.#clock.now() - sentAfter < bound;
  }

  /** A follower's acknowledgement in this leader's term, as the core will count it, or null. */
  #ackIn(core: RaftCore, m: Message): { from: string; term: number; sentTick: number } | null {
    if (m.type !== "AppendEntriesResp" || !core.isLeader() || m.term !== core.term()) return null;
    return { from: m.from, term: m.term, sentTick: m.sentTick };
  }

  /** Notes an acknowledgement once the core accepted the message. */
  #noteAck(ack: { from: string; term: number; sentTick: number }): void {
    const acked = (this.#acked ??= new Map());
    if (this.#ackTerm !== ack.term) {
      acked.clear();
      this.#ackTerm = ack.term;
    }
    if (ack.sentTick > (acked.get(ack.from) ?? -Infinity)) acked.set(ack.from, ack.sentTick);
  }

  /**
   * braft keeps a follower's lease `maxClockDriftMs` longer than the leader's. Here the
   * followers' side is counted in the core's ticks, so the margin comes off the leader's side
   * instead, capped at half of the T - 1 ticks so that a lease remains usable (heartbeats go
   * every T / 10) even when the drift allowed is as large as the election timeout.
   */
  #leaseDriftMarginMs(): number {
    const drift = this.#maxClockDriftMs;
    return Math.max(0, Math.min(drift, ((TICKS_PER_ELECTION - 1) * this.#tickMs) / 2));
  }

  /**
   * The leader lease state (braft `get_leader_lease_status`).
   *
   * @returns State, term and epoch.
   */
  getLeaderLeaseStatus(): LeaderLeaseStatus {
    const core = this.#core;
    if (!this.#leaseOn) {
      return { state: LeaseState.DISABLED, term: 0, leaseEpoch: this.#leaseEpoch };
    }
    if (core === null || !core.isLeader()) {
      return { state: LeaseState.EXPIRED, term: 0, leaseEpoch: this.#leaseEpoch };
    }
    if (!this.#leaderStarted) {
      return { state: LeaseState.NOT_READY, term: core.term(), leaseEpoch: this.#leaseEpoch };
    }
    return {
      state: this.isLeaderLeaseValid() ? LeaseState.VALID : LeaseState.EXPIRED,
      term: core.term(),
      leaseEpoch: this.#leaseEpoch,
    };
  }

  // ------------------------------------------------------------------ queries

  /**
   * The known leader.
   *
   * @returns Its id, or `null` when unknown.
   */
  leaderId(): PeerId | null {
    const l = this.#core?.leader() ?? "";
    return l === "" ? null : PeerId.parse(l);
  }

  /**
   * Whether this node leads (a transferring leader does not count, as braft).
   *
   * @returns `true` when leader.
   */
  isLeader(): boolean {
    return this.#state === NodeState.LEADER;
  }

  /**
   * This node's id.
   *
   * @returns The peer id.
   */
  nodeId(): PeerId {
    return this.#peer;
  }

  /**
   * The current term.
   *
   * @returns The term (0 before init).
   */
  term(): number {
    return this.#core?.term() ?? 0;
  }

  /**
   * The voters (leader only, as braft).
   *
   * @returns The peers.
   * @throws {RaftException} EPERM when not leader.
   */
  listPeers(): PeerId[] {
    if (!this.#core?.isLeader()) throw RaftException.of(RaftError.EPERM, "Not leader");
    return this.#core.configuration().peers.peers;
  }

  /**
   * Index of the last entry the state machine applied.
   *
   * @returns The index.
   */
  appliedIndex(): number {
    return this.#caller?.lastAppliedIndex ?? 0;
  }

  /**
   * The node's state (braft `State`).
   *
   * @returns The state.
   */
  state(): NodeState {
    return this.#state;
  }

  /**
   * Resolves once this node is leader (a test and tooling helper).
   *
   * @returns Resolves when leading; rejects with EPERM if the node goes to
   *   ERROR or shuts down first.
   */
  waitLeader(): Promise<void> {
    if (this.isLeader() && this.#leaderStarted) return Promise.resolve();
    const gone = this.#goneStatus();
    if (gone !== null) return Promise.reject(new RaftException(gone));
    return new Promise((resolve, reject) => this.#leaderWaiters.push({ resolve, reject }));
  }

  /**
   * Resolves once the state machine has applied `index`.
   *
   * @param index The log index.
   * @returns Resolves when applied; rejects with EPERM if the node goes to
   *   ERROR or shuts down first.
   */
  waitApplied(index: number): Promise<void> {
    if (this.appliedIndex() >= index) return Promise.resolve();
    const gone = this.#goneStatus();
    if (gone !== null) return Promise.reject(new RaftException(gone));
    return new Promise((resolve, reject) => {
      this.#appliedWaiters.push({ index, resolve, reject });
      this.#appliedWaiters.sort((a, b) => a.index - b.index);
    });
  }

  /**
   * Every raft_stat field (braft `describe` / `get_status`).
   *
   * @returns The status.
   */
  describe(): NodeStatus {
    const core = this.#core;
    const conf = core?.configuration();
    const confRecords = this.#logManager?.configurations() ?? [];
    const timer = (name: string, ms: number, active: boolean): string =>
      `timeout(${Math.round(ms)}ms) ${active ? "SCHEDULING" : "STOPPED"} (${name})`;
    const role = core?.role();
    return {
      groupId: this.groupId,
      peerId: this.#peer.toString(),
      state: nodeStateName(this.#state),
      readonly: this.readonly(),
      term: core?.term() ?? 0,
      confIndex: confRecords.length > 0
        ? confRecords[confRecords.length - 1]!.index
        : (this.#snapshotExecutor?.lastSnapshot.index ?? 0),
      peers: conf?.peers.peers.map(String) ?? [],
      learners: conf?.learners?.peers.map(String) ?? [],
      oldPeers: conf?.oldPeers?.peers.map(String) ?? [],
      leader: core?.leader() ?? "",
      electionTimer: timer(
        "election",
        this.#electionTimeoutMs,
        role === "follower" && !this.#quiesced,
      ),
      voteTimer: timer(
        "vote",
        this.#electionTimeoutMs + this.#maxClockDriftMs,
        role === "candidate",
      ),
      stepdownTimer: timer(
        "stepdown",
        this.#electionTimeoutMs,
        role === "leader" && !this.#quiesced,
      ),
      snapshotTimer: timer(
        "snapshot",
        (this.#options?.snapshotIntervalS ?? 3600) * 1000,
        this.#snapshotExecutor?.timerArmed ?? false,
      ),
      firstIndex: this.#log?.firstLogIndex() ?? 0,
      lastIndex: this.#log?.lastLogIndex() ?? 0,
      diskIndex: this.#logManager?.diskIndex ?? 0,
      knownAppliedIndex: this.appliedIndex(),
      lastLogId: { index: core?.lastIndex() ?? 0, term: core?.lastTerm() ?? 0 },
      stateMachine: this.#caller?.activity ?? "Idle",
      lastCommittedIndex: core?.commitIndex() ?? 0,
      pendingIndex: core?.isLeader() && core.lastIndex() > core.commitIndex()
        ? core.commitIndex() + 1
        : 0,
      pendingQueueSize: this.#pendingApplies,
      pendingQueueBytes: this.#pendingApplyBytes,
      applyingIndex: core !== null && core.applyingIndex() > this.appliedIndex()
        ? core.applyingIndex()
        : 0,
      lastSnapshotIndex: this.#snapshotExecutor?.lastSnapshot.index ?? 0,
      lastSnapshotTerm: this.#snapshotExecutor?.lastSnapshot.term ?? 0,
      snapshotStatus: this.#snapshotExecutor?.status ?? "IDLE",
      followers: (core?.followers() ?? []).map((f) => ({
        peer: PeerId.parse(f.id).toString(),
        nextIndex: f.next,
        matchIndex: f.match,
        state: f.state,
        blocking: f.paused && f.state !== "snapshot",
        installingSnapshot: f.state === "snapshot",
        consecutiveErrorTimes: Math.max(0, Math.floor(f.silentTicks / this.#heartbeatTick) - 1),
        lastContactMs: Math.max(0, f.silentTicks) * this.#tickMs,
      })),
      quiesced: this.#quiesced,
    };
  }

  // ------------------------------------------------------------------ transport

  /**
   * Handles a message routed to this node.
   *
   * @param envelope The decoded frame.
   * @internal
   */
  receive(envelope: MessageEnvelope): void {
    const core = this.#core;
    if (core === null || !this.#active()) return;
    const m = envelope.message;
    const quiesceHeartbeat = envelope.quiesce === true && m.type === "AppendEntries" &&
      m.heartbeat;
    if (!quiesceHeartbeat && !this.#quiet(core, m)) this.#wake();
    if (
      m.type === "InstallSnapshot" &&
      this.#snapshotExecutor?.interceptInstall(core, { ...envelope, message: m })
    ) {
      return; // re-delivered once its files are downloaded
    }
    const ack = this.#ackIn(core, m);
    try {
      core.step(m);
    } catch (e) {
      // A message that breaks a protocol invariant (say, a second leader in this term) comes
      // from a faulty or hostile peer: drop it rather than let it crash the process. The core
      // checks such invariants before changing any state.
      void e;
      this.#rejectedMessages++;
      return;
    }
    if (ack !== null) this.#noteAck(ack);
    if (quiesceHeartbeat) this.#followQuiesce(core, m);
    this.#drive();
  }

  /** Messages dropped because they violated a protocol invariant (see `receive`). */
  get rejectedMessages(): number {
    return this.#rejectedMessages;
  }

  #send(messages: readonly Message[]): void {
    const manager = this.#manager;
    if (manager === null) return;
    // An armed leader flags its next heartbeat round, then quiesces once every follower got one.
    let quiesce = this.#quiesceArmed &&
      messages.some((m) => m.type === "AppendEntries" && m.heartbeat);
    if (quiesce && !this.#canQuiesce()) {
      this.#quiesceArmed = false;
      this.#idleTicks = 0;
      quiesce = false;
    }
    const flagged = quiesce ? new Set<string>() : null;
    for (const m of messages) {
      const endpoint = endpointOfPeerKey(m.to);
      if (endpoint === null) continue;
      let uri: string | undefined;
      if (m.type === "InstallSnapshot") {
        uri = this.#snapshotExecutor?.copyUri();
        if (uri === undefined) continue; // nothing to serve yet; the core retries
      }
      const q = flagged !== null && m.type === "AppendEntries" && m.heartbeat;
      if (q) flagged.add(m.to);
      manager.sendEnvelope(endpoint, {
        groupId: this.groupId,
        message: m,
        ...(uri === undefined ? {} : { uri }),
        ...(q ? { quiesce: true } : {}),
      });
    }
    if (flagged !== null && this.#core!.followers().every((f) => flagged.has(f.id))) {
      this.#quiesce();
    }
  }

  // ------------------------------------------------------------------ the Ready loop

  #drive(): void {
    if (this.#driveQueued) return;
    this.#driveQueued = true;
    queueMicrotask(() => {
      this.#driveQueued = false;
      void this.#driveNow();
    });
  }

  async #driveNow(): Promise<void> {
    // The running loop re-checks hasReady() after every Ready, so a second loop is never
    // needed (and re-queueing here would spin microtasks while the loop awaits I/O).
    if (this.#driving) return;
    const core = this.#core;
    if (core === null || this.#error !== null || this.#stopping()) return;
    this.#driving = true;
    let finished!: () => void;
    this.#driveDone = new Promise((r) => (finished = r));
    try {
      while (core.hasReady() && this.#error === null && !this.#stopping()) {
        const rd = core.ready();
        await this.#process(core, rd);
        core.advance(rd);
      }
    } catch (e) {
      this.#storageFailed("persist", e);
    } finally {
      this.#driving = false;
      finished();
    }
  }

  async #process(core: RaftCore, rd: Ready): Promise<void> {
    // Closures of entries committed in this Ready belong to them, even if the same Ready also
    // reports a step-down (which fails only what is still uncommitted).
    const closures = this.#takeClosures(rd.committedEntries);
    try {
      await this.#processTaken(core, rd, closures);
    } catch (e) {
      // The write failed before these entries reached the state machine: their closures
      // would otherwise be lost (taken from #pending, never handed to the FSMCaller).
      if (!this.#handed) {
        const status = this.#stopping()
          ? new Status(RaftError.EPERM, "Node is down")
          : this.#errorStatus(this.#asStorageError("persist", e));
        for (const done of closures) if (done !== undefined) queueMicrotask(() => done.run(status));
      }
      throw e;
    }
  }

  /** Set once #processTaken handed the Ready's closures to the FSMCaller. */
  #handed = false;

  async #processTaken(
    core: RaftCore,
    rd: Ready,
    closures: readonly (Closure | undefined)[],
  ): Promise<void> {
    this.#handed = false;
    // Finished membership changes first: a leader that removed itself reports success
    // before its step-down (in the same Ready) fails what is still pending.
    for (const r of rd.confChangeResults) {
      const key = [...r.peers].sort().join(",");
      const i = this.#confWaiters.findIndex((w) => w.peers === key);
      const w = i >= 0 ? this.#confWaiters.splice(i, 1)[0]! : this.#confWaiters.shift();
      if (w === undefined) continue;
      if (r.status.ok()) w.resolve();
      else w.reject(new RaftException(r.status));
    }
    if (rd.softState !== undefined) this.#onSoftState(rd.softState, rd);
    this.#send(rd.messages);
    const lm = this.#logManager!;
    let superseded = false; // by a newer snapshot: skip this one and the entries after it
    if (rd.snapshot !== undefined) {
      if (this.#snapshotExecutor === null) {
        throw RaftException.of(
          RaftError.EINVAL,
          "Cannot install a snapshot: snapshotUri is not set",
        );
      }
      superseded = !await this.#snapshotExecutor.install(
        rd.snapshot,
        () => this.#state === NodeState.SHUTTING || this.#state === NodeState.SHUTDOWN,
      );
    }
    if (rd.entries.length > 0 && !superseded) await lm.append(rd.entries);
    if (rd.hardState !== undefined) await lm.setHardState(rd.hardState);
    this.#send(rd.messagesAfterPersist);
    if (rd.committedEntries.length > 0) this.#applyCommitted(rd.committedEntries, closures, core);
    this.#handed = true;
    for (const rs of rd.readStates) {
      const w = this.#readWaiters?.get(rs.ctx as number);
      if (w === undefined) continue;
      this.#readWaiters!.delete(rs.ctx as number);
      if (!rs.status.ok()) w.reject(new RaftException(rs.status));
      else if (!w.waitApply) w.resolve(rs.index);
      else this.waitApplied(rs.index).then(() => w.resolve(rs.index), w.reject);
    }
  }

  #takeClosures(entries: readonly LogEntry[]): (Closure | undefined)[] {
    return entries.map((e) => {
      const p = this.#pending?.get(e.index);
      if (p === undefined) return undefined;
      this.#pending!.delete(e.index);
      if (p.term === e.term) return p.done;
      // Another leader's entry took this index: ours was never committed.
      this.#release(p.token);
      queueMicrotask(() => p.done.run(new Status(RaftError.EPERM, "leader stepped down")));
      return undefined;
    });
  }

  #applyCommitted(
    entries: readonly LogEntry[],
    closures: readonly (Closure | undefined)[],
    core: RaftCore,
  ): void {
    const last = entries[entries.length - 1]!.index;
    if (
      !this.#leaderStarted && this.#leaderStartIndex > 0 && last >= this.#leaderStartIndex &&
      core.isLeader() && core.term() === this.#leaderStartTerm
    ) {
      // braft runs on_leader_start right when the term's first entry is applied, before the
      // entries after it in the same batch
      const split = entries.findIndex((e) => e.index > this.#leaderStartIndex);
      const cut = split < 0 ? entries.length : split;
      this.#caller.committed(entries.slice(0, cut), closures.slice(0, cut));
      this.#leaderStarted = true;
      this.#leaseEpoch++;
      this.#caller.leaderStart(this.#leaderStartTerm);
      void this.#caller.idle().then(() => this.#wakeLeaderWaiters());
      if (cut < entries.length) this.#caller.committed(entries.slice(cut), closures.slice(cut));
      return;
    }
    this.#caller.committed(entries, closures);
  }

  #onSoftState(soft: SoftState, rd: Ready): void {
    const prev = this.#soft;
    this.#soft = soft;
    const wasLeader = prev.role === "leader";
    const isLeader = soft.role === "leader";
    if (wasLeader && (!isLeader || soft.term !== prev.term)) {
      const status = new Status(RaftError.EPERM, "leader stepped down");
      // Committed entries not yet handed out for applying (held back by the applying limit)
      // keep their closures: #takeClosures settles them when they are handed out.
      this.#failPending(status, this.#core!.commitIndex());
      this.#failWaiters(RaftException.of(RaftError.EPERM, "leader stepped down"));
      // braft step_down: on_leader_stop for every leader that steps down, even one whose
      // on_leader_start has not run yet (its first entry never committed); a transferring
      // leader already had it when the transfer started
      if (!prev.transferring || !this.#leaderStarted) {
        this.#caller.leaderStop(soft.reason ?? new Status(RaftError.EPERM, "leader stepped down"));
      }
      this.#leaderStarted = false;
      this.#leaderStartIndex = 0;
    }
    if (isLeader && (!wasLeader || soft.term !== prev.term)) {
      const first = rd.entries.find((e) => e.term === soft.term);
      this.#leaderStartIndex = first?.index ?? this.#core!.lastIndex();
      this.#leaderStartTerm = soft.term;
      this.#leaderStarted = false;
    }
    if (
      isLeader && wasLeader && soft.term === prev.term && soft.transferring !== prev.transferring
    ) {
      if (soft.transferring && this.#leaderStarted) {
        this.#caller.leaderStop(
          new Status(RaftError.ETRANSFERLEADERSHIP, "Leadership is being transferred"),
        );
      } else if (!soft.transferring && this.#leaderStarted) {
        this.#caller.leaderStart(soft.term);
      }
    }
    // Following callbacks: a follower that gains or loses a leader.
    const prevFollowing = prev.role === "follower" && prev.leader !== "";
    const nowFollowing = soft.role === "follower" && soft.leader !== "";
    if (
      prevFollowing && (!nowFollowing || prev.leader !== soft.leader || prev.term !== soft.term)
    ) {
      this.#caller.stopFollowing({
        leaderId: PeerId.parse(prev.leader),
        term: prev.term,
        status: soft.reason ?? new Status(RaftError.ERAFTTIMEDOUT, "Follower lost its leader"),
      });
    }
    if (
      nowFollowing && (!prevFollowing || prev.leader !== soft.leader || prev.term !== soft.term)
    ) {
      this.#caller.startFollowing({
        leaderId: PeerId.parse(soft.leader),
        term: soft.term,
        status: newLeaderStatus(prev, soft),
      });
    }
    if (
      this.#state !== NodeState.ERROR && this.#state !== NodeState.SHUTTING &&
      this.#state !== NodeState.SHUTDOWN
    ) {
      this.#state = isLeader
        ? (soft.transferring ? NodeState.TRANSFERRING : NodeState.LEADER)
        : soft.role === "follower"
        ? NodeState.FOLLOWER
        : NodeState.CANDIDATE;
    }
  }

  #onApplied(index: number): void {
    this.#core?.appliedTo(index);
    this.#releaseApplied(index);
    if (this.#active()) this.#drive(); // the core may hand out committed entries it held back
    while (this.#appliedWaiters.length > 0 && this.#appliedWaiters[0]!.index <= index) {
      this.#appliedWaiters.shift()!.resolve();
    }
    const at = this.#quiesceAtApplied;
    if (at > 0 && index >= at) {
      const core = this.#core;
      if (
        core !== null && core.role() === "follower" && core.commitIndex() === at &&
        core.lastIndex() === at
      ) {
        this.#quiesce();
      } else {
        this.#quiesceAtApplied = 0;
      }
    }
  }

  // ------------------------------------------------------------------ admission control

  /** Why a task of `bytes` cannot be accepted now, or `null` when it can. */
  #overloaded(bytes: number): string | null {
    if (!this.#core!.isLeader()) return null; // propose answers EPERM
    const n = this.#pendingApplies;
    if (n === 0) return null; // one task always fits, however big
    if (
      n < this.#maxPendingApplies && this.#pendingApplyBytes + bytes <= this.#maxPendingApplyBytes
    ) {
      return null;
    }
    return `Node is overloaded: ${n} tasks (${this.#pendingApplyBytes} bytes) wait to be applied, ` +
      `limits raft_max_pending_applies=${this.#maxPendingApplies} ` +
      `raft_max_pending_apply_bytes=${this.#maxPendingApplyBytes}`;
  }

  #admit(index: number, bytes: number): Admitted {
    const token: Admitted = { index, bytes, live: true };
    this.#admitted.push(token);
    this.#pendingApplies++;
    this.#pendingApplyBytes += bytes;
    return token;
  }

  #release(token: Admitted): void {
    if (!token.live) return;
    token.live = false;
    this.#pendingApplies--;
    this.#pendingApplyBytes -= token.bytes;
  }

  /** Releases the tokens of applied entries (and drops released ones) from the front. */
  #releaseApplied(index: number): void {
    const q = this.#admitted;
    let h = this.#admittedHead;
    while (h < q.length && (!q[h]!.live || q[h]!.index <= index)) this.#release(q[h++]!);
    if (h === q.length) {
      this.#admitted = [];
      h = 0;
    } else if (h > 1024 && h * 2 > q.length) {
      this.#admitted = q.slice(h);
      h = 0;
    }
    this.#admittedHead = h;
  }

  #wakeLeaderWaiters(): void {
    if (!this.isLeader() || !this.#leaderStarted) return;
    const waiters = this.#leaderWaiters;
    this.#leaderWaiters = [];
    for (const w of waiters) w.resolve();
  }

  #failPending(status: Status, above = 0): void {
    const pending: Pending[] = [];
    for (const [index, p] of this.#pending ?? []) {
      if (index <= above) continue;
      pending.push(p);
      this.#pending!.delete(index);
      this.#release(p.token);
    }
    for (const p of pending) queueMicrotask(() => p.done.run(status));
  }

  #failWaiters(e: RaftException): void {
    for (const w of this.#confWaiters.splice(0)) w.reject(e);
    const reads = [...this.#readWaiters?.values() ?? []];
    this.#readWaiters?.clear();
    for (const r of reads) r.reject(e);
  }

  /** On ERROR or shutdown: also what would otherwise wait for ever (nothing applies any more). */
  #failAllWaiters(e: RaftException): void {
    this.#failWaiters(e);
    for (const w of this.#appliedWaiters.splice(0)) w.reject(e);
    for (const w of this.#leaderWaiters.splice(0)) w.reject(e);
    const forwarded = [...this.#forwardedReads ?? []];
    this.#forwardedReads?.clear();
    for (const fail of forwarded) fail(e);
  }

  // ------------------------------------------------------------------ errors and timers

  #asStorageError(what: string, e: unknown): RaftException {
    return e instanceof RaftException ? e : RaftException.of(
      RaftError.EIO,
      `Cannot ${what}: ${e instanceof Error ? e.message : String(e)}`,
    );
  }

  #errorStatus(e: RaftException): Status {
    return new Status(RaftError.EPERM, `Node is in error: ${e.message}`);
  }

  /**
   * A storage error: the node goes to ERROR at once (it stops accepting writes and leading,
   * pending work fails), and `onError` runs before any further state machine work.
   */
  #storageFailed(what: string, e: unknown): void {
    if (this.#stopping()) return;
    const error = this.#asStorageError(what, e);
    this.#enterError(error);
    this.#caller.reportError(error);
  }

  #enterError(e: RaftException): void {
    if (this.#error !== null) return;
    this.#error = e;
    if (!this.#stopping()) {
      this.#state = NodeState.ERROR;
      this.#stepDownInError();
    }
    this.#clearTimers();
    this.#failPending(this.#errorStatus(e));
    this.#failAllWaiters(new RaftException(this.#errorStatus(e)));
  }

  /**
   * braft `NodeImpl::on_error`: a leader or follower steps down with EBADNODE, so the state
   * machine gets `onLeaderStop` or `onStopFollowing` (queued after `onError`). Nothing is
   * processed any more, so the soft state is set here: a later shutdown reports nothing.
   */
  #stepDownInError(): void {
    const soft = this.#soft;
    const status = new Status(RaftError.EBADNODE, "Raft node(leader or candidate) is in error.");
    if (soft.role === "leader") {
      // a transferring leader already had onLeaderStop when the transfer started
      if (!soft.transferring || !this.#leaderStarted) this.#caller.leaderStop(status);
      this.#leaderStarted = false;
      this.#wakeCandidateInError(soft.term);
    } else if (soft.role === "follower" && soft.leader !== "") {
      this.#caller.stopFollowing({
        leaderId: PeerId.parse(soft.leader),
        term: soft.term,
        status,
      });
    }
    this.#soft = { ...soft, role: "follower", leader: "", transferring: false };
  }

  /**
   * braft `on_error` steps a leader down with `wakeup_a_candidate`: the most caught-up voter
   * gets a TimeoutNow saying the leader stepped down for good (this node takes no further part
   * until it restarts), so the group elects a successor at once instead of after an election
   * timeout, and the voters need not wait out their follower lease. Sent outside the Ready loop,
   * which no longer runs in ERROR.
   */
  #wakeCandidateInError(term: number): void {
    const core = this.#core;
    if (core === null) return;
    const conf = core.configuration();
    const isVoter = (id: string): boolean => {
      try {
        const peer = PeerId.parse(id);
        return conf.peers.contains(peer) || (conf.oldPeers?.contains(peer) ?? false);
      } catch {
        return false;
      }
    };
    let best: { id: string; match: number } | null = null;
    for (const f of core.followers()) {
      if (f.id === core.id || !isVoter(f.id)) continue;
      if (best === null || f.match > best.match) best = { id: f.id, match: f.match };
    }
    if (best === null) return;
    this.#send([{ type: "TimeoutNow", from: core.id, to: best.id, term, leaderSteppedDown: true }]);
  }

  #stopping(): boolean {
    return this.#state === NodeState.SHUTTING || this.#state === NodeState.SHUTDOWN;
  }

  #startTicking(): void {
    if (this.#tickSource !== null) return;
    this.#tickSource = TickSource.for(this.#clock, this.#tickMs);
    this.#tickSource.subscribe(this.#onTick);
  }

  #stopTicking(): void {
    this.#tickSource?.unsubscribe(this.#onTick);
    this.#tickSource = null;
  }

  #tick(): void {
    if (!this.#active()) {
      this.#stopTicking();
      return;
    }
    this.#tickNo++;
    this.#tickAt[this.#tickNo % TICK_HISTORY] = this.#clock.now();
    this.#core!.tick();
    if (this.#quiesceOn) this.#noteIdleTick();
    this.#drive();
  }

  #clearTimers(): void {
    this.#stopTicking();
    this.#leaveLiveness();
    this.#quiesced = false;
  }

  // ------------------------------------------------------------------ quiescence

  /**
   * Whether this leader's group is idle enough to quiesce: leading (not transferring) with its
   * first entry applied, membership settled, nothing pending, everything committed and
   * applied, and every follower caught up and heard from within two heartbeat intervals.
   */
  #canQuiesce(): boolean {
    const core = this.#core;
    if (core === null || this.#state !== NodeState.LEADER || !this.#leaderStarted) return false;
    if (this.#soft.transferring || core.transferee() !== "") return false;
    const last = core.lastIndex();
    if (core.commitIndex() !== last || this.appliedIndex() !== last) return false;
    if (
      (this.#pending?.size ?? 0) > 0 || this.#pendingApplies > 0 ||
      (this.#readWaiters?.size ?? 0) > 0 ||
      this.#confWaiters.length > 0
    ) {
      return false;
    }
    const conf = core.configuration();
    if (conf.oldPeers !== undefined && !conf.oldPeers.isEmpty()) return false;
    const maxSilent = 2 * this.#heartbeatTick;
    for (const f of core.followers()) {
      if (f.match !== last || f.state === "snapshot" || f.silentTicks > maxSilent) return false;
    }
    return true;
  }

  /** Leader, after each tick: an election timeout of idle ticks arms the quiesce heartbeat. */
  #noteIdleTick(): void {
    if (!this.#canQuiesce()) {
      this.#idleTicks = 0;
      this.#quiesceArmed = false;
      return;
    }
    if (++this.#idleTicks < TICKS_PER_ELECTION) return;
    this.#quiesceArmed = true;
    // a group of one sends no heartbeats to carry the flag
    if (this.#core!.followers().length === 0) this.#quiesce();
  }

  /**
   * A follower got a quiesce heartbeat: it quiesces if the sender is the leader it follows in
   * its term and nothing is left to commit (or, once applied, to apply); else it ticks on.
   */
  #followQuiesce(core: RaftCore, m: Message): void {
    if (m.type !== "AppendEntries") return;
    const last = core.lastIndex();
    // a vote() campaign starts within 2 election timeouts of ticks (T + the election delay)
    const votePending = this.#tickNo - this.#voteTick <= 3 * TICKS_PER_ELECTION;
    const ok = this.#quiesceOn && this.#active() && core.role() === "follower" &&
      core.leader() === m.from && core.term() === m.term && m.commit === last &&
      core.commitIndex() === last && !votePending;
    if (!ok) {
      this.#wake();
      return;
    }
    if (this.appliedIndex() >= last) this.#quiesce();
    else this.#quiesceAtApplied = last;
  }

  /**
   * A message that must not wake the group: a leader's own heartbeat round answered by a
   * caught-up follower (the answers to the quiesce heartbeat arrive after the leader quiesced).
   */
  #quiet(core: RaftCore, m: Message): boolean {
    return m.type === "AppendEntriesResp" && m.heartbeat && m.success && core.isLeader() &&
      m.term === core.term() && m.lastLogIndex >= core.lastIndex();
  }

  /** Stops ticking: the group is idle. */
  #quiesce(): void {
    this.#idleTicks = 0;
    this.#quiesceArmed = false;
    this.#quiesceAtApplied = 0;
    if (this.#quiesced || !this.#active()) return;
    this.#quiesced = true;
    this.#stopTicking();
    this.#joinLiveness();
  }

  /**
   * Ticks again (synchronously) if quiesced, and restarts the idle count. A follower first
   * catches up on the ticks it missed while quiesced, as far as its leader's endpoint has been
   * silent (see `#catchUpTicks`).
   *
   * @param missedTicks Ticks to catch up (default: what the leader's silence allows).
   */
  #wake(missedTicks?: number): void {
    this.#idleTicks = 0;
    this.#quiesceArmed = false;
    this.#quiesceAtApplied = 0;
    if (!this.#quiesced) return;
    const missed = missedTicks ?? this.#ticksLeaderSilent();
    this.#quiesced = false;
    this.#leaveLiveness();
    if (!this.#active()) return;
    this.#startTicking();
    this.#catchUpTicks(missed);
  }

  /**
   * A quiesced follower's ticks missed while its leader's endpoint sent nothing at all (not
   * even a PING), at most T - 1, less one for the tick in progress; 0 for a leader.
   */
  #ticksLeaderSilent(): number {
    const core = this.#core;
    const liveness = this.#manager?.liveness;
    if (core === null || liveness == null || core.isLeader()) return 0;
    const endpoint = endpointOfPeerKey(core.leader());
    if (endpoint === null || endpoint === this.#peer.endpoint) return 0;
    const ticks = Math.floor(liveness.silentMs(endpoint) / this.#tickMs) - 1;
    return Math.max(0, Math.min(TICKS_PER_ELECTION - 1, ticks));
  }

  /**
   * Counts ticks a node would have counted had it not been quiesced, at once. At most T - 1,
   * so that each node's randomised election timeout (at least T) still spreads the candidates.
   * Safe for the follower lease, the only promise that ticks keep: every heartbeat this node
   * accepted came in a frame from its leader's endpoint, and the ticks counted here are no more
   * than the real time since the last frame from there, so the lease has already run that long.
   */
  #catchUpTicks(n: number): void {
    if (n <= 0 || this.#core === null) return;
    for (let i = 0; i < n; i++) {
      this.#tickNo++;
      this.#tickAt[this.#tickNo % TICK_HISTORY] = this.#clock.now();
      this.#core.tick();
    }
    this.#drive();
  }

  /**
   * Woken by the liveness tracker: what this node depends on (a follower: its leader's
   * endpoint; a leader: a quorum's) has sent nothing for longer than an election timeout, so it
   * catches up T - 1 ticks (see `#catchUpTicks`; the silence is more than T of real time).
   */
  #wakeAfterSilence(): void {
    this.#wake(TICKS_PER_ELECTION - 1);
  }

  /**
   * Registers with the endpoint liveness tracker: a follower depends on its leader's endpoint,
   * a leader on its voters' (a quorum of them, counting itself, must stay heard from) and
   * pings every follower's endpoint so that they hear from it.
   */
  #joinLiveness(): void {
    const core = this.#core;
    const manager = this.#manager;
    if (core === null || manager === null) return;
    const own = this.#peer.endpoint;
    const ping = new Set<string>();
    const watch: string[] = [];
    let needed = 0;
    if (core.isLeader()) {
      const conf = core.configuration();
      const self = this.#peer.key();
      let local = conf.peers.contains(this.#peer) ? 1 : 0;
      for (const p of conf.peers) {
        if (p.key() === self) continue;
        if (p.endpoint === own) local++;
        else watch.push(p.endpoint);
      }
      for (const f of core.followers()) {
        const e = endpointOfPeerKey(f.id);
        if (e !== null && e !== own) ping.add(e);
      }
      needed = Math.max(0, Math.floor(conf.peers.size / 2) + 1 - local);
    } else {
      const e = endpointOfPeerKey(core.leader());
      if (e !== null && e !== own) {
        ping.add(e);
        watch.push(e);
        needed = 1;
      }
    }
    const heartbeatMs = this.#heartbeatTick * this.#tickMs;
    this.#livenessEntry = {
      ping: [...ping],
      watch,
      needed,
      timeoutMs: this.#electionTimeoutMs,
      heartbeatMs,
      wake: () => this.#wakeAfterSilence(),
    };
    manager.quiesced(this.#livenessEntry, this.#clock);
  }

  #leaveLiveness(): void {
    if (this.#livenessEntry === null) return;
    this.#manager?.unquiesced(this.#livenessEntry);
    this.#livenessEntry = null;
  }

  /** Whether this node is quiesced (its group idle, no ticks; `NodeOptions.quiesce`). */
  get quiesced(): boolean {
    return this.#quiesced;
  }

  #active(): boolean {
    return this.#state === NodeState.LEADER || this.#state === NodeState.TRANSFERRING ||
      this.#state === NodeState.CANDIDATE || this.#state === NodeState.FOLLOWER;
  }

  /** Why nothing will apply or lead any more (ERROR, shutting down or shut down), or `null`. */
  #goneStatus(): Status | null {
    return this.#state === NodeState.UNINITIALIZED ? null : this.#inactiveStatus();
  }

  #inactiveStatus(): Status | null {
    switch (this.#state) {
      case NodeState.UNINITIALIZED:
        return new Status(RaftError.EPERM, "Node is not initialised");
      // braft answers EPERM on a stopped or failed node ("Node is down", "is not leader")
      case NodeState.SHUTTING:
      case NodeState.SHUTDOWN:
        return new Status(RaftError.EPERM, "Node is down");
      case NodeState.ERROR:
        return new Status(RaftError.EPERM, `Node is in error: ${this.#error?.message ?? ""}`);
      default:
        return null;
    }
  }

  #describeId(): string {
    return `${this.groupId}:${this.#peer}`;
  }
}

function validateOptions(o: NodeOptions): void {
  const bad = (why: string): never => {
    throw RaftException.of(RaftError.EINVAL, `Cannot init node: ${why}`);
  };
  if (o === null || typeof o !== "object") bad("options must be an object");
  if (o.fsm === null || typeof o.fsm !== "object" || typeof o.fsm.onApply !== "function") {
    bad("options.fsm must be a StateMachine");
  }
  if (o.logStorage === undefined && (typeof o.logUri !== "string" || o.logUri === "")) {
    bad("options.logUri is required (or options.logStorage)");
  }
  const lc = o.logCacheBytes;
  if (lc !== undefined && !(Number.isSafeInteger(lc) && lc > 0)) {
    bad(`logCacheBytes ${lc} must be a positive integer`);
  }
  const ct = o.catchupTimeoutMs;
  if (ct !== undefined && !(Number.isFinite(ct) && ct > 0)) {
    bad(`catchupTimeoutMs ${ct} must be > 0`);
  }
  if (typeof o.raftMetaUri !== "string" || o.raftMetaUri === "") {
    bad("options.raftMetaUri is required");
  }
  if (o.witness !== undefined && typeof o.witness !== "boolean") {
    bad(`witness ${String(o.witness)} must be a boolean`);
  }
  if (o.disableCli !== undefined && typeof o.disableCli !== "boolean") {
    bad(`disableCli ${String(o.disableCli)} must be a boolean`);
  }
  const pri = o.electionPriority;
  if (pri !== undefined && !(Number.isSafeInteger(pri) && pri >= 0)) {
    bad(`electionPriority ${pri} must be a non-negative integer`);
  }
  const t = o.electionTimeoutMs;
  if (t !== undefined && !(Number.isFinite(t) && t > 0)) bad(`electionTimeoutMs ${t} must be > 0`);
  if (o.initialConf !== undefined) {
    try {
      Configuration.from(o.initialConf);
    } catch (e) {
      bad((e as Error).message);
    }
  }
}

/** braft deletes an owned fsm with the node; here the node disposes of it, if it can be. */
async function disposeOwned(fsm: StateMachine): Promise<void> {
  const d = fsm as Partial<AsyncDisposable & Disposable>;
  try {
    if (typeof d[Symbol.asyncDispose] === "function") await d[Symbol.asyncDispose]!();
    else if (typeof d[Symbol.dispose] === "function") d[Symbol.dispose]!();
  } catch {
    // Shutting down: a failing dispose changes nothing (as a throwing destructor in braft).
  }
}

function keysString(conf: Configuration): string {
  return conf.peers.map((p) => p.key()).sort().join(",");
}

/**
 * The status braft's `check_step_down` hands `on_start_following`: ENEWLEADER, saying whether
 * the leader came with a higher term or was found by a candidate or a leaderless follower.
 */
function newLeaderStatus(prev: SoftState, soft: SoftState): Status {
  const message = soft.term > prev.term
    ? "Raft node receives message from new leader with higher term."
    : prev.role === "candidate" || prev.role === "leader"
    ? "Candidate receives message from new leader with the same term."
    : "Follower receives message from new leader with the same term.";
  return new Status(RaftError.ENEWLEADER, message);
}

/**
 * Endpoints by peer key, parsed once for the whole process (the core names peers by key on
 * every message; one cache for all groups, not one per node).
 */
const endpointsByPeerKey = new Map<string, string | null>();

function endpointOfPeerKey(peerKey: string): string | null {
  let endpoint = endpointsByPeerKey.get(peerKey);
  if (endpoint === undefined) {
    try {
      endpoint = PeerId.parse(peerKey).endpoint;
    } catch {
      endpoint = null;
    }
    if (endpointsByPeerKey.size >= 4096) endpointsByPeerKey.clear();
    endpointsByPeerKey.set(peerKey, endpoint);
  }
  return endpoint;
}

/**
 * The state machine as the snapshot executor sees it: after `onSnapshotLoad` (at start or
 * after InstallSnapshot) `onConfigurationCommitted` reports the snapshot's configuration
 * unless it is joint (braft `do_snapshot_load`). A witness has no data (braft), so its
 * snapshots are the meta alone.
 */
class SnapshotFsm implements SnapshotCallbacks {
  readonly #fsm: StateMachine;
  readonly #witness: boolean;

  constructor(fsm: StateMachine, witness: boolean) {
    this.#fsm = fsm;
    this.#witness = witness;
  }

  onSnapshotSave(writer: SnapshotWriter, done: Closure): void | Promise<void> {
    return this.#witness ? done.run(Status.OK()) : this.#fsm.onSnapshotSave(writer, done);
  }

  async onSnapshotLoad(reader: SnapshotReader): Promise<void> {
    if (!this.#witness) await this.#fsm.onSnapshotLoad(reader);
    const meta = fromStoredSnapshotMeta(reader.loadMeta());
    if (meta.conf.oldPeers === undefined || meta.conf.oldPeers.isEmpty()) {
      await this.#fsm.onConfigurationCommitted(meta.conf.peers.clone(), meta.index);
    }
  }
}
