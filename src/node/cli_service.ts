/**
 * The CliService (braft `cli_service.cpp`): administration requests for the nodes served on
 * one endpoint. `NodeManager` hands it calls `{ t: "cli", verb, ...request }` (CBOR); an
 * HTTP layer can hand it already-decoded JSON objects through {@linkcode handleCliRequest}.
 *
 * Requests and responses use braft's field names (snake_case), peers as strings:
 *
 * | verb | request | response |
 * |---|---|---|
 * | `add_peer` | group_id, leader_id?, peer_id | old_peers[], new_peers[] |
 * | `remove_peer` | group_id, leader_id?, peer_id | old_peers[], new_peers[] |
 * | `change_peers` | group_id, leader_id?, new_peers | old_peers[], new_peers[] |
 * | `reset_peer` | group_id, peer_id?, new_peers, old_peers? (unused) | {} |
 * | `snapshot` | group_id, peer_id? | {} |
 * | `get_leader` | group_id, peer_id? | leader_id |
 * | `transfer_leader` | group_id, leader_id?, peer_id? (absent or empty: any peer) | {} |
 * | `list_peers` | group_id, peer_id? | peers[] |
 *
 * `new_peers` / `old_peers` are arrays of peer id strings (a comma-separated string is also
 * accepted). The node is the one named by `leader_id` (add/remove/change/transfer) or
 * `peer_id` (the others); when that field is empty the group must have exactly one node here.
 *
 * @module
 */

import { decode, encode } from "cbor-x";
import { Configuration } from "../conf/configuration.ts";
import { ANY_PEER, PeerId } from "../conf/peer_id.ts";
import { RaftError, RaftException, type Status } from "../errors/status.ts";
import type { RoutedNode } from "./node_manager.ts";

/** The call type `NodeManager` routes to the CliService. */
export const CLI_CALL_TYPE = "cli";

/** The CliService verbs (braft's RPC names, plus `list_peers`). */
export const CLI_VERBS = [
  "add_peer",
  "remove_peer",
  "change_peers",
  "reset_peer",
  "snapshot",
  "get_leader",
  "transfer_leader",
  "list_peers",
] as const;

/** One of {@linkcode CLI_VERBS}. */
export type CliVerb = (typeof CLI_VERBS)[number];

/** What the CliService needs from a node (`Node` has all of it). */
export interface CliNode extends RoutedNode {
  /** `NodeOptions.disableCli`. */
  readonly cliDisabled: boolean;
  /** This node's id. */
  nodeId(): PeerId;
  /** The known leader, or null. */
  leaderId(): PeerId | null;
  /** The voters; throws EPERM when not leader. */
  listPeers(): PeerId[];
  /** braft add_peer. */
  addPeer(peer: PeerId): Promise<void>;
  /** braft remove_peer. */
  removePeer(peer: PeerId): Promise<void>;
  /** braft change_peers. */
  changePeers(newPeers: Configuration): Promise<void>;
  /** braft reset_peers. */
  resetPeers(newPeers: Configuration): Status;
  /** braft transfer_leadership_to. */
  transferLeadershipTo(peer: PeerId): Status;
  /** braft snapshot. */
  snapshot(): Promise<void>;
}

/** Where the CliService finds nodes (a `NodeManager`). */
export interface CliNodeSource {
  /** The nodes of a group served on this endpoint. */
  nodesOf(groupId: string): RoutedNode[];
}

/**
 * Handles one CliService request given as an already-decoded object (e.g. the JSON body of
 * `POST /raft/cli/<verb>`).
 *
 * @param manager The endpoint's nodes (its `NodeManager`).
 * @param verb One of {@linkcode CLI_VERBS}.
 * @param body The request fields (see the module table).
 * @returns The response object.
 * @throws {RaftException} EINVAL (unknown verb, a field missing or of the wrong type, an
 *   ambiguous node), ENOENT (unknown group or peer), EACCES (`disableCli`), EAGAIN (unknown
 *   leader), or the node's own error (EPERM not leader, EBUSY, ECATCHUP, ...).
 */
