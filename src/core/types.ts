/**
 * Plain-data types of the consensus core: messages, hard state, snapshot meta, `Ready`.
 *
 * Peers are named by their key string (`PeerId.key()`, `"host:port:idx"`) everywhere in the
 * core, so every message is plain data a codec can serialise (entry payloads are
 * `ChunkChain`, configurations are `Configuration` values inside CONFIGURATION entries).
 *
 * @module
 */

import type { ConfigurationPayload, LogEntry } from "./entry.ts";
import type { Status } from "../errors/status.ts";

/** The durable part of a node's state: written before any message that depends on it. */
export interface HardState {
  /** Current term (starts at 1, as braft). */
  readonly term: number;
  /** Peer key voted for in `term`, or `""` for none. */
  readonly vote: string;
  /** Commit index known to this node (persisting it is optional; it only speeds restart). */
  readonly commit: number;
}

/** What a snapshot covers: the last included log id and the membership at that index. */
export interface SnapshotMeta {
  /** Last included log index. */
  readonly index: number;
  /** Term of the entry at `index`. */
  readonly term: number;
  /** Membership in effect at `index`. */
  readonly conf: ConfigurationPayload;
}

/** The role a core plays. */
export type Role = "follower" | "precandidate" | "candidate" | "leader";

/** Volatile state the driver may want to observe (leader changes, transfer). */
export interface SoftState {
  /** The current role. */
  readonly role: Role;
  /** Leader key known to this node, `""` if none. */
  readonly leader: string;
  /** Current term. */
  readonly term: number;
  /** Leader only: a leadership transfer is in progress (writes are refused with EBUSY). */
  readonly transferring: boolean;
}

/** Fields shared by every message (`from`/`to` are peer keys, `PeerId.key()`). */
export interface MessageBase {
  /** Sender peer key. */
  readonly from: string;
  /** Receiver peer key. */
  readonly to: string;
  /** The sender's term (for PreVote: the term it would campaign for). */
  readonly term: number;
}

/** Pre-vote request (braft `pre_vote`); changes no state at the sender or the receiver. */
export interface PreVoteMessage extends MessageBase {
  /** Discriminant. */
  readonly type: "PreVote";
  /** Candidate's last log index. */
  readonly lastLogIndex: number;
  /** Candidate's last log term. */
  readonly lastLogTerm: number;
}

/** Vote request (braft `request_vote`). */
export interface RequestVoteMessage extends MessageBase {
  /** Discriminant. */
  readonly type: "RequestVote";
  /** Candidate's last log index. */
  readonly lastLogIndex: number;
  /** Candidate's last log term. */
  readonly lastLogTerm: number;
  /**
   * Campaign started by TimeoutNow: the leader of the previous term steps down for it (with
   * leases off, no voter holds it back).
   */
  readonly transfer: boolean;
  /**
   * braft `disrupted_leader`: the leader of this term is known to have stepped down for good
   * (it voted in a higher term, or sent TimeoutNow after stepping down), so voters still in
   * this term may skip their follower lease. Absent or 0: none.
   */
  readonly disruptedTerm?: number;
}

/** Answer to `PreVote` or `RequestVote`. */
export interface VoteResponseMessage extends MessageBase {
  /** Discriminant. */
  readonly type: "PreVoteResp" | "RequestVoteResp";
  /** Whether the vote was granted. */
  readonly granted: boolean;
}

/** AppendEntries: replication, probe, and (with `heartbeat`) the periodic heartbeat. */
export interface AppendEntriesMessage extends MessageBase {
  /** Discriminant. */
  readonly type: "AppendEntries";
  /** Index of the entry before `entries` (0 when unknown, as braft after compaction). */
  readonly prevLogIndex: number;
  /** Term of `prevLogIndex`. */
  readonly prevLogTerm: number;
  /** Entries to append (empty for heartbeats and probes). */
  readonly entries: readonly LogEntry[];
  /** Leader's commit index. */
  readonly commit: number;
  /** A heartbeat: never appends, commits at most `min(commit, prevLogIndex)`. */
  readonly heartbeat: boolean;
  /** Leader tick when sent, echoed back (leader lease). */
  readonly sentTick: number;
  /** Highest read-index round this message confirms, echoed back. */
  readonly readSeq: number;
}

