/**
 * The library form of braft_cli (braft `cli.h`): administration of a raft group from outside,
 * through the CliService every endpoint serves.
 *
 * @module
 */

import { Configuration } from "../conf/configuration.ts";
import { ANY_PEER, PeerId } from "../conf/peer_id.ts";
import { RaftError, RaftException, Status } from "../errors/status.ts";
import { type CliVerb, decodeCliResponse, encodeCliCall } from "../node/cli_service.ts";
import type { CallOptions, Transport } from "../../transports/transport.ts";
import { httpCall } from "../../transports/http/http_call.ts";

/**
 * Sends one request to an endpoint and resolves with the response bytes; rejects with a
 * `RaftException` carrying the remote error code (EHOSTUNREACH, ETIMEDOUT, ... for network
 * trouble). `request` is the CBOR call `NodeManager` accepts (`{ t: "cli", verb, ... }`).
 */
export type CliCaller = (
  endpoint: string,
  request: Uint8Array,
  options: CallOptions,
) => Promise<Uint8Array>;

/**
 * How a `cli` function reaches the nodes (braft `CliOptions`): through `call`, a `transport`,
 * or by default HTTP POST to each node's `/raft/call` (with `secret` when the cluster has one). `maxRetry` applies to the functions that go through the
 * leader; `resetPeer` and `snapshot` make one call.
 */
export interface CliOptions {
  /**
   * Per call timeout in ms; each call rejects with ETIMEDOUT after it. Default -1: the
   * caller's own default (no limit on a MemoryNetwork).
   */
  timeoutMs?: number;
  /**
   * How many times a request sent to the leader is retried, after finding the leader again,
   * when the leader changed or could not be reached (EPERM, EAGAIN, ENOENT, EHOSTUNREACH,
   * EHOSTDOWN, ESHUTDOWN). Default 3.
   */
  maxRetry?: number;
  /** Pause in ms before each retry, giving an election time to finish. Default 100. */
  retryIntervalMs?: number;
  /** Aborts the whole operation (rejects with ECANCELED). */
  signal?: AbortSignal;
  /** The transport to call through (its `call`), unless `call` is given. */
  transport?: Transport;
  /**
   * Without `call` and `transport`, requests go by HTTP POST to each node's `/raft/call`
   * (the service `addService` mounts); `secret` is the cluster's shared secret to prove.
   */
  secret?: string;
  /** The function that sends a request; takes precedence over `transport`. */
  call?: CliCaller;
}

/** What `addPeer`, `removePeer` and `changePeers` resolve with. */
export interface ConfigurationChange {
  /** The voters before the change. */
  oldPeers: Configuration;
  /** The voters after it. */
  newPeers: Configuration;
}

const RETRYABLE: ReadonlySet<number> = new Set([
  RaftError.EPERM,
  RaftError.EAGAIN,
  RaftError.ENOENT,
  RaftError.EHOSTUNREACH,
  RaftError.EHOSTDOWN,
  RaftError.ESHUTDOWN,
]);

/** The resolved options and the call function. */
class Session {
  readonly #call: CliCaller;
  readonly #timeoutMs: number;
  readonly maxRetry: number;
  readonly #retryIntervalMs: number;
  readonly #signal: AbortSignal | undefined;

