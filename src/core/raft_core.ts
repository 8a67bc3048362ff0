/**
 * `RaftCore`: the Raft algorithm as a pure, deterministic state machine (braft behaviour,
 * etcd-raft shape). Inputs: `tick()`, `step(message)`, `propose()`, `proposeConfChange()`,
 * `transferLeader()`, `readIndex()`; output: a `Ready` batch. No clock, timer, Promise, disk
 * or socket; randomness comes from the `Prng` passed in.
 *
 * @module
 */

import { ChunkChain } from "../bytes/chunk_chain.ts";
import { Configuration } from "../conf/configuration.ts";
import { RaftError, Status } from "../errors/status.ts";
import { invariant } from "../util/_assert.ts";
import type { Prng } from "../util/prng.ts";
import { type ConfigurationPayload, EntryType, type LogEntry } from "./entry.ts";
import { Progress } from "./progress.ts";
import { jointIndex, jointVote } from "./quorum.ts";
import { RaftLog } from "./raft_log.ts";
import type { ConfigurationRecord, CoreStorage } from "./storage.ts";
import type {
  AppendEntriesMessage,
  AppendEntriesRespMessage,
  ConfChangeResult,
  HardState,
  InstallSnapshotMessage,
  Message,
  ReadState,
  Ready,
  Role,
  SnapshotMeta,
  SoftState,
} from "./types.ts";

/** Options of a {@linkcode RaftCore}; all times are in ticks. */
export interface RaftCoreOptions {
  /** This node's peer key (`PeerId.key()`). */
  id: string;
  /** Durable state, read-only to the core. */
  storage: CoreStorage;
  /** Seeded randomness (election timeouts, transfer target ties). */
  prng: Prng;
  /** Election timeout T in ticks (default 10). */
  electionTick?: number;
  /** Heartbeat interval in ticks (default 1; braft: T / raft_election_heartbeat_factor). */
  heartbeatTick?: number;
  /** `raft_max_election_delay_ms` in ticks: timeout is random in `[T, T + min(T, this)]` (default T). */
  maxElectionDelayTicks?: number;
  /** `raft_max_entries_size`: entries per AppendEntries (default 1024). */
  maxEntriesPerMsg?: number;
  /** `raft_max_body_size`: payload bytes per AppendEntries (default 512 KiB). */
  maxBodyBytes?: number;
  /** AppendEntries in flight per follower in replicate state (default 256). */
  maxInflightMsgs?: number;
  /** A new peer is caught up within this many entries of the leader (default 1000). */
  catchupMargin?: number;
  /**
   * braft `catchup_timeout_ms` in ticks (default T): a catch-up fails only once this long has
   * passed since it started and the peer has not answered for T.
   */
  catchupTimeoutTick?: number;
  /**
   * braft `raft_step_down_when_vote_timedout` (default true): a candidate whose election timed
   * out pre-votes again; `false` starts the next election at once.
   */
  stepDownWhenVoteTimedout?: boolean;
  /** Leader steps down when it has not heard from a quorum within T (default true). */
  checkQuorum?: boolean;
  /** Leader lease (`raft_enable_leader_lease`): lease reads and follower vote stickiness (default false). */
  leaseEnabled?: boolean;
  /** Election priority: 0 never starts an election on its own timer; leaders hand over to caught-up peers of higher priority (default 1). */
  priority?: number;
  /**
   * This node is a witness (braft `NodeOptions.witness`): it votes and counts in quorums but
   * never campaigns, unless `witnessToLeader` (default false).
   */
  witness?: boolean;
  /**
   * braft `raft_enable_witness_to_leader` (default false): a witness campaigns after twice the
   * election timeout, and once leader steps down at its next step-down check
   * (ETRANSFERLEADERSHIP), waking the most caught-up replica. Without it, a leader sends
   * witnesses DATA entries without their payload. Must be the same on every node.
   */
  witnessToLeader?: boolean;
  /** Membership when both log and snapshot are empty (braft `initial_conf`). */
  initialConf?: ConfigurationPayload;
  /** Index the state machine has already applied (≥ snapshot index; default the snapshot index). */
  applied?: number;
  /** Payload bytes of committed entries per Ready (default 8 MiB). */
  maxApplyBytes?: number;
  /**
   * Bounds the committed entries handed out for applying and not yet reported applied
   * (memory size: payload plus `ENTRY_OVERHEAD_BYTES` each; at least one entry is always
   * handed out, so it may be exceeded by one entry). Setting it opts into asynchronous
   * applying: `advance()` then only records that the entries were handed out, and the driver
   * must call {@linkcode RaftCore.appliedTo} as the state machine finishes them. Unset
   * (default): no bound, and `advance()` counts the Ready's committed entries as applied.
   */
  maxApplyingBytes?: number;
}

/** The result of `propose`. */
export interface ProposeResult {
  /** OK, or EPERM / EBUSY / EREADONLY. */
  readonly status: Status;
  /** Index given to the entry (0 on error). */
  readonly index: number;
  /** Term of the entry (0 on error). */
  readonly term: number;
}

/** A membership change request: the new voters and, optionally, learners. */
export interface ConfChangeRequest {
  /** The new voting peers. */
  readonly peers: Configuration;
  /** The new learners (non-voting members); default: unchanged. */
  readonly learners?: Configuration;
}

/** Progress of a follower as seen by the leader (for `describe`). */
export interface FollowerStatus {
  /** Peer key. */
  readonly id: string;
  /** Highest replicated index. */
  readonly match: number;
  /** Next index to send. */
  readonly next: number;
  /** Replication state. */
  readonly state: string;
  /** The leader waits for this follower's answer before it sends more. */
  readonly paused: boolean;
  /** Ticks since this follower last answered (or since this leader's lease started). */
  readonly silentTicks: number;
}

// Read-only: views share their arrays and sets with each other (and with every group that has
// no old voters, learners or witnesses), to keep an idle group small.
interface ConfView {
  readonly payload: ConfigurationPayload;
  // voters with the witness role (PeerId role 1)
  readonly witnesses: ReadonlySet<string>;
  readonly voters: readonly string[];
  readonly oldVoters: readonly string[];
  readonly learners: readonly string[];
  readonly all: readonly string[];
}

const NO_KEYS: readonly string[] = Object.freeze([]);
const NO_WITNESSES: ReadonlySet<string> = new Set();
const NO_VOTES: ReadonlyMap<string, boolean> = new Map();

interface ConfChangeCtx {
  stage: "catchup" | "joint" | "stable";
  target: ConfigurationPayload;
  adding: string[];
  startTick: number;
  index: number;
  requested: boolean;
}

interface PendingRead {
  seq: number;
  index: number;
  ctx: unknown;
}

type StepFn = (m: Message) => void;

const EMPTY_DATA: ChunkChain = new ChunkChain();
const NONE = "";

/**
 * braft replicator `_prepare_entry` for a witness: entries keep index, term, type and
 * membership (log matching needs no more) but DATA entries lose their payload.
 */
function stripData(entries: LogEntry[]): LogEntry[] {
  return entries.map((e) =>
    e.type === EntryType.DATA && e.data.length > 0 ? { ...e, data: EMPTY_DATA } : e
  );
}

function keysOf(c: Configuration | undefined): readonly string[] {
  if (c === undefined || c.isEmpty()) return NO_KEYS;
  const out = new Array<string>(c.size); // exact size: no spare capacity kept per group
  let i = 0;
  for (const p of c) out[i++] = p.key();
  return out;
}

function viewOf(payload: ConfigurationPayload): ConfView {
  const voters = keysOf(payload.peers);
  const oldVoters = keysOf(payload.oldPeers);
  const newLearners = keysOf(payload.learners);
  const oldLearners = keysOf(payload.oldLearners);
  const learners = oldLearners.length === 0 ? newLearners : [...newLearners, ...oldLearners];
  const all = oldVoters.length === 0 && learners.length === 0
    ? voters
    : [...new Set([...voters, ...oldVoters, ...learners])];
  let witnesses: Set<string> | null = null;
  for (const c of [payload.peers, payload.oldPeers]) {
    for (const p of c ?? []) if (p.isWitness) (witnesses ??= new Set()).add(p.key());
  }
  return { payload, voters, oldVoters, learners, all, witnesses: witnesses ?? NO_WITNESSES };
}

/**
 * The Raft consensus core.
 *
 * ## Driving it
 * Call `tick()` at a fixed interval, `step(m)` for every message received, `propose()` and
 * friends for client requests. Whenever `hasReady()`, take `const rd = core.ready()` and:
 * 1. send `rd.messages` at once (leader AppendEntries, heartbeats, pre-votes: they do not
 *    depend on anything unpersisted, so the leader's disk write and replication overlap);
 * 2. durably persist `rd.snapshot` (fetch the data from the leader and install it), then
 *    `rd.entries` (truncating the stored log from `rd.entries[0].index`), then `rd.hardState`;
 *    the storage seen by the core must reflect these writes before step 5; when a newer
 *    InstallSnapshot superseded `rd.snapshot` meanwhile (`core.superseded(rd)`), the snapshot
 *    and the entries may be skipped;
 * 3. only after that, send `rd.messagesAfterPersist` (vote grants, append acks — Raft's
 *    "no acknowledgement before the state it depends on is durable"); read the array only
 *    now, not before persisting: a `step` in the meantime that cuts the log withdraws, in
 *    place, the acks that claim the entries it removed;
 * 4. apply `rd.committedEntries` in order, answer `rd.readStates` and `rd.confChangeResults`;
 *    with `maxApplyingBytes` set, applying may go on after `advance` (asynchronously): call
 *    `core.appliedTo(index)` as the state machine finishes entries; the core hands out no
 *    more than `maxApplyingBytes` of entries not yet reported applied;
 * 5. call `core.advance(rd)`: it records the persistence (the leader's own ack and a
 *    candidate's own vote count only from here).
 * At most one Ready is outstanding: do not call `ready()` again before `advance()`; the core
 * keeps accepting `step`/`tick`/`propose` meanwhile.
 *
 * @example
 * ```ts
 * import { RaftCore, MemoryCoreStorage } from "./mod.ts";
 * import { Configuration } from "../conf/configuration.ts";
 * import { ChunkChain } from "../bytes/chunk_chain.ts";
 * import { Prng } from "../util/prng.ts";
 * import assert from "node:assert/strict";
 *
 * const storage = new MemoryCoreStorage();
 * const core = new RaftCore({
 *   id: "a:1:0", storage, prng: new Prng(1),
 *   initialConf: { peers: Configuration.parse("a:1:0") },
 * });
 * const drive = () => {
 *   while (core.hasReady()) {
 *     const rd = core.ready();
 *     if (rd.entries.length > 0) storage.append(rd.entries);
 *     if (rd.hardState) storage.setHardState(rd.hardState);
 *     core.advance(rd);
 *   }
 * };
 * for (let i = 0; i < 30 && !core.isLeader(); i++) { core.tick(); drive(); }
 * assert.ok(core.isLeader());
 * const r = core.propose(ChunkChain.from("hello"));
 * assert.ok(r.status.ok());
 * drive();
 * assert.equal(core.commitIndex(), r.index);
 * ```
 */