/** Answer to AppendEntries, with conflict hints for fast backtracking. */
export interface AppendEntriesRespMessage extends MessageBase {
  /** Discriminant. */
  readonly type: "AppendEntriesResp";
  /** Log matched at `prevLogIndex` and the entries were persisted. */
  readonly success: boolean;
  /** Answer to a heartbeat. */
  readonly heartbeat: boolean;
  /** On success, the last index known to match the leader; on reject, the rejected `prevLogIndex`. */
  readonly index: number;
  /** On reject: a hint index (largest index ≤ prevLogIndex whose term ≤ prevLogTerm). */
  readonly hintIndex: number;
  /** On reject: the term at `hintIndex`. */
  readonly hintTerm: number;
  /** The follower's last log index. */
  readonly lastLogIndex: number;
  /** The follower is in readonly mode (braft). */
  readonly readonly: boolean;
  /** Echo of the request's `sentTick`. */
  readonly sentTick: number;
  /** Echo of the request's `readSeq`. */
  readonly readSeq: number;
  /** The follower's election priority (a leader hands over to a caught-up higher one). */
  readonly priority: number;
}

/** InstallSnapshot: carries only the meta; the runtime copies the files. */
export interface InstallSnapshotMessage extends MessageBase {
  /** Discriminant. */
  readonly type: "InstallSnapshot";
  /** The snapshot to install. */
  readonly meta: SnapshotMeta;
}

/** Answer to InstallSnapshot. */
export interface InstallSnapshotRespMessage extends MessageBase {
  /** Discriminant. */
  readonly type: "InstallSnapshotResp";
  /** Installed (or already covered). */
  readonly success: boolean;
  /** The snapshot's last included index. */
  readonly index: number;
}

/** TimeoutNow: the receiver campaigns at once, skipping pre-vote (leadership transfer). */
export interface TimeoutNowMessage extends MessageBase {
  /** Discriminant. */
  readonly type: "TimeoutNow";
  /** braft `old_leader_stepped_down`: the sender already stepped down (it was removed). */
  readonly leaderSteppedDown?: boolean;
}

/** Answer to TimeoutNow (informational). */
export interface TimeoutNowRespMessage extends MessageBase {
  /** Discriminant. */
  readonly type: "TimeoutNowResp";
  /** Whether the receiver started an election. */
  readonly success: boolean;
}

/** Every message a core sends or receives, discriminated by `type`. */
export type Message =
  | PreVoteMessage
  | RequestVoteMessage
  | VoteResponseMessage
  | AppendEntriesMessage
  | AppendEntriesRespMessage
  | InstallSnapshotMessage
  | InstallSnapshotRespMessage
  | TimeoutNowMessage
  | TimeoutNowRespMessage;

/** The `type` of a message. */
export type MessageType = Message["type"];

/** The answer to one `readIndex()` request. */
export interface ReadState {
  /** The caller's context, as given to `readIndex`. */
  readonly ctx: unknown;
  /** The commit index the read must wait for (apply up to it, then read); -1 on failure. */
  readonly index: number;
  /** OK, or why the read failed (EPERM when leadership was lost). */
  readonly status: Status;
}

/** The end of a membership change started by `proposeConfChange`. */
export interface ConfChangeResult {
  /** The requested voting peers. */
  readonly peers: readonly string[];
  /** OK when the new configuration committed; else ECATCHUP, EPERM (stepped down)… */
  readonly status: Status;
}

/**
 * A batch of work for the driver. See {@linkcode RaftCore.ready} for the contract:
 * 1. send `messages` now;
 * 2. persist `snapshot` (install it), then `entries` (truncating any suffix from
 *    `entries[0].index` first), then `hardState` — all durably;
 * 3. only then send `messagesAfterPersist` (read it only then: the core withdraws from it, in
 *    place, acknowledgements of entries that a later `step` removed from the log);
 * 4. apply `committedEntries` (in order) and handle the other fields;
 * 5. call `advance(ready)`.
 */
export interface Ready {
  /** Set when the soft state changed since the last Ready. */
  readonly softState?: SoftState;
  /** Set when the hard state changed: persist it. */
  readonly hardState?: HardState;
  /** Entries to append durably (they may replace a suffix of the stored log). */
  readonly entries: readonly LogEntry[];
  /** A snapshot received from the leader: fetch its data, install it, reset the log to it. */
  readonly snapshot?: SnapshotMeta;
  /** Messages that may be sent at once (they depend on nothing unpersisted). */
  readonly messages: readonly Message[];
  /**
   * Messages to send only after everything above is durable (acks, votes). Read it after
   * persisting: until `advance`, the core may withdraw acks from it whose entries a later
   * step replaced.
   */
  readonly messagesAfterPersist: readonly Message[];
  /** Committed entries to apply, in order. */
  readonly committedEntries: readonly LogEntry[];
  /** Answers to `readIndex()` calls. */
  readonly readStates: readonly ReadState[];
  /** Membership changes that finished (leader only). */
  readonly confChangeResults: readonly ConfChangeResult[];
}