  constructor(options: CliOptions | undefined) {
    const o = options ?? {};
    if (typeof o !== "object") throw bad("options must be an object");
    if (o.call !== undefined) {
      if (typeof o.call !== "function") throw bad("options.call must be a function");
      this.#call = o.call;
    } else if (o.transport !== undefined) {
      const t = o.transport;
      if (typeof t?.call !== "function") throw bad("options.transport must be a Transport");
      this.#call = (to, req, opts) => t.call(to, req, opts);
    } else {
      if (o.secret !== undefined && typeof o.secret !== "string") {
        throw bad("options.secret must be a string");
      }
      const secret = o.secret;
      this.#call = (to, req, opts) =>
        httpCall(to, req, {
          ...(secret === undefined ? {} : { secret }),
          ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
          ...(opts.signal === undefined ? {} : { signal: opts.signal }),
        });
    }
    this.#timeoutMs = o.timeoutMs ?? -1;
    if (!Number.isFinite(this.#timeoutMs) || (this.#timeoutMs <= 0 && this.#timeoutMs !== -1)) {
      throw bad(`options.timeoutMs must be > 0 or -1, not ${String(o.timeoutMs)}`);
    }
    this.maxRetry = o.maxRetry ?? 3;
    if (!Number.isSafeInteger(this.maxRetry) || this.maxRetry < 0) {
      throw bad(`options.maxRetry must be a non-negative integer, not ${String(o.maxRetry)}`);
    }
    this.#retryIntervalMs = o.retryIntervalMs ?? 100;
    if (!Number.isFinite(this.#retryIntervalMs) || this.#retryIntervalMs < 0) {
      throw bad(`options.retryIntervalMs must be >= 0, not ${String(o.retryIntervalMs)}`);
    }
    this.#signal = o.signal;
  }

  /** One request to `peer`'s endpoint. */
  async send(
    peer: PeerId,
    verb: CliVerb,
    request: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    this.#checkAborted();
    const opts: CallOptions = {};
    if (this.#timeoutMs > 0) opts.timeoutMs = this.#timeoutMs;
    if (this.#signal !== undefined) opts.signal = this.#signal;
    let bytes: Uint8Array;
    try {
      bytes = await this.#call(peer.endpoint, encodeCliCall(verb, request), opts);
    } catch (e) {
      if (e instanceof RaftException) throw e;
      throw new RaftException(
        new Status(
          RaftError.EHOSTUNREACH,
          `Cannot ${verb} at ${peer}: ${e instanceof Error ? e.message : String(e)}`,
        ),
        { cause: e },
      );
    }
    return decodeCliResponse(verb, bytes);
  }

  /** Waits `retryIntervalMs` (or until aborted). */
  async pause(): Promise<void> {
    this.#checkAborted();
    if (this.#retryIntervalMs === 0) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, this.#retryIntervalMs);
      this.#signal?.addEventListener("abort", done);
    });
    this.#checkAborted();
  }

  #checkAborted(): void {
    if (this.#signal?.aborted) {
      throw RaftException.of(RaftError.ECANCELED, "CLI operation was aborted");
    }
  }
}

function bad(why: string): RaftException {
  return RaftException.of(RaftError.EINVAL, why);
}

function groupOf(groupId: string): string {
  if (typeof groupId !== "string" || groupId === "") {
    throw bad(`groupId must be a non-empty string, not ${JSON.stringify(groupId)}`);
  }
  return groupId;
}

function peerOf(name: string, value: PeerId | string): PeerId {
  try {
    return PeerId.from(value);
  } catch (e) {
    throw bad(`${name}: ${(e as Error).message}`);
  }
}

function confOf(
  name: string,
  value: Configuration | string | Iterable<PeerId | string>,
): Configuration {
  try {
    return Configuration.from(value);
  } catch (e) {
    throw bad(`${name}: ${(e as Error).message}`);
  }
}

function peersIn(verb: string, field: string, v: unknown): Configuration {
  if (!Array.isArray(v) || v.some((p) => typeof p !== "string")) {
    throw bad(`Cannot read ${verb} response: ${field} must be an array of peer ids`);
  }
  try {
    return new Configuration(v as string[]);
  } catch (e) {
    throw bad(`Cannot read ${verb} response: ${field}: ${(e as Error).message}`);
  }
}

/** braft `cli::get_leader`: asks each peer of `conf` until one knows the leader. */
async function findLeader(s: Session, group: string, conf: Configuration): Promise<PeerId> {
  if (conf.isEmpty()) throw bad("Cannot get the leader: empty group configuration");
  const failures: string[] = [];
  let code: number = RaftError.EAGAIN;
  for (const peer of conf) {
    try {
      const res = await s.send(peer, "get_leader", {
        group_id: group,
        peer_id: peer.toString(),
      });
      if (typeof res.leader_id === "string") return PeerId.parse(res.leader_id);
      failures.push(`[${peer}] leader_id in the answer is not a string`);
      code = RaftError.EINVAL;
    } catch (e) {
      if (e instanceof RaftException && e.code === RaftError.ECANCELED) throw e;
      code = e instanceof RaftException ? e.code : RaftError.EINVAL;
      failures.push(`[${peer}] ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  throw RaftException.of(
    code,
    `Cannot get the leader of group "${group}": ${failures.join(", ")}`,
  );
}

/**
 * Finds the leader and sends it a request built for it; on a retryable failure finds the
 * leader again, up to `maxRetry` times.
 */
async function atLeader<T>(
  s: Session,
  group: string,
  conf: Configuration,
  run: (leader: PeerId) => Promise<T>,
): Promise<T> {
  for (let attempt = 0;; attempt++) {
    let leader: PeerId | null = null;
    try {
      leader = await findLeader(s, group, conf);
      return await run(leader);
    } catch (e) {
      // every peer was asked: an unknown group stays unknown
      const lookupFailed = leader === null && e instanceof RaftException &&
        e.code === RaftError.ENOENT;
      if (
        !(e instanceof RaftException) || !RETRYABLE.has(e.code) || lookupFailed ||
        attempt >= s.maxRetry
      ) {
        throw e;
      }
    }
    await s.pause();
  }
}

async function changeAtLeader(
  s: Session,
  verb: "add_peer" | "remove_peer" | "change_peers",
  group: string,
  conf: Configuration,
  fields: Record<string, unknown>,
): Promise<ConfigurationChange> {
  return await atLeader(s, group, conf, async (leader) => {
    const res = await s.send(leader, verb, {
      group_id: group,
      leader_id: leader.toString(),
      ...fields,
    });
    return {
      oldPeers: peersIn(verb, "old_peers", res.old_peers),
      newPeers: peersIn(verb, "new_peers", res.new_peers),
    };
  });
}

/**
 * Adds `peer` to the group (braft `cli::add_peer`): finds the leader through `conf`, asks
 * it to add the peer, and resolves once the new configuration is committed. Adding a member
 * again changes nothing.
 *
 * @param groupId The group.
 * @param conf Peers to ask for the leader (any members of the group).
 * @param peer The peer to add (it must be running, with an empty configuration).
 * @param options How to reach the nodes, timeout and retries.
 * @returns The voters before and after.
 * @throws {RaftException} The leader's error (EBUSY, ECATCHUP, ...), EACCES (`disableCli`),
 *   or the last failure after `maxRetry` retries.
 */
export async function addPeer(
  groupId: string,
  conf: Configuration | string,
  peer: PeerId | string,
  options?: CliOptions,
): Promise<ConfigurationChange> {
  const s = new Session(options);
  const p = peerOf("peer", peer);
  return await changeAtLeader(s, "add_peer", groupOf(groupId), confOf("conf", conf), {
    peer_id: p.toString(),
  });
}

/**
 * Removes `peer` from the group (braft `cli::remove_peer`) through the leader.
 *
 * @param groupId The group.
 * @param conf Peers to ask for the leader.
 * @param peer The peer to remove.
 * @param options How to reach the nodes, timeout and retries.
 * @returns The voters before and after.
 * @throws {RaftException} As {@linkcode addPeer}.
 */
export async function removePeer(
  groupId: string,
  conf: Configuration | string,
  peer: PeerId | string,
  options?: CliOptions,
): Promise<ConfigurationChange> {
  const s = new Session(options);
  const p = peerOf("peer", peer);
  return await changeAtLeader(s, "remove_peer", groupOf(groupId), confOf("conf", conf), {
    peer_id: p.toString(),
  });
}

/**
 * Sets the voters to `newPeers` (braft `cli::change_peers`) through the leader.
 *
 * @param groupId The group.
 * @param conf Peers to ask for the leader.
 * @param newPeers The new configuration.
 * @param options How to reach the nodes, timeout and retries.
 * @returns The voters before and after.
 * @throws {RaftException} As {@linkcode addPeer}.
 */
export async function changePeers(
  groupId: string,
  conf: Configuration | string,
  newPeers: Configuration | string,
  options?: CliOptions,
): Promise<ConfigurationChange> {
  const s = new Session(options);
  const next = confOf("newPeers", newPeers);
  if (next.isEmpty()) throw bad("Cannot change peers: newPeers is empty");
  return await changeAtLeader(s, "change_peers", groupOf(groupId), confOf("conf", conf), {
    new_peers: next.peers.map(String),
  });
}

/**
 * Forces the membership of one node (braft `cli::reset_peer`), sent directly to `peer`
 * without a leader: unsafe, for when a majority is lost for good.
 *
 * @param groupId The group.
 * @param peer The node to reset.
 * @param newPeers Its new configuration (not empty).
 * @param options How to reach the node and timeout.
 * @returns Resolves when the node took the new configuration.
 * @throws {RaftException} EINVAL (empty `newPeers`), the node's error (EPERM, EBUSY, ...).
 */
export async function resetPeer(
  groupId: string,
  peer: PeerId | string,
  newPeers: Configuration | string,
  options?: CliOptions,
): Promise<void> {
  const s = new Session(options);
  const p = peerOf("peer", peer);
  const next = confOf("newPeers", newPeers);
  if (next.isEmpty()) throw bad("Cannot reset peer: newPeers is empty");
  await s.send(p, "reset_peer", {
    group_id: groupOf(groupId),
    peer_id: p.toString(),
    new_peers: next.peers.map(String),
  });
}

/**
 * Makes `peer` take a snapshot now (braft `cli::snapshot`), sent directly to it.
 *
 * @param groupId The group.
 * @param peer The node.
 * @param options How to reach the node and timeout.
 * @returns Resolves when the snapshot is saved.
 * @throws {RaftException} The node's error (EINVAL no snapshot storage, EBUSY, ...).
 */
export async function snapshot(
  groupId: string,
  peer: PeerId | string,
  options?: CliOptions,
): Promise<void> {
  const s = new Session(options);
  const p = peerOf("peer", peer);
  await s.send(p, "snapshot", { group_id: groupOf(groupId), peer_id: p.toString() });
}

/**
 * Moves leadership to `peer` (braft `cli::transfer_leader`) through the current leader;
 * `ANY_PEER` or an empty string lets the leader pick the most caught-up follower. Nothing
 * is sent if `peer` already leads.
 *
 * @param groupId The group.
 * @param conf Peers to ask for the leader.
 * @param peer The new leader, or `ANY_PEER` / `""`.
 * @param options How to reach the nodes, timeout and retries.
 * @returns Resolves once the transfer started (the target campaigns next).
 * @throws {RaftException} The leader's error (EBUSY, EINVAL for a non-member, ...).
 */
export async function transferLeader(
  groupId: string,
  conf: Configuration | string,
  peer: PeerId | string,
  options?: CliOptions,
): Promise<void> {
  const s = new Session(options);
  const target = peer === "" ? ANY_PEER : peerOf("peer", peer);
  const group = groupOf(groupId);
  await atLeader(s, group, confOf("conf", conf), async (leader) => {
    if (leader.equals(target)) return;
    const req: Record<string, unknown> = { group_id: group, leader_id: leader.toString() };
    if (!target.isEmpty()) req.peer_id = target.toString();
    await s.send(leader, "transfer_leader", req);
  });
}

/**
 * The group's leader, as the first peer of `conf` that knows one tells (braft's
 * `RouteTable::refresh_leader`).
 *
 * @param groupId The group.
 * @param conf Peers to ask.
 * @param options How to reach the nodes and timeout.
 * @returns The leader.
 * @throws {RaftException} The last peer's error (EAGAIN unknown leader, EHOSTUNREACH, ...),
 *   with every peer's answer in the message.
 */
export async function getLeader(
  groupId: string,
  conf: Configuration | string,
  options?: CliOptions,
): Promise<PeerId> {
  const s = new Session(options);
  return await findLeader(s, groupOf(groupId), confOf("conf", conf));
}

/**
 * The voters, as the leader sees them (found through `conf`).
 *
 * @param groupId The group.
 * @param conf Peers to ask for the leader.
 * @param options How to reach the nodes, timeout and retries.
 * @returns The voters.
 * @throws {RaftException} As {@linkcode getLeader}, or the leader's error.
 */
export async function listPeers(
  groupId: string,
  conf: Configuration | string,
  options?: CliOptions,
): Promise<PeerId[]> {
  const s = new Session(options);
  const group = groupOf(groupId);
  return await atLeader(s, group, confOf("conf", conf), async (leader) => {
    const res = await s.send(leader, "list_peers", {
      group_id: group,
      peer_id: leader.toString(),
    });
    return peersIn("list_peers", "peers", res.peers).peers;
  });
}