export async function handleCliRequest(
  manager: CliNodeSource,
  verb: string,
  body: unknown,
): Promise<Record<string, unknown>> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw RaftException.of(RaftError.EINVAL, `Cannot ${verb}: the request must be an object`);
  }
  const req = new Request(verb, body as Record<string, unknown>);
  const group = req.groupId();
  switch (verb as CliVerb) {
    case "add_peer":
    case "remove_peer": {
      const peer = req.peer("peer_id", true)!;
      const node = findNode(manager, group, req.peer("leader_id", false));
      const old = node.listPeers();
      if (verb === "add_peer") {
        await node.addPeer(peer);
        const next = new Configuration(old);
        next.add(peer);
        return { old_peers: old.map(String), new_peers: next.peers.map(String) };
      }
      await node.removePeer(peer);
      return {
        old_peers: old.map(String),
        new_peers: old.filter((p) => !p.equals(peer)).map(String),
      };
    }
    case "change_peers": {
      const conf = req.conf("new_peers", true)!;
      const node = findNode(manager, group, req.peer("leader_id", false));
      const old = node.listPeers();
      await node.changePeers(conf);
      return { old_peers: old.map(String), new_peers: conf.peers.map(String) };
    }
    case "reset_peer": {
      const conf = req.conf("new_peers", true)!;
      req.conf("old_peers", false); // braft ignores it; still must be well-formed
      const node = findNode(manager, group, req.peer("peer_id", false));
      throwIfFailed(node.resetPeers(conf));
      return {};
    }
    case "snapshot": {
      await findNode(manager, group, req.peer("peer_id", false)).snapshot();
      return {};
    }
    case "get_leader":
      return { leader_id: getLeader(manager, group, req.peer("peer_id", false)) };
    case "transfer_leader": {
      const target = req.peer("peer_id", false) ?? ANY_PEER;
      const node = findNode(manager, group, req.peer("leader_id", false));
      throwIfFailed(node.transferLeadershipTo(target));
      return {};
    }
    case "list_peers": {
      const node = findNode(manager, group, req.peer("peer_id", false));
      return { peers: node.listPeers().map(String) };
    }
    default:
      throw RaftException.of(
        RaftError.EINVAL,
        `Unknown CLI verb "${verb}" (expected one of ${CLI_VERBS.join(", ")})`,
      );
  }
}

/**
 * Handles a decoded CBOR call `{ t: "cli", verb, ...request }` and encodes the response.
 *
 * @param manager The endpoint's nodes.
 * @param call The decoded call.
 * @returns The CBOR-encoded response object.
 * @throws {RaftException} As {@linkcode handleCliRequest}; EINVAL if `verb` is not a string.
 */
export async function handleCliCall(
  manager: CliNodeSource,
  call: Record<string, unknown>,
): Promise<Uint8Array> {
  const { t: _t, verb, ...body } = call;
  if (typeof verb !== "string") {
    throw RaftException.of(
      RaftError.EINVAL,
      `Cannot handle CLI call: verb must be a string, not ${typeName(verb)}`,
    );
  }
  return encode(await handleCliRequest(manager, verb, body)) as Uint8Array;
}

/**
 * Encodes a CliService call as `NodeManager` accepts it.
 *
 * @param verb The verb.
 * @param request The request fields.
 * @returns The CBOR bytes of `{ t: "cli", verb, ...request }`.
 */
export function encodeCliCall(verb: CliVerb, request: Record<string, unknown>): Uint8Array {
  return encode({ t: CLI_CALL_TYPE, verb, ...request }) as Uint8Array;
}

/**
 * Decodes a CliService response.
 *
 * @param verb The verb (for messages).
 * @param bytes The response bytes.
 * @returns The response object.
 * @throws {RaftException} EINVAL if the bytes are not a CBOR map.
 */
export function decodeCliResponse(verb: string, bytes: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = decode(bytes);
  } catch {
    throw RaftException.of(RaftError.EINVAL, `Cannot read ${verb} response: not CBOR`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw RaftException.of(RaftError.EINVAL, `Cannot read ${verb} response: expected a map`);
  }
  return value as Record<string, unknown>;
}

/** A request's fields, checked one by one with errors that name the field. */
class Request {
  readonly verb: string;
  readonly body: Record<string, unknown>;

  constructor(verb: string, body: Record<string, unknown>) {
    this.verb = verb;
    this.body = body;
  }

