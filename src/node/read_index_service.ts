/**
 * Follower reads (etcd's MsgReadIndex forwarding, as a request/response call): a follower or
 * learner asks its leader for a read index, then waits until its own state machine has applied
 * that far.
 *
 * Wire (CBOR, a `Transport` call routed by `NodeManager`):
 * `{ t: "read_index", g: groupId, peer: leaderKey, term }` → `{ index, term }`, where `peer` is
 * the node asked (`host:port:idx`), the request's `term` is the reader's current term and the
 * response's the leader's. A failure travels as the call's `RaftException`: EINVAL (malformed
 * request), ENOENT (no such group or peer here), EPERM (the node asked is not the leader, or is
 * behind the reader's term, stepped down, down or in error).
 *
 * Why this is linearizable: the leader answers only once it has confirmed, after the request
 * arrived (so after the read began), that it still leads — by a heartbeat quorum (ReadIndex)
 * or a valid lease — and its read index is its commit index at that moment. Every write
 * acknowledged before the read began was committed before, and a confirmed leader's commit
 * index covers every committed entry; so the read index is ≥ the index of each such write.
 * Committed entries are the same on every replica, so a follower that has applied the read
 * index reflects them all, and it may serve the read from its own state machine.
 *
 * @module
 */

import { decode, encode } from "cbor-x";
import { PeerId } from "../conf/peer_id.ts";
import { RaftError, RaftException } from "../errors/status.ts";
import type { CallOptions, Transport } from "../../transports/transport.ts";
import type { RoutedNode } from "./node_manager.ts";

/** The call type `NodeManager` routes to {@linkcode handleReadIndexCall}. */
export const READ_INDEX_CALL_TYPE = "read_index";

/** A read index request: the group, the node asked (its leader) and the reader's term. */
export interface ReadIndexRequest {
  /** The raft group. */
  g: string;
  /** The peer key of the node asked (`host:port:idx`). */
  peer: string;
  /** The reader's current term. */
  term: number;
}

/** The leader's answer: its confirmed read index and its term. */
export interface ReadIndexResponse {
  /** The read index (a commit index of the leader, confirmed after the request arrived). */
  index: number;
  /** The leader's term. */
  term: number;
}

/** What a node must offer to answer read index calls (`Node` has it). */
export interface ReadIndexNode extends RoutedNode {
  /** The node's current term. */
  term(): number;
  /** Leader only: a confirmed read index, without waiting for this node's own apply. */
  leaderReadIndex(): Promise<number>;
}

/** Where the handler finds nodes (a `NodeManager`). */
export interface ReadIndexNodeSource {
  /** The nodes of a group served on this endpoint. */
  nodesOf(groupId: string): RoutedNode[];
}

/**
 * Handles a decoded `{ t: "read_index", g, peer, term }` call: the node named asks for a
 * confirmed read index as leader.
 *
 * @param source The endpoint's nodes (its `NodeManager`).
 * @param call The decoded call.
 * @returns The CBOR bytes of `{ index, term }`.
 * @throws {RaftException} EINVAL (a field missing or malformed), ENOENT (no node of the group,
 *   or not that peer, here), EPERM (that node is not the leader, is behind the reader's term,
 *   stepped down, or is down), or the node's own error.
 */
export async function handleReadIndexCall(
  source: ReadIndexNodeSource,
  call: Record<string, unknown>,
): Promise<Uint8Array> {
  const { g, peer, term } = call;
  if (typeof g !== "string" || g === "") {
    throw bad(`g (the group) must be a non-empty string, not ${typeName(g)}`);
  }
  if (typeof peer !== "string") throw bad(`peer must be a peer id string, not ${typeName(peer)}`);
  let key: string;
  try {
    key = PeerId.parse(peer).key();
  } catch (e) {
    throw bad(`peer "${peer}" does not parse: ${(e as Error).message}`);
  }
  if (typeof term !== "number" || !Number.isSafeInteger(term) || term < 0) {
    throw bad(`term must be a non-negative integer, not ${typeName(term)} ${String(term)}`);
  }
  const nodes = source.nodesOf(g);
  if (nodes.length === 0) {
    throw RaftException.of(RaftError.ENOENT, `Cannot read index: no nodes of group "${g}" here`);
  }
  const node = nodes.find((n) => n.peerKey === key);
  if (node === undefined || !isReadIndexNode(node)) {
    throw RaftException.of(
      RaftError.ENOENT,
      `Cannot read index: peer_id ${key} not exist in group "${g}" here`,
    );
  }
  const ownTerm = node.term();
  if (term > ownTerm) {
    // The reader has seen a newer term: this node cannot be its leader any more.
    throw RaftException.of(
      RaftError.EPERM,
      `Not leader: ${key} is at term ${ownTerm}, the reader at term ${term}`,
    );
  }
  const index = await node.leaderReadIndex();
  return encode({ index, term: node.term() } satisfies ReadIndexResponse) as Uint8Array;
}

/**
 * Asks a leader for a read index.
 *
 * @param transport The reader's transport.
 * @param endpoint The leader's endpoint (`host:port`).
 * @param request Group, the leader's peer key and the reader's term.
 * @param options Timeout and abort.
 * @returns The leader's answer.
 * @throws {RaftException} The leader's error (as the call carries it), the transport's
 *   (ETIMEDOUT, EHOSTUNREACH, ECANCELED, ESHUTDOWN), or EINVAL for a malformed answer.
 */
export async function callReadIndex(
  transport: Transport,
  endpoint: string,
  request: ReadIndexRequest,
  options?: CallOptions,
): Promise<ReadIndexResponse> {
  const bytes = await transport.call(
    endpoint,
    encode({ t: READ_INDEX_CALL_TYPE, ...request }) as Uint8Array,
    options,
  );
  let value: unknown;
  try {
    value = decode(bytes);
  } catch {
    throw RaftException.of(RaftError.EINVAL, `Cannot read the read index answer: not CBOR`);
  }
  const r = value as Partial<ReadIndexResponse> | null;
  if (
    typeof r !== "object" || r === null || !Number.isSafeInteger(r.index) || r.index! < 0 ||
    !Number.isSafeInteger(r.term) || r.term! < 0
  ) {
    throw RaftException.of(
      RaftError.EINVAL,
      `Cannot read the read index answer: expected { index, term } as non-negative integers`,
    );
  }
  return { index: r.index!, term: r.term! };
}

function isReadIndexNode(n: RoutedNode): n is ReadIndexNode {
  const r = n as Partial<ReadIndexNode>;
  return typeof r.leaderReadIndex === "function" && typeof r.term === "function";
}

function bad(why: string): RaftException {
  return RaftException.of(RaftError.EINVAL, `Cannot read index: ${why}`);
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (v instanceof Uint8Array) return "bytes";
  return typeof v;
}