export class RaftCore {
  readonly #id: string;
  readonly #prng: Prng;
  readonly #electionTick: number;
  readonly #heartbeatTick: number;
  readonly #maxDelay: number;
  readonly #maxEntries: number;
  readonly #maxBody: number;
  readonly #maxInflight: number;
  readonly #catchupMargin: number;
  readonly #catchupTimeout: number;
  readonly #stepDownWhenVoteTimedout: boolean;
  readonly #checkQuorum: boolean;
  readonly #leaseEnabled: boolean;
  readonly #priority: number;
  readonly #witness: boolean;
  readonly #witnessToLeader: boolean;
  readonly #maxApplyBytes: number;
  readonly #maxApplying: number;
  readonly #asyncApply: boolean;

  readonly #log: RaftLog;
  #term = 0;
  #vote = NONE;
  #leader = NONE;
  #role: Role = "follower";
  #step: StepFn;
  #tickFn: () => void;

  // configuration: records above the base (the snapshot's or the initial conf)
  #confBase: ConfigurationRecord;
  #confs: ConfigurationRecord[];
  #conf!: ConfView;

  // leader state
  readonly #prs = new Map<string, Progress>();
  #confChange: ConfChangeCtx | null = null;
  #pendingConfIndex = 0;
  #transferee = NONE;
  #transferStart = 0;
  // tick this node last became leader (a peer's silence counts from here at most)
  #leaderSinceTick = 0;
  // the lease counts only acks of messages sent from this tick on (braft on_leader_start)
  #leaseStart = 0;
  #committedInTerm = false;
  #readSeq = 0;
  #pendingReads: PendingRead[] = [];
  #readsBeforeCommit: unknown[] = [];
  #needBcast = false;
  #needHeartbeat = false;
  // the voter set changed: pending reads and the commit index are re-checked in ready()
  // (not at once: a configuration is appended from inside the commit path itself)
  #confRecheck = false;
  // made by the first priority learned (an idle group's nodes never learn one)
  #peerPriority: Map<string, number> | null = null;

  // candidate state
  // this campaign's ballots; null outside a campaign (most nodes never campaign)
  #votes: Map<string, boolean> | null = null;
  #selfVotePending = false;
  // the own vote is durable; it counts once the follower lease allows it (#maybeGrantSelf)
  #selfVoteDurable = false;
  #transferCampaign = false;
  // braft `_vote_triggered`: the next election timeout campaigns even under a live leader
  #voteTriggered = false;
  #triggerElapsed = 0;
  // this campaign was triggered by vote(): its requests carry `triggered`
  #triggeredCampaign = false;
  // this campaign knows that the leader of this term stepped down (braft disrupted_leader);
  // 0 = none. Sent in RequestVote: voters still in that term may skip their follower lease.
  #disruptedTerm = 0;

  // timers
  #ticks = 1; // starts at 1 so that "0" means "never" in progress bookkeeping
  #electionElapsed = 0;
  #heartbeatElapsed = 0;
  #randomizedTimeout = 0;

  #readonly = false;
  // Follower lease (leaseEnabled): the tick this node last accepted a message of a leader —
  // acks up to then may count towards that leader's lease — and who that leader was. Not
  // reset by campaigning (braft FollowerLease), only by becoming leader or a disruption.
  // A node restarted with a term > 1 on disk may have acknowledged a leader just before, so
  // its lease starts at the start (braft FollowerLease::init).
  #leaderContactTick = -Infinity;
  #lastLeader = NONE;
  #lastLeaderTerm = 0;

  // outputs
  #msgs: Message[] = [];
  #msgsAfter: Message[] = [];
  // `messagesAfterPersist` of the Ready handed out and not yet advanced (the driver sends it
  // only after persisting, so acks can still be withdrawn from it)
  #outAfter: Message[] | null = null;
  // success acks queued in #msgsAfter / #outAfter → the term of the entry at their index
  // when queued (what they claim the log holds)
  readonly #ackClaims = new WeakMap<Message, number>();
  #readStates: ReadState[] = [];
  #confResults: ConfChangeResult[] = [];
  #prevHard: HardState;
  #prevSoft: SoftState;
  // why the last step-down or loss of leader happened (SoftState.reason)
  #reason: Status = Status.OK();
  #readyOut: { selfVoteTerm: number } | null = null;

  /**
   * Creates a core from durable state (a restart is just a new core over the same storage).
   *
   * @param options See {@linkcode RaftCoreOptions}.
   */
  constructor(options: RaftCoreOptions) {
    this.#id = options.id;
    this.#prng = options.prng;
    this.#electionTick = options.electionTick ?? 10;
    this.#heartbeatTick = options.heartbeatTick ?? 1;
    this.#maxDelay = Math.min(
      this.#electionTick,
      options.maxElectionDelayTicks ?? this.#electionTick,
    );
    this.#maxEntries = options.maxEntriesPerMsg ?? 1024;
    this.#maxBody = options.maxBodyBytes ?? 512 * 1024;
    this.#maxInflight = options.maxInflightMsgs ?? 256;
    this.#catchupMargin = options.catchupMargin ?? 1000;
    this.#catchupTimeout = options.catchupTimeoutTick ?? this.#electionTick;
    this.#stepDownWhenVoteTimedout = options.stepDownWhenVoteTimedout ?? true;
    this.#checkQuorum = options.checkQuorum ?? true;
    this.#leaseEnabled = options.leaseEnabled ?? false;
    this.#priority = options.priority ?? 1;
    this.#witness = options.witness ?? false;
    this.#witnessToLeader = options.witnessToLeader ?? false;
    this.#maxApplyBytes = options.maxApplyBytes ?? 8 * 1024 * 1024;
    this.#asyncApply = options.maxApplyingBytes !== undefined;
    this.#maxApplying = options.maxApplyingBytes ?? Infinity;
    invariant(this.#maxApplying > 0, "maxApplyingBytes must be > 0");
    invariant(
      this.#heartbeatTick > 0 && this.#heartbeatTick < this.#electionTick,
      "heartbeatTick < electionTick",
    );

    const storage = options.storage;
    const snap = storage.snapshotMeta();
    this.#log = new RaftLog(storage, options.applied ?? snap.index);
    const hs = storage.hardState();
    this.#prevHard = hs;
    // No leader exists in term 1 (the first election makes term 2), and an ack is released
    // only after the term it answers is durable: a node with term ≤ 1 on disk never
    // acknowledged a leader, so no lease counts on it (a fresh group elects without delay).
    if (this.#leaseEnabled && hs.term > 1) this.#leaderContactTick = this.#ticks;
    this.#term = Math.max(hs.term, 1); // braft: initial term is 1
    this.#vote = hs.vote;
    this.#confBase = snap.index > 0 || storage.lastIndex() > 0
      ? { index: snap.index, term: snap.term, conf: snap.conf }
      : { index: 0, term: 0, conf: options.initialConf ?? { peers: new Configuration() } };
    this.#confs = storage.configurations().filter((r) => r.index > snap.index);
    this.#refreshConf();
    this.#step = this.#stepFollower;
    this.#tickFn = this.#tickElection;
    this.#becomeFollower(this.#term, NONE);
    this.#prevSoft = this.#softState();
  }

  // ---------------------------------------------------------------- queries

  /** This node's peer key. */
  get id(): string {
    return this.#id;
  }

  /** The current term. */
  term(): number {
    return this.#term;
  }

  /** The current role. */
  role(): Role {
    return this.#role;
  }

  /** Whether this node is the leader. */
  isLeader(): boolean {
    return this.#role === "leader";
  }

  /** The known leader's key, or `""`. */
  leader(): string {
    return this.#leader;
  }

  /** The vote cast in the current term, or `""`. */
  votedFor(): string {
    return this.#vote;
  }

  /** The commit index. */
  commitIndex(): number {
    return this.#log.committed;
  }

  /**
   * The highest index the state machine applied: reported by `appliedTo` (with
   * `maxApplyingBytes`), else everything handed out in an advanced Ready.
   */
  appliedIndex(): number {
    return this.#log.applied;
  }

  /** The highest index handed out for applying (`Ready.committedEntries`); ≥ `appliedIndex()`. */
  applyingIndex(): number {
    return this.#log.applying;
  }

  /** Memory size of the entries handed out for applying and not yet applied (see `maxApplyingBytes`). */
  applyingBytes(): number {
    return this.#log.applyingBytes;
  }

  /**
   * The snapshot from the leader that the driver has not installed yet (the newest one: a
   * newer InstallSnapshot replaces an older pending one), or `undefined`.
   *
   * @returns Its meta.
   */
  pendingSnapshot(): SnapshotMeta | undefined {
    return this.#log.pendingSnapshot;
  }

  /**
   * Whether `rd` carries a snapshot that a newer InstallSnapshot replaced after `rd` was
   * handed out. Such a Ready need not be persisted beyond its `hardState`: the driver may
   * skip installing its snapshot and writing its `entries` (they continue the replaced
   * snapshot), then `advance(rd)` as usual; the newer snapshot comes in the next Ready.
   *
   * Invariant (superseding): the log the core describes is always one the driver can reach.
   * A newer InstallSnapshot replaces a pending one and withdraws every ack from the older
   * one's index on (nothing of it may be claimed before it is durable), and `advance` of a
   * Ready carrying the older snapshot marks nothing stable: not the newer snapshot, and not
   * entries at indexes the newer log may hold again.
   *
   * @param rd The Ready handed out by the last `ready()`.
   * @returns `true` when `rd.snapshot` is no longer the pending snapshot.
   */
  superseded(rd: Ready): boolean {
    return this.#superseded(rd);
  }

  #superseded(rd: Ready): boolean {
    const s = rd.snapshot;
    if (s === undefined) return false;
    const p = this.#log.pendingSnapshot;
    return p !== undefined && (p.index !== s.index || p.term !== s.term);
  }

  /** The first log index. */
  firstIndex(): number {
    return this.#log.firstIndex();
  }

  /** The last log index. */
  lastIndex(): number {
    return this.#log.lastIndex();
  }

  /** The last log term. */
  lastTerm(): number {
    return this.#log.lastTerm();
  }

  /**
   * The term of a log entry.
   *
   * @param i Log index.
   * @returns Its term, or `undefined` when compacted or beyond the end.
   */
  termAt(i: number): number | undefined {
    return this.#log.term(i);
  }