  #bad(field: string, why: string): never {
    throw RaftException.of(RaftError.EINVAL, `Cannot ${this.verb}: ${field} ${why}`);
  }

  groupId(): string {
    const g = this.body.group_id;
    if (typeof g !== "string" || g === "") this.#bad("group_id", "must be a non-empty string");
    return g;
  }

  /** A peer id field; absent, null or "" is `undefined` unless required. */
  peer(field: string, required: boolean): PeerId | undefined {
    const v = this.body[field];
    if (v === undefined || v === null || v === "") {
      if (required) this.#bad(field, "is required");
      return undefined;
    }
    if (typeof v !== "string") this.#bad(field, `must be a peer id string, not ${typeName(v)}`);
    try {
      return PeerId.parse(v);
    } catch (e) {
      return this.#bad(field, `does not parse: ${(e as Error).message}`);
    }
  }

  /** A list of peers: an array of peer id strings or a comma-separated string. */
  conf(field: string, required: boolean): Configuration | undefined {
    const v = this.body[field];
    if (v === undefined || v === null) {
      if (required) this.#bad(field, "is required");
      return undefined;
    }
    if (typeof v === "string") {
      try {
        return Configuration.parse(v);
      } catch (e) {
        return this.#bad(field, `does not parse: ${(e as Error).message}`);
      }
    }
    if (!Array.isArray(v)) this.#bad(field, `must be an array of peer ids, not ${typeName(v)}`);
    const conf = new Configuration();
    for (const [i, p] of v.entries()) {
      if (typeof p !== "string") {
        this.#bad(`${field}[${i}]`, `must be a peer id string, not ${typeName(p)}`);
      }
      try {
        conf.add(PeerId.parse(p));
      } catch (e) {
        this.#bad(`${field}[${i}]`, `does not parse: ${(e as Error).message}`);
      }
    }
    return conf;
  }
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (v instanceof Uint8Array) return "bytes";
  return typeof v;
}

function isCliNode(n: RoutedNode): n is CliNode {
  const c = n as Partial<CliNode>;
  return typeof c.listPeers === "function" && typeof c.addPeer === "function";
}

/** braft `CliServiceImpl::get_node`: the node a request names, with the lookup rules. */
function findNode(manager: CliNodeSource, group: string, peer: PeerId | undefined): CliNode {
  const nodes = manager.nodesOf(group).filter(isCliNode);
  let node: CliNode;
  if (peer !== undefined) {
    const found = nodes.find((n) => n.peerKey === peer.key());
    if (found === undefined) {
      throw RaftException.of(RaftError.ENOENT, `Cannot find node ${peer} of group "${group}" here`);
    }
    node = found;
  } else {
    if (nodes.length === 0) {
      throw RaftException.of(RaftError.ENOENT, `Cannot find a node of group "${group}" here`);
    }
    if (nodes.length > 1) {
      throw RaftException.of(
        RaftError.EINVAL,
        `Cannot choose a node: peer must be specified since there are ${nodes.length} nodes of group "${group}" here`,
      );
    }
    node = nodes[0]!;
  }
  if (node.cliDisabled) {
    throw RaftException.of(
      RaftError.EACCES,
      `CliService is not allowed to access node ${node.nodeId()} (disableCli)`,
    );
  }
  return node;
}

/** braft `get_leader`: no `disableCli` check, any local node of the group may answer. */
function getLeader(manager: CliNodeSource, group: string, peer: PeerId | undefined): string {
  let nodes = manager.nodesOf(group).filter(isCliNode);
  if (peer !== undefined) nodes = nodes.filter((n) => n.peerKey === peer.key());
  if (nodes.length === 0) {
    throw RaftException.of(
      RaftError.ENOENT,
      peer === undefined
        ? `No nodes of group "${group}" here`
        : `Cannot find node ${peer} of group "${group}" here`,
    );
  }
  for (const n of nodes) {
    const leader = n.leaderId();
    if (leader !== null && !leader.isEmpty()) return leader.toString();
  }
  throw RaftException.of(RaftError.EAGAIN, "Unknown leader");
}

function throwIfFailed(st: Status): void {
  if (!st.ok()) throw new RaftException(st);
}