  /**
   * Entries `[lo, hi)` from the log (unstable part included).
   *
   * @param lo First index (≥ firstIndex).
   * @param hi One past the last index.
   * @returns The entries, or `null` if storage cannot answer now.
   */
  entries(lo: number, hi: number): LogEntry[] | null {
    return this.#log.entries(lo, hi - lo, Infinity);
  }

  /** The membership in effect (the latest configuration entry, committed or not). */
  configuration(): ConfigurationPayload {
    return this.#conf.payload;
  }

  /** Whether the configuration is joint (old and new voters). */
  isJoint(): boolean {
    return this.#conf.oldVoters.length > 0;
  }

  /** Whether a membership change is in progress (leader). */
  isChangingConf(): boolean {
    return this.#confChange !== null || this.#pendingConfIndex > this.#log.committed;
  }

  /** The transfer target while transferring leadership, else `""`. */
  transferee(): string {
    return this.#transferee;
  }

  /** Whether this node is in readonly mode itself. */
  readonlyMode(): boolean {
    return this.#readonly;
  }

  /** The followers' progress (leader only; empty otherwise). */
  followers(): FollowerStatus[] {
    const out: FollowerStatus[] = [];
    for (const [id, pr] of this.#prs) {
      if (id === this.#id) continue;
      out.push({
        id,
        match: pr.match,
        next: pr.next,
        state: pr.state,
        paused: pr.paused(),
        silentTicks: this.#ticks - Math.max(pr.lastRespTick, this.#leaseStart),
      });
    }
    return out;
  }

  /** The hard state as the core sees it now. */
  hardState(): HardState {
    return { term: this.#term, vote: this.#vote, commit: this.#log.committed };
  }

  /**
   * Leader lease (braft `is_leader_lease_valid`): a quorum acknowledged a message sent less
   * than T ticks ago, and no other leader can have been elected since. Only messages sent
   * since this node became leader or last abandoned a leadership transfer count.
   *
   * @returns Whether lease reads are safe now.
   */
  isLeaderLeaseValid(): boolean {
    if (!this.#leaseEnabled || this.#role !== "leader" || !this.#committedInTerm) return false;
    if (this.#transferee !== NONE) return false;
    const acked = jointIndex(
      this.#conf.voters,
      this.#conf.oldVoters,
      (id) => {
        if (id === this.#id) return this.#ticks;
        const sent = this.#prs.get(id)?.ackedSentTick ?? -Infinity;
        return sent >= this.#leaseStart ? sent : -Infinity;
      },
    );
    return this.#ticks < acked + this.#electionTick - 1;
  }

  /**
   * Whether the leader refuses writes because of readonly mode (itself, or a majority of a
   * voter set, as braft).
   *
   * @returns `true` when proposals would get EREADONLY.
   */
  isReadonlyLeader(): boolean {
    if (this.#readonly) return true;
    let any = false;
    for (const pr of this.#prs.values()) {
      if (pr.readonly) {
        any = true;
        break;
      }
    }
    if (!any) return false;
    const writable = (id: string): number =>
      id === this.#id ? (this.#readonly ? 0 : 1) : (this.#prs.get(id)?.readonly ? 0 : 1);
    return jointIndex(this.#conf.voters, this.#conf.oldVoters, writable) === 0 &&
      this.#conf.voters.length > 0;
  }

  /**
   * The meta for a snapshot of the state machine at `index` (term and membership at that
   * index). The driver saves the snapshot, then compacts storage with this meta.
   *
   * @param index An applied index still in the log (or the current snapshot's index).
   * @returns The meta.
   * @throws {RangeError} If `index` is not applied or already compacted.
   */
  snapshotMetaAt(index: number): SnapshotMeta {
    const term = this.#log.term(index);
    if (index > this.#log.applied || term === undefined) {
      throw new RangeError(
        `Cannot snapshot at index ${index}: applied ${this.#log.applied}, first ${this.#log.firstIndex()}`,
      );
    }
    return { index, term, conf: this.#confAt(index) };
  }

  // ---------------------------------------------------------------- inputs

  /** Advances logical time by one tick (elections, heartbeats, check-quorum, timeouts). */
  tick(): void {
    this.#ticks++;
    this.#tickFn();
  }

  /**
   * Feeds a received message.
   *
   * @param m The message (`m.to` should be this node).
   */
  step(m: Message): void {
    if (m.term > this.#term) {
      if (m.type === "PreVote" || m.type === "RequestVote") {
        // follower lease: ignore (braft rejected_by_lease) unless the request may skip it
        if (!this.#skipsFollowerLease(m) && this.#inFollowerLease()) return;
      }
      if (m.type === "PreVote") {
        // never change term for a pre-vote
      } else if (m.type === "PreVoteResp" && m.granted) {
        // granted pre-votes carry the future term
      } else {
        const leader = m.type === "AppendEntries" || m.type === "InstallSnapshot" ? m.from : NONE;
        this.#becomeFollower(m.term, leader, higherTermReason(m));
      }
    } else if (m.term < this.#term) {
      if (m.type === "AppendEntries" || m.type === "InstallSnapshot") {
        // tell a stale leader about the newer term so it steps down
        this.#sendAfter({
          type: "AppendEntriesResp",
          from: this.#id,
          to: m.from,
          term: this.#term,
          success: false,
          heartbeat: true,
          index: 0,
          hintIndex: 0,
          hintTerm: 0,
          lastLogIndex: this.#log.lastIndex(),
          readonly: this.#readonly,
          sentTick: 0,
          readSeq: 0,
          priority: this.#priority,
        });
      } else if (m.type === "PreVote") {
        this.#send({
          type: "PreVoteResp",
          from: this.#id,
          to: m.from,
          term: this.#term,
          granted: false,
        });
      }
      return;
    }

    if (m.type === "PreVote" || m.type === "RequestVote") {
      this.#handleVote(m);
      return;
    }
    this.#step(m);
  }

  /**
   * Proposes a user entry (leader only).
   *
   * @param data The payload.
   * @param expectedTerm Reject with EPERM unless the term is this one (-1 = don't check).
   * @returns The status and the entry's index and term.
   */
  propose(data: ChunkChain, expectedTerm: number = -1): ProposeResult {
    const st = this.#checkWritable(expectedTerm);
    if (st !== null) return { status: st, index: 0, term: 0 };
    if (this.isReadonlyLeader()) {
      return {
        status: new Status(RaftError.EREADONLY, "readonly mode reject new user logs"),
        index: 0,
        term: 0,
      };
    }
    const index = this.#appendEntry(EntryType.DATA, data, undefined);
    return { status: Status.OK(), index, term: this.#term };
  }

  /**
   * Proposes a membership change (braft `change_peers`): new voters first catch up as
   * non-voters, then a joint configuration if more than one voter changes, else a single
   * step. The end is reported in `Ready.confChangeResults`.
   *
   * @param req The new voters (and learners).
   * @returns OK if started (or nothing to change), else EPERM / EBUSY / EINVAL.
   */
  proposeConfChange(req: ConfChangeRequest): Status {
    const st = this.#checkWritable(-1);
    if (st !== null) return st;
    if (this.isChangingConf()) {
      return new Status(RaftError.EBUSY, "Doing another configuration change");
    }
    if (req.peers.isEmpty()) return new Status(RaftError.EINVAL, "Empty configuration");
    const cur = this.#conf.payload;
    const learners = (req.learners ?? cur.learners ?? new Configuration()).clone();
    for (const p of req.peers) learners.remove(p);
    const target: ConfigurationPayload = { peers: req.peers.clone(), learners };
    const peers = keysOf(req.peers);
    if (req.peers.equals(cur.peers) && learners.equals(cur.learners ?? new Configuration())) {
      this.#confResults.push({ peers, status: Status.OK() });
      return Status.OK();
    }
    const adding = peers.filter((k) => !this.#conf.voters.includes(k));
    this.#confChange = {
      stage: "catchup",
      target,
      adding,
      startTick: this.#ticks,
      index: 0,
      requested: true,
    };
    for (const id of adding) {
      if (!this.#prs.has(id)) {
        this.#prs.set(id, this.#newProgress());
        this.#sendAppend(id);
      }
    }
    this.#checkCatchup();
    return Status.OK();
  }

  /**
   * Starts a leadership transfer (braft `transfer_leadership_to`): writes are refused with
   * EBUSY until the target wins or T ticks pass.
   *
   * @param target Peer key, or `""` for ANY_PEER (the most caught-up voter).
   * @returns OK, EPERM (not leader), EBUSY, EINVAL (not a voter), EHOSTUNREACH (the target
   *   has not answered for T/2 ticks) or code -1 (ANY_PEER and no reachable voter), as braft.
   */
  transferLeader(target: string): Status {
    if (this.#role !== "leader") return new Status(RaftError.EPERM, "Not leader");
    if (this.#transferee !== NONE) return new Status(RaftError.EBUSY, "Is transferring leadership");
    if (this.isChangingConf()) {
      return new Status(RaftError.EBUSY, "Doing another configuration change");
    }
    if (target === NONE || target === "0.0.0.0:0:0") {
      // braft find_the_next_candidate: the most caught-up voter without RPC errors, or -1
      const cands = this.#prng.shuffle(
        this.#conf.voters.filter((id) => id !== this.#id && !this.#conf.witnesses.has(id)),
      );
      let best = NONE;
      let bestMatch = -1;
      for (const id of cands) {
        const m = this.#prs.get(id)?.match ?? 0;
        if (m > bestMatch && !this.#unreachable(id)) {
          best = id;
          bestMatch = m;
        }
      }
      if (best === NONE) return new Status(-1, "No peer to transfer leadership to");
      target = best;
    }
    if (target === this.#id) return Status.OK();
    if (!this.#conf.voters.includes(target) || !this.#prs.has(target)) {
      return new Status(RaftError.EINVAL, `Peer ${target} is not a voter`);
    }
    if (this.#unreachable(target)) {
      return new Status(
        RaftError.EHOSTUNREACH,
        `Cannot transfer leadership to ${target}: it has not answered for ${
          this.#electionTick / 2
        } ticks`,
      );
    }
    this.#transferee = target;
    this.#transferStart = this.#ticks;
    const pr = this.#prs.get(target)!;
    if (pr.match === this.#log.lastIndex()) this.#sendTimeoutNow(target);
    else this.#sendAppend(target);
    return Status.OK();
  }

  /**
   * Asks for a linearizable read barrier. The answer arrives in `Ready.readStates`: once the
   * state machine has applied `index`, reads reflect every write acknowledged before.
   * Served from the lease when valid (and `allowLease`), else confirmed by a heartbeat quorum.
   *
   * @param ctx Caller context, returned in the ReadState.
   * @param allowLease Whether the lease may answer (the driver passes `false` when its clock
   *   says ticks have lagged real time, so the tick-based lease cannot be trusted).
   * @returns OK if queued, EPERM if not leader.
   */
  readIndex(ctx: unknown, allowLease = true): Status {
    if (this.#role !== "leader") return new Status(RaftError.EPERM, "Not leader");
    if (!this.#committedInTerm) {
      this.#readsBeforeCommit.push(ctx);
      return Status.OK();
    }
    this.#serveRead(ctx, allowLease);
    return Status.OK();
  }

  /**
   * Enters or leaves readonly mode (braft `enter_readonly_mode`).
   *
   * @param on `true` to refuse new user entries.
   */
  setReadonly(on: boolean): void {
    this.#readonly = on;
  }

  /**
   * Forces the membership (braft `reset_peers`; unsafe, for majority loss): sets it locally
   * and steps down to term + 1.
   *
   * @param peers The new voters.
   * @returns OK, EINVAL (empty) or EBUSY (leader in a conf change).
   */
  resetPeers(peers: Configuration): Status {
    if (peers.isEmpty()) return new Status(RaftError.EINVAL, "new_peers is empty");
    if (this.#role === "leader" && this.isChangingConf()) {
      return new Status(RaftError.EBUSY, "Doing another configuration change");
    }
    const last = this.#log.lastIndex();
    this.#confs = this.#confs.filter((r) => r.index < last);
    this.#confs.push({ index: last, term: this.#log.lastTerm(), conf: { peers: peers.clone() } });
    this.#refreshConf();
    this.#becomeFollower(
      this.#term + 1,
      NONE,
      new Status(RaftError.ESETPEER, "Raft node set peer normally"),
    );
    return Status.OK();
  }

  /**
   * Leader only: steps down at once and wakes the most caught-up voter with a TimeoutNow that
   * says the leader stepped down (braft `step_down(…, wakeup_a_candidate)` on shutdown), so
   * it is elected without waiting for the voters' follower leases. Pending reads and
   * membership changes fail with EPERM.
   *
   * @returns OK, or EPERM if not leader.
   *
   * @example
   * ```ts
   * import { RaftCore, MemoryCoreStorage } from "./mod.ts";
   * import { Configuration } from "../conf/configuration.ts";
   * import { Prng } from "../util/prng.ts";
   * import { RaftError } from "../errors/status.ts";
   * import assert from "node:assert/strict";
   *
   * const core = new RaftCore({
   *   id: "a:1:0", storage: new MemoryCoreStorage(), prng: new Prng(1),
   *   initialConf: { peers: Configuration.parse("a:1:0,b:1:0") },
   * });
   * assert.equal(core.stepDownAndWakeCandidate().code, RaftError.EPERM);
   * ```
   */
  stepDownAndWakeCandidate(): Status {
    if (this.#role !== "leader") return new Status(RaftError.EPERM, "Not leader");
    this.#stepDownAndWake(new Status(RaftError.ESHUTDOWN, "Raft node is going to quit."));
    return Status.OK();
  }

  /**
   * braft `vote()`: a follower campaigns when its (randomised) election timeout next runs
   * out, counted from now, even while it hears from a leader. Its pre-vote skips every
   * follower lease (it changes nothing), and its vote request skips the lease of the leader
   * only (which steps down by granting it); the other voters follow once the leader voted
   * (the disrupted-leader handshake), so the lease invariant holds.
   *
   * @returns Whether the vote was triggered (only a follower can).
   *
   * @example
   * ```ts
   * import { RaftCore, MemoryCoreStorage } from "./mod.ts";
   * import { Configuration } from "../conf/configuration.ts";
   * import { Prng } from "../util/prng.ts";
   * import assert from "node:assert/strict";
   *
   * const core = new RaftCore({
   *   id: "a:1:0", storage: new MemoryCoreStorage(), prng: new Prng(1),
   *   initialConf: { peers: Configuration.parse("a:1:0,b:1:0") },
   * });
   * assert.equal(core.triggerVote(), true);
   * ```
   */
  triggerVote(): boolean {
    if (this.#role !== "follower") return false;
    this.#voteTriggered = true;
    this.#triggerElapsed = 0;
    this.#randomizedTimeout = this.#newElectionTimeout();
    return true;
  }

  /**
   * Starts an election now (tests, single-node start): pre-vote first.
   */
  campaign(): void {
    if (this.#role === "leader") return;
    this.#campaign("prevote");
  }

  /**
   * The transport could not reach `id` (braft: RPC error): fall back to probing it.
   *
   * @param id Peer key.
   */
  reportUnreachable(id: string): void {
    const pr = this.#prs.get(id);
    if (this.#role === "leader" && pr !== undefined && pr.state === "replicate") pr.becomeProbe();
  }

  /**
   * The driver's InstallSnapshot to `id` failed (or finished out of band).
   *
   * @param id Peer key.
   * @param ok Whether the follower installed it.
   */
  reportSnapshot(id: string, ok: boolean): void {
    const pr = this.#prs.get(id);
    if (this.#role !== "leader" || pr === undefined || pr.state !== "snapshot") return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
  }

  /**
   * The state machine finished applying the entries up to `index` (asynchronous applying,
   * see `maxApplyingBytes`): frees their share of the applying budget, so the next Ready can
   * hand out more, and lets a snapshot be taken at `index`. Indexes beyond what was handed
   * out are capped (a snapshot load may report its index before the core installed it);
   * lower ones change nothing. Without `maxApplyingBytes`, `advance()` does this itself.
   *
   * @param index Last applied index.
   *
   * @example
   * ```ts
   * import { RaftCore, MemoryCoreStorage } from "./mod.ts";
   * import { Configuration } from "../conf/configuration.ts";
   * import { ChunkChain } from "../bytes/chunk_chain.ts";
   * import { Prng } from "../util/prng.ts";
   * import assert from "node:assert/strict";
   *
   * const storage = new MemoryCoreStorage();
   * const core = new RaftCore({
   *   id: "a:1:0", storage, prng: new Prng(1),
   *   initialConf: { peers: Configuration.parse("a:1:0") },
   *   maxApplyingBytes: 1, // one entry at a time
   * });
   * const handed: number[] = [];
   * const drive = () => {
   *   while (core.hasReady()) {
   *     const rd = core.ready();
   *     if (rd.entries.length > 0) storage.append(rd.entries);
   *     if (rd.hardState) storage.setHardState(rd.hardState);
   *     for (const e of rd.committedEntries) handed.push(e.index);
   *     core.advance(rd);
   *   }
   * };
   * core.campaign();
   * drive();
   * core.propose(ChunkChain.from("x"));
   * drive();
   * assert.deepEqual(handed, [1]); // index 2 waits until the state machine applied 1
   * core.appliedTo(1);
   * drive();
   * assert.deepEqual(handed, [1, 2]);
   * assert.equal(core.appliedIndex(), 1);
   * ```
   */
  appliedTo(index: number): void {
    this.#log.appliedTo(index);
  }

  /** The storage can now answer `entries()` calls it refused: resume replication/applying. */
  notifyStorageReady(): void {
    this.#log.applyBlocked = false;
    if (this.#role === "leader") this.#needBcast = true;
  }

  // ---------------------------------------------------------------- ready / advance

  /** Whether `ready()` has anything to hand out. */
  hasReady(): boolean {
    if (this.#readyOut !== null) return false;
    if (this.#role === "leader" && (this.#needBcast || this.#needHeartbeat || this.#confRecheck)) {
      return true;
    }
    if (this.#msgs.length > 0 || this.#msgsAfter.length > 0) return true;
    if (this.#log.unstable.length > 0 || this.#log.pendingSnapshot !== undefined) return true;
    if (this.#log.hasNextCommitted(this.#maxApplying)) return true;
    if (this.#readStates.length > 0 || this.#confResults.length > 0 || this.#selfVotePending) {
      return true;
    }
    if (!hardEqual(this.hardState(), this.#prevHard)) return true;
    return !softEqual(this.#softState(), this.#prevSoft);
  }

  /**
   * Takes the next batch of work. See the class docs for the contract.
   *
   * @returns The Ready.
   */
  ready(): Ready {
    invariant(this.#readyOut === null, "ready() called again before advance()");
    if (this.#role === "leader" && this.#confRecheck) {
      // a smaller voter set may already confirm pending reads and commit more
      this.#confRecheck = false;
      this.#releaseReads();
      if (this.#maybeCommit()) this.#needBcast = true;
    }
    if (this.#role === "leader") {
      if (this.#needBcast) this.#bcastAppend();
      if (this.#needHeartbeat) this.#bcastHeartbeat();
    }
    this.#needBcast = false;
    this.#needHeartbeat = false;
    const soft = this.#softState();
    const hard = this.hardState();
    const rd: {
      -readonly [K in keyof Ready]: Ready[K];
    } = {
      entries: this.#log.unstable.slice(),
      messages: this.#msgs,
      messagesAfterPersist: this.#msgsAfter,
      committedEntries: this.#log.nextCommitted(this.#maxApplyBytes, this.#maxApplying),
      readStates: this.#readStates,
      confChangeResults: this.#confResults,
    };
    if (!softEqual(soft, this.#prevSoft)) {
      rd.softState = soft;
      this.#prevSoft = soft;
    }
    if (!hardEqual(hard, this.#prevHard)) {
      rd.hardState = hard;
      this.#prevHard = hard;
    }
    if (this.#log.pendingSnapshot !== undefined) rd.snapshot = this.#log.pendingSnapshot;
    this.#checkAckClaims(this.#msgsAfter);
    this.#outAfter = this.#msgsAfter;
    this.#msgs = [];
    this.#msgsAfter = [];
    this.#readStates = [];
    this.#confResults = [];
    this.#readyOut = { selfVoteTerm: this.#selfVotePending ? this.#term : 0 };
    this.#selfVotePending = false;
    return rd;
  }

  /**
   * Acknowledges a Ready: its snapshot, entries and hard state are durable (and visible
   * through storage) and its committed entries were taken for applying.
   *
   * @param rd The Ready returned by the last `ready()`.
   */
  advance(rd: Ready): void {
    invariant(this.#readyOut !== null, "advance() without ready()");
    const out = this.#readyOut;
    this.#readyOut = null;
    this.#outAfter = null;
    if (!this.#superseded(rd)) {
      // (a superseded Ready's snapshot and entries are not durable: see `superseded`)
      if (rd.snapshot !== undefined) this.#log.stableSnapTo(rd.snapshot.index);
      const last = rd.entries[rd.entries.length - 1];
      if (last !== undefined) this.#log.stableTo(last.index, last.term);
    }
    const applied = rd.committedEntries[rd.committedEntries.length - 1];
    if (applied !== undefined) {
      invariant(applied.index <= this.#log.committed, "applied beyond commit");
      if (!this.#asyncApply) this.#log.appliedTo(applied.index);
    }
    if (out.selfVoteTerm === this.#term && this.#role === "candidate") {
      this.#selfVoteDurable = true;
      this.#maybeGrantSelf();
    }
    if (this.#role === "leader") {
      const self = this.#prs.get(this.#id);
      if (self !== undefined && self.maybeUpdate(this.#log.stableLastIndex())) {
        if (this.#maybeCommit()) this.#needBcast = true;
      }
    }
  }

  // ---------------------------------------------------------------- roles

  #softState(): SoftState {
    return {
      role: this.#role,
      leader: this.#leader,
      term: this.#term,
      transferring: this.#transferee !== NONE,
      reason: this.#reason,
    };
  }

  #reset(term: number): void {
    if (term !== this.#term) {
      invariant(term > this.#term, () => `term going backwards ${this.#term} -> ${term}`);
      this.#term = term;
      this.#vote = NONE;
    }
    this.#leader = NONE;
    this.#electionElapsed = 0;
    this.#heartbeatElapsed = 0;
    this.#randomizedTimeout = this.#newElectionTimeout();
    this.#votes = null;
    this.#selfVotePending = false;
    this.#selfVoteDurable = false;
    this.#transferCampaign = false;
    this.#triggeredCampaign = false;
    this.#disruptedTerm = 0;
    if (this.#role === "leader") this.#leaderStopped();
    this.#prs.clear();
    this.#transferee = NONE;
    this.#committedInTerm = false;
    this.#confRecheck = false;
  }

  #leaderStopped(): void {
    const why = new Status(RaftError.EPERM, "leader stepped down");
    for (const r of this.#pendingReads) {
      this.#readStates.push({ ctx: r.ctx, index: -1, status: why });
    }
    for (const ctx of this.#readsBeforeCommit) {
      this.#readStates.push({ ctx, index: -1, status: why });
    }
    this.#pendingReads = [];
    this.#readsBeforeCommit = [];
    if (this.#confChange?.requested) {
      this.#confResults.push({ peers: keysOf(this.#confChange.target.peers), status: why });
    }
    this.#confChange = null;
    this.#pendingConfIndex = 0;
  }

  #becomeFollower(term: number, leader: string, reason?: Status): void {
    if (reason !== undefined) this.#reason = reason;
    this.#reset(term);
    this.#role = "follower";
    this.#leader = leader;
    this.#step = this.#stepFollower;
    this.#tickFn = this.#tickElection;
  }

  /** braft: a witness campaigns after twice the election timeout (a replica goes first). */
  #newElectionTimeout(): number {
    const base = this.#witness ? 2 * this.#electionTick : this.#electionTick;
    return base + this.#prng.int(this.#maxDelay + 1);
  }

  #promotable(): boolean {
    if (this.#log.pendingSnapshot !== undefined) return false;
    // braft: without raft_enable_witness_to_leader a witness has no election or vote timer
    if (this.#witness && !this.#witnessToLeader) return false;
    if (this.#conf.voters.includes(this.#id) || this.#conf.oldVoters.includes(this.#id)) {
      return true;
    }
    // Raft thesis §4.2.2: a server left out of its latest configuration still campaigns while
    // that configuration is uncommitted (it may be needed to commit it); its own vote then
    // does not count, since ballots only count the latest configuration's voters.
    const latest = this.#confs[this.#confs.length - 1];
    if (latest === undefined || latest.index <= this.#log.committed) return false;
    const stable = this.#confAt(this.#log.committed);
    return stable.peers.contains(this.#id) || (stable.oldPeers?.contains(this.#id) ?? false);
  }

  #campaign(
    kind: "prevote" | "election" | "transfer",
    leaderSteppedDown = false,
    triggered = false,
  ): void {
    if (!this.#promotable()) return;
    if (this.#leader !== NONE && this.#role === "follower") {
      this.#reason = kind === "prevote"
        ? new Status(RaftError.ERAFTTIMEDOUT, `Lost connection from leader ${this.#leader}`)
        : new Status(
          RaftError.ERAFTTIMEDOUT,
          "A follower's leader_id is reset to NULL as it begins to request_vote.",
        );
    }
    const voters = [...new Set([...this.#conf.voters, ...this.#conf.oldVoters])];
    if (kind === "prevote") {
      // pre-vote: no state change; ask for term + 1
      this.#reset(this.#term);
      this.#role = "precandidate";
      this.#step = this.#stepCandidate;
      this.#tickFn = this.#tickElection;
      this.#castVote(this.#id, true);
      this.#triggeredCampaign = triggered;
      for (const id of voters) {
        if (id === this.#id) continue;
        this.#send({
          type: "PreVote",
          from: this.#id,
          to: id,
          term: this.#term + 1,
          lastLogIndex: this.#log.lastIndex(),
          lastLogTerm: this.#log.lastTerm(),
          ...(triggered ? { triggered: true } : {}),
        });
      }
      this.#tally();
      return;
    }
    // TimeoutNow from a leader that already stepped down (removed): its term is disrupted
    const disrupted = leaderSteppedDown ? this.#term : 0;
    this.#reset(this.#term + 1);
    this.#role = "candidate";
    this.#step = this.#stepCandidate;
    this.#tickFn = this.#tickElection;
    this.#vote = this.#id;
    this.#selfVotePending = true; // counted once durable (advance) and the lease allows it
    this.#transferCampaign = kind === "transfer";
    this.#triggeredCampaign = triggered;
    this.#disruptedTerm = disrupted;
    if (disrupted > 0) this.#leaderContactTick = -Infinity;
    this.#requestVotes(voters);
  }

  #recordVote(from: string, granted: boolean): void {
    if (!this.#hasVoted(from)) this.#castVote(from, granted);
    this.#tally();
  }

  #tally(): void {
    const r = jointVote(this.#conf.voters, this.#conf.oldVoters, this.#votes ?? NO_VOTES);
    if (r === "won") {
      if (this.#role === "precandidate") {
        this.#campaign("election", false, this.#triggeredCampaign);
      } else this.#becomeLeader();
    } else if (r === "lost") {
      this.#becomeFollower(this.#term, NONE);
    }
  }

  #becomeLeader(): void {
    invariant(this.#role === "candidate", "only a candidate becomes leader");
    const term = this.#term;
    this.#reset(term);
    this.#role = "leader";
    this.#leader = this.#id;
    this.#step = this.#stepLeader;
    this.#tickFn = this.#tickLeader;
    this.#leaseStart = this.#ticks;
    this.#leaderSinceTick = this.#ticks;
    this.#leaderContactTick = -Infinity; // braft: the follower lease resets on leader start
    for (const id of this.#conf.all) this.#prs.set(id, this.#newProgress());
    const self = this.#prs.get(this.#id) ?? this.#newProgress();
    this.#prs.set(this.#id, self);
    self.match = Math.max(0, this.#log.stableLastIndex());
    self.becomeReplicate();
    // braft: the first entry of a term is a CONFIGURATION entry with the current conf
    const conf = this.#conf.payload;
    this.#pendingConfIndex = this.#appendEntry(EntryType.CONFIGURATION, EMPTY_DATA, conf);
    if (conf.oldPeers !== undefined && !conf.oldPeers.isEmpty()) {
      this.#confChange = {
        stage: "joint",
        target: { peers: conf.peers, learners: conf.learners ?? new Configuration() },
        adding: [],
        startTick: this.#ticks,
        index: this.#pendingConfIndex,
        requested: false,
      };
    }
  }

  #newProgress(): Progress {
    return new Progress(this.#log.lastIndex() + 1, this.#maxInflight, 0);
  }

  // ---------------------------------------------------------------- ticks

  #tickElection(): void {
    this.#electionElapsed++;
    if (this.#voteTriggered && this.#role === "follower") {
      this.#triggerElapsed++;
      if (this.#triggerElapsed >= this.#randomizedTimeout) {
        this.#voteTriggered = false;
        this.#electionElapsed = 0;
        this.#campaign("prevote", false, true);
        return;
      }
    }
    if (this.#role === "candidate" && this.#selfVoteDurable && !this.#hasVoted(this.#id)) {
      this.#maybeGrantSelf();
      // voters that ignored us within their lease may vote now that ours ran out
      if (this.#role === "candidate" && this.#hasVoted(this.#id)) {
        this.#requestVotes(this.#unanswered());
      }
    }
    if (this.#electionElapsed >= this.#randomizedTimeout) {
      this.#electionElapsed = 0;
      if (this.#role === "follower" && this.#leader !== NONE) {
        // braft reset_leader_id on election timeout, whether or not a campaign follows: a
        // node that cannot campaign (not a voter, priority 0, witness) must not keep the
        // leader, or `#inFollowerLease` would re-arm with each new timer round and hold
        // back the (pre-)votes of a leaderless cluster forever
        this.#reason = new Status(
          RaftError.ERAFTTIMEDOUT,
          `Lost connection from leader ${this.#leader}`,
        );
        this.#leader = NONE;
      }
      if (this.#priority <= 0 && this.#role === "follower") return;
      const again = this.#role === "candidate" && !this.#stepDownWhenVoteTimedout;
      this.#campaign(again ? "election" : "prevote");
    }
  }

  #tickLeader(): void {
    this.#heartbeatElapsed++;
    this.#electionElapsed++;
    if (this.#electionElapsed >= this.#electionTick) {
      this.#electionElapsed = 0;
      if (this.#checkQuorum && !this.#quorumActive()) {
        this.#becomeFollower(
          this.#term,
          NONE,
          new Status(RaftError.ERAFTTIMEDOUT, "Majority of the group dies"),
        );
        return;
      }
      for (const [id, pr] of this.#prs) if (id !== this.#id) pr.recentActive = false;
      if (this.#witness) {
        // braft: a witness is leader only until its next step-down check
        this.#stepDownAndWake(
          new Status(RaftError.ETRANSFERLEADERSHIP, "Witness becomes leader temporarily"),
        );
        return;
      }
    }
    if (this.#transferee !== NONE && this.#ticks - this.#transferStart >= this.#electionTick) {
      // braft: resume as leader after T, restarting the lease (on_leader_start): acks of
      // messages sent before now do not count. A TimeoutNow still in flight can still make
      // the target campaign; it then wins only after this node stepped down (it grants the
      // transfer's vote request) or the voters' follower leases ran out (#skipsFollowerLease).
      this.#transferee = NONE;
      this.#leaseStart = this.#ticks;
    }
    if (this.#confChange?.stage === "catchup") this.#checkCatchup();
    if (this.#heartbeatElapsed >= this.#heartbeatTick) {
      this.#heartbeatElapsed = 0;
      this.#bcastHeartbeat();
    }
    this.#maybeHandOverByPriority();
  }

  /**
   * braft's `consecutive_error_times != 0`: `id` has not answered anything for half an
   * election timeout (braft's heartbeat RPC timeout) although this leader has been sending.
   */
  #unreachable(id: string): boolean {
    const pr = this.#prs.get(id);
    if (pr === undefined) return true;
    const since = Math.max(pr.lastRespTick, this.#leaderSinceTick);
    return this.#ticks - since > this.#electionTick / 2;
  }

  #quorumActive(): boolean {
    const active = (id: string): number =>
      id === this.#id || this.#prs.get(id)?.recentActive ? 1 : 0;
    return jointIndex(this.#conf.voters, this.#conf.oldVoters, active) === 1;
  }

  #maybeHandOverByPriority(): void {
    if (this.#transferee !== NONE || this.isChangingConf()) return;
    let best = NONE;
    let bestPri = this.#priority;
    for (const id of this.#conf.voters) {
      const p = this.#peerPriority?.get(id) ?? 1;
      if (
        id !== this.#id && !this.#conf.witnesses.has(id) && p > bestPri &&
        this.#prs.get(id)?.match === this.#log.lastIndex()
      ) {
        best = id;
        bestPri = p;
      }
    }
    if (best !== NONE) this.transferLeader(best);
  }

  // ---------------------------------------------------------------- voting

  // Lease safety invariant. While a leader L's lease is valid, no voter whose acknowledgement
  // counted towards that lease grants a vote in a higher term, unless L has irrevocably
  // stepped down. (A leader's lease counts acks of messages sent less than T - 1 ticks ago;
  // the voter received them no earlier, and refuses votes for T ticks after receiving.)
  // How each vote keeps it:
  // - a follower refuses (pre-)votes while #inFollowerLease(), which campaigning does not end;
  // - a candidate counts its own vote only once its own follower lease ran out or the leader
  //   it followed has voted for it (#maybeGrantSelf);
  // - a vote request skips the lease only if it is addressed to the leader itself for a
  //   transfer or a vote() campaign (the leader steps down by granting it; a vote() pre-vote
  //   skips every lease, as it changes no state), or if it names as disrupted the term
  //   of the voter: the leader of that term — the only leader the voter can have acknowledged
  //   since its acks to earlier leaders stopped counting — voted in a higher term or sent
  //   TimeoutNow after stepping down, so it has stepped down for good (#skipsFollowerLease);
  // - a leader serves no lease read while transferring, and restarts its lease when it
  //   abandons a transfer (#tickLeader).

  /**
   * Follower lease (vote stickiness): a leader we heard from within T may count on us, so no
   * other candidate gets our (pre-)vote. With `leaseEnabled` it runs T ticks from the last
   * message accepted from a leader (or from a restart), whatever role this node has since.
   * With check-quorum it also holds while the leader is known and the election timer has not
   * run out; each election timeout forgets the leader, even where no campaign follows.
   */
  #inFollowerLease(): boolean {
    if (this.#leaseEnabled && this.#ticks - this.#leaderContactTick < this.#electionTick) {
      return true;
    }
    return (this.#checkQuorum || this.#leaseEnabled) && this.#leader !== NONE &&
      this.#electionElapsed < this.#electionTick;
  }

  /**
   * Whether a higher-term vote request may skip the follower lease (see the invariant above).
   * Naming this node's term as disrupted also ends the lease for good (braft `expire()`).
   */
  #skipsFollowerLease(m: Message & { type: "PreVote" | "RequestVote" }): boolean {
    // vote(): a pre-vote binds nobody; the vote request only the leader (it steps down)
    if (m.triggered === true && (m.type === "PreVote" || this.#role === "leader")) return true;
    if (m.type !== "RequestVote") return false;
    if (m.disruptedTerm === this.#term && this.#role !== "leader") {
      this.#leaderContactTick = -Infinity;
      return true;
    }
    // without leases the transfer's vote is not held back anywhere (nothing to protect)
    return m.transfer && (this.#role === "leader" || !this.#leaseEnabled);
  }

  /** A message of the leader of this term was accepted: our acks may count for its lease. */
  #heardFromLeader(from: string): void {
    this.#electionElapsed = 0;
    this.#leader = from;
    this.#lastLeader = from;
    this.#lastLeaderTerm = this.#term;
    this.#leaderContactTick = this.#ticks;
  }

  /** Counts the durable own vote once the follower lease allows it. */
  #maybeGrantSelf(): void {
    if (this.#role !== "candidate" || !this.#selfVoteDurable || this.#hasVoted(this.#id)) {
      return;
    }
    if (this.#leaseEnabled && this.#ticks - this.#leaderContactTick < this.#electionTick) return;
    this.#recordVote(this.#id, true);
  }

  /** Sends RequestVote for the current campaign to `ids`. */
  #requestVotes(ids: Iterable<string>): void {
    for (const id of ids) {
      if (id === this.#id) continue;
      this.#sendAfter({
        type: "RequestVote",
        from: this.#id,
        to: id,
        term: this.#term,
        lastLogIndex: this.#log.lastIndex(),
        lastLogTerm: this.#log.lastTerm(),
        transfer: this.#transferCampaign,
        ...(this.#triggeredCampaign ? { triggered: true } : {}),
        ...(this.#disruptedTerm > 0 ? { disruptedTerm: this.#disruptedTerm } : {}),
      });
    }
  }

  /** Voters of the current configuration that have not answered this campaign. */
  #unanswered(): string[] {
    return [...new Set([...this.#conf.voters, ...this.#conf.oldVoters])].filter((id) =>
      !this.#hasVoted(id)
    );
  }

  /** Whether `id` answered this campaign. */
  #hasVoted(id: string): boolean {
    return this.#votes?.has(id) ?? false;
  }

  /** Records `id`'s answer in this campaign. */
  #castVote(id: string, granted: boolean): void {
    (this.#votes ??= new Map()).set(id, granted);
  }

  #handleVote(m: Message & { type: "PreVote" | "RequestVote" }): void {
    const pre = m.type === "PreVote";
    const canVote = this.#vote === m.from || (this.#vote === NONE && this.#leader === NONE) ||
      (pre && m.term > this.#term);
    const grant = canVote && this.#log.isUpToDate(m.lastLogIndex, m.lastLogTerm);
    if (pre) {
      this.#send({
        type: "PreVoteResp",
        from: this.#id,
        to: m.from,
        term: grant ? m.term : this.#term,
        granted: grant,
      });
      return;
    }
    if (grant) {
      this.#electionElapsed = 0;
      this.#vote = m.from;
    }
    // the vote must be durable before the answer leaves
    this.#sendAfter({
      type: "RequestVoteResp",
      from: this.#id,
      to: m.from,
      term: this.#term,
      granted: grant,
    });
  }

  // ---------------------------------------------------------------- step functions

  #stepFollower = (m: Message): void => {
    switch (m.type) {
      case "AppendEntries":
        this.#heardFromLeader(m.from);
        this.#handleAppend(m);
        return;
      case "InstallSnapshot":
        this.#heardFromLeader(m.from);
        this.#handleSnapshot(m);
        return;
      case "TimeoutNow": {
        const ok = this.#promotable();
        this.#sendAfter({
          type: "TimeoutNowResp",
          from: this.#id,
          to: m.from,
          term: this.#term,
          success: ok,
        });
        if (ok) this.#campaign("transfer", m.leaderSteppedDown === true);
        return;
      }
      default:
        return;
    }
  };

  #stepCandidate = (m: Message): void => {
    if (
      (m.type === "AppendEntries" || m.type === "InstallSnapshot") &&
      this.#role === "precandidate" && this.#triggeredCampaign
    ) {
      // vote(): the leader's heartbeats would end the pre-vote round at once (braft's round
      // trip is shorter than its heartbeat interval); ignore them unanswered until the round
      // ends (no ack, so this node's acks no longer count for the leader's lease)
      return;
    }
    switch (m.type) {
      case "AppendEntries":
        this.#becomeFollower(this.#term, m.from, NEW_LEADER_SAME_TERM);
        this.#heardFromLeader(m.from);
        this.#handleAppend(m);
        return;
      case "InstallSnapshot":
        this.#becomeFollower(this.#term, m.from, NEW_LEADER_SAME_TERM);
        this.#heardFromLeader(m.from);
        this.#handleSnapshot(m);
        return;
      case "PreVoteResp":
        if (this.#role === "precandidate") this.#recordVote(m.from, m.granted);
        return;
      case "RequestVoteResp":
        if (this.#role !== "candidate") return;
        this.#recordVote(m.from, m.granted);
        if (
          this.#role === "candidate" && m.granted && m.from === this.#lastLeader &&
          this.#lastLeaderTerm < this.#term && this.#disruptedTerm !== this.#lastLeaderTerm
        ) {
          // braft disrupted leader: the leader we followed voted in our term, so it stepped
          // down for good; its lease no longer needs ours or the other voters' votes held
          this.#disruptedTerm = this.#lastLeaderTerm;
          this.#leaderContactTick = -Infinity;
          this.#maybeGrantSelf();
          if (this.#role === "candidate") this.#requestVotes(this.#unanswered());
        }
        return;
      default:
        return;
    }
  };

  #stepLeader = (m: Message): void => {
    switch (m.type) {
      case "AppendEntriesResp":
        this.#handleAppendResp(m);
        return;
      case "InstallSnapshotResp": {
        const pr = this.#prs.get(m.from);
        if (pr === undefined) return;
        pr.recentActive = true;
        pr.lastRespTick = this.#ticks;
        if (pr.state !== "snapshot") return;
        if (m.success) {
          // like an append ack: a late answer to a heartbeat sent before the install must not
          // be taken for a wiped follower (it would lower match and send a second snapshot)
          if (pr.maybeUpdate(m.index)) pr.lastAckTick = this.#ticks;
          pr.becomeProbe();
          if (this.#maybeCommit()) this.#needBcast = true;
          // braft test_node transfer_should_work_after_install_snapshot: the snapshot may be
          // all the target lacked (no later append ack will move its match)
          if (m.from === this.#transferee && pr.match === this.#log.lastIndex()) {
            this.#sendTimeoutNow(m.from);
          }
        } else {
          pr.pendingSnapshot = 0;
          pr.becomeProbe();
        }
        this.#sendAppend(m.from);
        return;
      }
      case "AppendEntries":
        invariant(false, () => `two leaders in term ${this.#term}: ${this.#id} and ${m.from}`);
        return;
      default:
        return;
    }
  };

  // ---------------------------------------------------------------- follower side

  #reply(
    m: AppendEntriesMessage,
    success: boolean,
    index: number,
    hintIndex = 0,
    hintTerm = 0,
  ): void {
    this.#sendAck({
      type: "AppendEntriesResp",
      from: this.#id,
      to: m.from,
      term: this.#term,
      success,
      heartbeat: m.heartbeat,
      index,
      hintIndex,
      hintTerm,
      lastLogIndex: this.#log.lastIndex(),
      readonly: this.#readonly,
      sentTick: m.sentTick,
      readSeq: m.readSeq,
      priority: this.#priority,
    });
  }

  #handleAppend(m: AppendEntriesMessage): void {
    const log = this.#log;
    if (m.heartbeat) {
      if (log.matchTerm(m.prevLogIndex, m.prevLogTerm)) {
        log.commitTo(Math.min(m.commit, m.prevLogIndex));
      }
      this.#reply(m, true, 0);
      return;
    }
    if (m.prevLogIndex < log.committed) {
      this.#reply(m, true, log.committed);
      return;
    }
    if (log.matchTerm(m.prevLogIndex, m.prevLogTerm)) {
      const lastNew = m.prevLogIndex + m.entries.length;
      const ci = log.findConflict(m.entries);
      if (ci !== 0) {
        invariant(
          ci > log.committed,
          () => `conflict at committed index ${ci} <= ${log.committed}`,
        );
        if (ci <= log.lastIndex()) this.#withdrawAcks(ci); // the suffix from ci is replaced
        const from = ci - m.prevLogIndex - 1;
        this.#truncateConfs(ci);
        const tail = m.entries.slice(from);
        log.append(tail);
        for (const e of tail) if (e.conf !== undefined) this.#addConf(e);
      }
      // braft/Raft: commit = min(leaderCommit, last new entry)
      log.commitTo(Math.min(m.commit, lastNew));
      this.#reply(m, true, lastNew);
      return;
    }
    const hint = log.findConflictByTerm(Math.min(m.prevLogIndex, log.lastIndex()), m.prevLogTerm);
    this.#reply(m, false, m.prevLogIndex, hint.index, hint.term);
  }

  #handleSnapshot(m: InstallSnapshotMessage): void {
    const meta = m.meta;
    const log = this.#log;
    const resp = (success: boolean, index: number): void =>
      this.#sendAck({
        type: "InstallSnapshotResp",
        from: this.#id,
        to: m.from,
        term: this.#term,
        success,
        index,
      });
    if (meta.index <= log.committed) {
      resp(true, log.committed);
      return;
    }
    if (log.matchTerm(meta.index, meta.term)) {
      log.commitTo(meta.index);
      resp(true, meta.index);
      return;
    }
    // The log is replaced: only what was committed (and so is in the snapshot) stays true.
    // A pending snapshot this one supersedes was never installed: acks from its index on
    // (its own among them) claim what the driver will now never persist.
    const pending = log.pendingSnapshot;
    this.#withdrawAcks(pending === undefined ? log.committed + 1 : pending.index);
    log.restore(meta);
    this.#confBase = { index: meta.index, term: meta.term, conf: meta.conf };
    this.#confs = [];
    this.#refreshConf();
    resp(true, meta.index);
  }

  // ---------------------------------------------------------------- leader side

  #handleAppendResp(m: AppendEntriesRespMessage): void {
    const pr = this.#prs.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    pr.lastRespTick = this.#ticks;
    pr.readonly = m.readonly;
    if (m.readonly && pr.readonlyIndex === 0) {
      // braft: what is already in the log may still need this follower to commit
      pr.readonlyIndex = this.#log.lastIndex() + 1;
    } else if (!m.readonly && pr.readonlyIndex !== 0) {
      pr.readonlyIndex = 0;
      this.#needBcast = true;
    }
    (this.#peerPriority ??= new Map()).set(m.from, m.priority);
    if (m.sentTick > pr.ackedSentTick) pr.ackedSentTick = m.sentTick;
    if (m.readSeq > pr.readSeq) {
      pr.readSeq = m.readSeq;
      this.#releaseReads();
    }
    if (m.heartbeat) {
      if (m.lastLogIndex < pr.match && m.sentTick > pr.lastAckTick) {
        // The follower no longer has entries it acknowledged before this heartbeat was sent:
        // it restarted on wiped storage (braft allows this). Replicate to it from scratch.
        pr.match = m.lastLogIndex;
        pr.becomeProbe();
        this.#sendAppend(m.from);
        return;
      }
      // a heartbeat answer unblocks a lost probe, and a replicate window whose messages
      // were lost (the follower is behind `next` and nothing was acknowledged for a while)
      if (pr.state === "probe") pr.probeSent = false;
      else if (
        pr.state === "replicate" && pr.match < pr.next - 1 &&
        this.#ticks - Math.max(pr.lastAckTick, pr.lastSendTick) >= 2 * this.#heartbeatTick
      ) {
        pr.becomeProbe();
      } else if (pr.state === "snapshot" && this.#ticks - pr.lastSendTick >= this.#electionTick) {
        // InstallSnapshot (or its answer) lost: retry (a duplicate is harmless to the follower)
        pr.becomeProbe();
      }
      if (pr.match < this.#log.lastIndex() && !pr.paused()) this.#sendAppend(m.from);
      return;
    }
    if (!m.success) {
      let hint = m.hintIndex;
      if (m.hintTerm > 0) hint = this.#log.findConflictByTerm(m.hintIndex, m.hintTerm).index;
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.#sendAppend(m.from);
      }
      return;
    }
    const wasPaused = pr.paused();
    if (!pr.maybeUpdate(m.index)) return;
    pr.lastAckTick = this.#ticks;
    if (pr.state === "probe") pr.becomeReplicate();
    else if (pr.state === "snapshot" && pr.match >= pr.pendingSnapshot) pr.becomeProbe();
    else if (pr.state === "replicate") pr.inflights.freeTo(m.index);
    if (this.#maybeCommit()) {
      this.#needBcast = true;
    } else if (wasPaused || pr.state === "replicate") {
      this.#fill(m.from);
    }
    if (m.from === this.#transferee && pr.match === this.#log.lastIndex()) {
      this.#sendTimeoutNow(m.from);
    }
    if (this.#confChange?.stage === "catchup") this.#checkCatchup();
  }

  #fill(id: string): void {
    const pr = this.#prs.get(id)!;
    // an empty AppendEntries still carries a new commit index
    if (!this.#sendAppend(id, pr.sentCommit < this.#log.committed)) return;
    while (pr.state === "replicate" && this.#sendAppend(id, false));
  }

  #sendTimeoutNow(to: string): void {
    this.#send({ type: "TimeoutNow", from: this.#id, to, term: this.#term });
  }

  #sendAppend(to: string, allowEmpty = true): boolean {
    const pr = this.#prs.get(to);
    if (pr === undefined || to === this.#id || pr.paused()) return false;
    const log = this.#log;
    const prevIndex = pr.next - 1;
    const prevTerm = log.term(prevIndex);
    if (prevTerm === undefined || pr.next < log.firstIndex()) {
      if (prevTerm === undefined && prevIndex > log.lastIndex()) {
        // next beyond our log (stale optimism): back off to probing
        pr.becomeProbe();
        return false;
      }
      const meta = log.snapshotMeta();
      // braft: a witness leader never installs a snapshot (its own may lack the data)
      if (meta.index === 0 || this.#witness) return false;
      pr.becomeSnapshot(meta.index);
      pr.lastSendTick = this.#ticks;
      this.#send({ type: "InstallSnapshot", from: this.#id, to, term: this.#term, meta });
      return false;
    }
    let entries = log.entries(pr.next, this.#maxEntries, this.#maxBody);
    if (entries === null) return false; // storage will call notifyStorageReady()
    if (pr.readonlyIndex !== 0) entries = this.#readonlyCut(pr, entries);
    if (entries.length === 0 && !allowEmpty) return false;
    if (!this.#witnessToLeader && this.#conf.witnesses.has(to)) entries = stripData(entries);
    this.#send({
      type: "AppendEntries",
      from: this.#id,
      to,
      term: this.#term,
      prevLogIndex: prevIndex,
      prevLogTerm: prevTerm,
      entries,
      commit: log.committed,
      heartbeat: false,
      sentTick: this.#ticks,
      readSeq: this.#readSeq,
    });
    pr.lastSendTick = this.#ticks;
    pr.sentCommit = log.committed;
    if (pr.state === "replicate") {
      if (entries.length > 0) {
        const last = entries[entries.length - 1]!.index;
        let bytes = 0;
        for (const e of entries) bytes += e.data.length;
        pr.next = last + 1;
        pr.inflights.add(last, bytes);
      }
    } else {
      pr.probeSent = true;
    }
    return true;
  }

  /**
   * braft readonly follower: stops the batch at its first DATA entry at or after
   * `pr.readonlyIndex` (such entries can commit without it); configuration entries are
   * still sent, and move the index past them.
   */
  #readonlyCut(pr: Progress, entries: LogEntry[]): LogEntry[] {
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.index < pr.readonlyIndex) continue;
      if (e.type !== EntryType.CONFIGURATION) return entries.slice(0, i);
      pr.readonlyIndex = e.index + 1;
    }
    return entries;
  }

  #bcastAppend(): void {
    for (const id of this.#prs.keys()) {
      if (id !== this.#id) this.#fill(id);
    }
  }

  #bcastHeartbeat(): void {
    this.#needHeartbeat = false;
    for (const [id, pr] of this.#prs) {
      if (id === this.#id) continue;
      let prev = pr.match;
      let prevTerm = this.#log.term(prev);
      if (prevTerm === undefined) {
        prev = 0;
        prevTerm = 0;
      }
      this.#send({
        type: "AppendEntries",
        from: this.#id,
        to: id,
        term: this.#term,
        prevLogIndex: prev,
        prevLogTerm: prevTerm,
        entries: [],
        commit: this.#log.committed,
        heartbeat: true,
        sentTick: this.#ticks,
        readSeq: this.#readSeq,
      });
    }
  }

  #maybeCommit(): boolean {
    const mci = jointIndex(
      this.#conf.voters,
      this.#conf.oldVoters,
      (id) => this.#prs.get(id)?.match ?? 0,
    );
    // Raft §5.4.2: only entries of the current term are committed by counting replicas
    if (mci <= this.#log.committed || this.#log.term(mci) !== this.#term) return false;
    this.#log.commitTo(mci);
    this.#onCommitted();
    return true;
  }

  #onCommitted(): void {
    if (!this.#committedInTerm) {
      this.#committedInTerm = true;
      const waiting = this.#readsBeforeCommit;
      this.#readsBeforeCommit = [];
      // Confirmed by a heartbeat round: the lease check of the request time may be stale.
      for (const ctx of waiting) this.#serveRead(ctx, false);
    }
    const cc = this.#confChange;
    if (cc === null && this.#log.committed >= this.#pendingConfIndex && !this.#isVoter()) {
      // elected while its own removal was uncommitted: now committed, hand over
      this.#stepDownRemoved();
      return;
    }
    if (cc === null || cc.stage === "catchup" || this.#log.committed < cc.index) return;
    if (cc.stage === "joint") {
      cc.stage = "stable";
      cc.index = this.#appendEntry(EntryType.CONFIGURATION, EMPTY_DATA, cc.target);
      this.#pendingConfIndex = cc.index;
      return;
    }
    // stable configuration committed
    this.#confChange = null;
    if (cc.requested) {
      this.#confResults.push({ peers: keysOf(cc.target.peers), status: Status.OK() });
    }
    if (!this.#conf.voters.includes(this.#id)) this.#stepDownRemoved();
  }

  #isVoter(): boolean {
    return this.#conf.voters.includes(this.#id) || this.#conf.oldVoters.includes(this.#id);
  }

  #stepDownRemoved(): void {
    // braft: a removed leader steps down and wakes the best follower with TimeoutNow
    this.#stepDownAndWake(new Status(RaftError.ELEADERREMOVED, "This node was removed"));
  }

  /**
   * Steps down (for good: the term's leadership is given up) and wakes the most caught-up
   * voter with a TimeoutNow saying so, so the voters need not wait out their follower lease.
   */
  #stepDownAndWake(reason: Status): void {
    let best = NONE;
    let bestMatch = -1;
    for (const id of this.#conf.voters) {
      if (id === this.#id || this.#conf.witnesses.has(id)) continue;
      const m = this.#prs.get(id)?.match ?? 0;
      if (m > bestMatch) {
        best = id;
        bestMatch = m;
      }
    }
    const term = this.#term;
    this.#becomeFollower(term, NONE, reason);
    if (best !== NONE) {
      this.#send({ type: "TimeoutNow", from: this.#id, to: best, term, leaderSteppedDown: true });
    }
  }

  #checkCatchup(): void {
    const cc = this.#confChange;
    if (cc === null || cc.stage !== "catchup") return;
    const last = this.#log.lastIndex();
    let all = true;
    for (const id of cc.adding) {
      const pr = this.#prs.get(id);
      const caught = pr !== undefined && pr.lastRespTick > 0 && pr.state !== "snapshot" &&
        pr.match + this.#catchupMargin >= last &&
        pr.match >= this.#log.firstIndex() - 1;
      if (caught) continue;
      all = false;
      const since = Math.max(cc.startTick, pr?.lastRespTick ?? 0);
      if (
        this.#ticks - since >= this.#electionTick &&
        this.#ticks - cc.startTick >= this.#catchupTimeout
      ) {
        // braft retries while the peer answers within T; it stopped answering: ECATCHUP
        this.#confChange = null;
        this.#confResults.push({
          peers: keysOf(cc.target.peers),
          status: new Status(RaftError.ECATCHUP, `Peer ${id} failed to catch up`),
        });
        this.#syncProgress();
        return;
      }
    }
    if (!all) return;
    const cur = this.#conf.payload;
    const { added, removed } = cur.peers.diff(cc.target.peers);
    if (added.length + removed.length > 1) {
      cc.stage = "joint";
      const joint: ConfigurationPayload = {
        peers: cc.target.peers,
        oldPeers: cur.peers,
        learners: cc.target.learners ?? new Configuration(),
        oldLearners: cur.learners ?? new Configuration(),
      };
      cc.index = this.#appendEntry(EntryType.CONFIGURATION, EMPTY_DATA, joint);
    } else {
      cc.stage = "stable";
      cc.index = this.#appendEntry(EntryType.CONFIGURATION, EMPTY_DATA, cc.target);
    }
    this.#pendingConfIndex = cc.index;
  }

  #serveRead(ctx: unknown, allowLease: boolean): void {
    const single = this.#conf.voters.length === 1 && this.#conf.voters[0] === this.#id &&
      this.#conf.oldVoters.length === 0;
    if (single || (allowLease && this.isLeaderLeaseValid())) {
      this.#readStates.push({ ctx, index: this.#log.committed, status: Status.OK() });
      return;
    }
    this.#readSeq++;
    this.#pendingReads.push({ seq: this.#readSeq, index: this.#log.committed, ctx });
    this.#needHeartbeat = true;
  }

  #releaseReads(): void {
    if (this.#pendingReads.length === 0) return;
    const q = jointIndex(
      this.#conf.voters,
      this.#conf.oldVoters,
      (id) => id === this.#id ? this.#readSeq : this.#prs.get(id)?.readSeq ?? 0,
    );
    let n = 0;
    while (n < this.#pendingReads.length && this.#pendingReads[n]!.seq <= q) {
      const r = this.#pendingReads[n++]!;
      this.#readStates.push({ ctx: r.ctx, index: r.index, status: Status.OK() });
    }
    if (n > 0) this.#pendingReads = this.#pendingReads.slice(n);
  }

  #checkWritable(expectedTerm: number): Status | null {
    if (this.#role !== "leader") return new Status(RaftError.EPERM, "Not leader");
    if (this.#transferee !== NONE) return new Status(RaftError.EBUSY, "Is transferring leadership");
    if (expectedTerm >= 0 && expectedTerm !== this.#term) {
      return new Status(
        RaftError.EPERM,
        `expected_term=${expectedTerm} doesn't match current_term=${this.#term}`,
      );
    }
    return null;
  }

  #appendEntry(type: EntryType, data: ChunkChain, conf: ConfigurationPayload | undefined): number {
    const index = this.#log.lastIndex() + 1;
    const e: LogEntry = conf === undefined
      ? { index, term: this.#term, type, data }
      : { index, term: this.#term, type, data, conf };
    this.#log.appendOne(e);
    if (conf !== undefined) this.#addConf(e);
    this.#needBcast = true;
    return index;
  }

  // ---------------------------------------------------------------- configuration

  #confAt(index: number): ConfigurationPayload {
    let c = this.#confBase.conf;
    for (const r of this.#confs) {
      if (r.index <= index) c = r.conf;
      else break;
    }
    return c;
  }

  #addConf(e: LogEntry): void {
    invariant(e.conf !== undefined, "configuration entry without conf");
    this.#confs.push({ index: e.index, term: e.term, conf: e.conf });
    this.#refreshConf();
  }

  #truncateConfs(from: number): void {
    const n = this.#confs.length;
    this.#confs = this.#confs.filter((r) => r.index < from);
    if (this.#confs.length !== n) this.#refreshConf();
  }

  #refreshConf(): void {
    const rec = this.#confs[this.#confs.length - 1] ?? this.#confBase;
    this.#conf = viewOf(rec.conf);
    if (this.#role === "leader") {
      this.#syncProgress();
      this.#confRecheck = true;
    }
  }

  #syncProgress(): void {
    const want = new Set(this.#conf.all);
    want.add(this.#id);
    if (this.#confChange?.stage === "catchup") {
      for (const id of this.#confChange.adding) want.add(id);
    }
    for (const id of want) {
      if (!this.#prs.has(id)) this.#prs.set(id, this.#newProgress());
    }
    for (const id of [...this.#prs.keys()]) if (!want.has(id)) this.#prs.delete(id);
  }

  // ---------------------------------------------------------------- output

  #send(m: Message): void {
    this.#msgs.push(m);
  }

  #sendAfter(m: Message): void {
    this.#msgsAfter.push(m);
  }

  // Invariant (acknowledgements): a success AppendEntriesResp / InstallSnapshotResp with
  // `index = i` claims "my log holds the leader's entries up to i". It is released only after
  // the Ready that carries it is persisted, and the core keeps stepping meanwhile, so a later
  // step may replace the entries it claims (a conflicting append from a newer leader, an
  // installed snapshot). Whenever the log loses entries from index p on, every queued success
  // ack with index ≥ p is withdrawn — from the queue and from the outstanding Ready (the
  // driver reads `messagesAfterPersist` only after persisting). Withdrawing an ack is always
  // safe: the leader retries. `#checkAckClaims` asserts the invariant when a Ready is built.

  /** Queues an AppendEntriesResp / InstallSnapshotResp after persistence, noting its claim. */
  #sendAck(m: Message & { type: "AppendEntriesResp" | "InstallSnapshotResp" }): void {
    if (m.success && m.index > this.#log.committed) {
      const t = this.#log.term(m.index);
      if (t !== undefined) this.#ackClaims.set(m, t);
    }
    this.#sendAfter(m);
  }

  /** The log loses its entries from `from` on: withdraw every success ack claiming them. */
  #withdrawAcks(from: number): void {
    const keep = (m: Message): boolean =>
      !((m.type === "AppendEntriesResp" || m.type === "InstallSnapshotResp") && m.success &&
        m.index >= from);
    retain(this.#msgsAfter, keep);
    if (this.#outAfter !== null) retain(this.#outAfter, keep);
  }

  /** Asserts that every success ack in `msgs` claims only what the log holds now. */
  #checkAckClaims(msgs: readonly Message[]): void {
    for (const m of msgs) {
      const t = this.#ackClaims.get(m);
      if (t === undefined || (m.type !== "AppendEntriesResp" && m.type !== "InstallSnapshotResp")) {
        continue;
      }
      const i = m.index;
      invariant(
        i <= this.#log.committed || this.#log.term(i) === t,
        () => `ack to ${m.to} claims ${i}@${t} but the log has term ${this.#log.term(i)} there`,
      );
    }
  }

  /**
   * Records a peer's election priority (learned out of band, e.g. from configuration).
   *
   * @param id Peer key.
   * @param priority Its priority.
   */
  setPeerPriority(id: string, priority: number): void {
    (this.#peerPriority ??= new Map()).set(id, priority);
  }
}

/** Keeps the elements of `a` that satisfy `keep`, in place. */
function retain<T>(a: T[], keep: (x: T) => boolean): void {
  let n = 0;
  for (const x of a) if (keep(x)) a[n++] = x;
  a.length = n;
}

function hardEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

const NEW_LEADER_SAME_TERM = new Status(
  RaftError.ENEWLEADER,
  "Candidate receives message from new leader with the same term.",
);

/** braft's step-down status for a message of a higher term. */
function higherTermReason(m: Message): Status {
  switch (m.type) {
    case "AppendEntries":
    case "InstallSnapshot":
      return new Status(
        RaftError.ENEWLEADER,
        "Raft node receives message from new leader with higher term.",
      );
    case "RequestVote":
      return new Status(
        RaftError.EHIGHERTERMREQUEST,
        "Raft node receives higher term request_vote_request.",
      );
    case "PreVote":
    case "TimeoutNow":
      return new Status(RaftError.EHIGHERTERMREQUEST, "Raft node receives higher term request.");
    default:
      return new Status(
        RaftError.EHIGHERTERMRESPONSE,
        `Leader receives higher term ${m.type} from peer:${m.from}`,
      );
  }
}

function softEqual(a: SoftState, b: SoftState): boolean {
  return a.role === b.role && a.leader === b.leader && a.term === b.term &&
    a.transferring === b.transferring;
}
