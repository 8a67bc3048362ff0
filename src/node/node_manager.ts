/**
 * `NodeManager`: the nodes served on one endpoint, routed by (groupId, peerId), plus the
 * snapshot file service of that endpoint.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import { decode, encode } from "cbor-x";
import { decodeMessage, encodeMessage, type MessageEnvelope } from "../codec/message_codec.ts";
import {
  decodeHeartbeatBatch,
  encodeHeartbeatBatch,
  HEARTBEAT_BATCH_TAG,
  isCoalescible,
} from "../codec/heartbeat_batch.ts";
import type { Message } from "../core/types.ts";
import { RaftError, RaftException } from "../errors/status.ts";
import type { CallOptions, Transport } from "../../transports/transport.ts";
import { type FileRequest, FileService, parseFileRequest } from "./file_service.ts";
import { CLI_CALL_TYPE, handleCliCall } from "./cli_service.ts";
import { handleReadIndexCall, READ_INDEX_CALL_TYPE } from "./read_index_service.ts";
import {
  EndpointLiveness,
  isControlFrame,
  isPingFrame,
  PING_FRAME,
  type QuiescedNode,
} from "./endpoint_liveness.ts";
import type { Clock } from "../util/clock.ts";

/** What a node registered with a manager must handle. */
export interface RoutedNode {
  /** The raft group. */
  readonly groupId: string;
  /** The node's peer key (`PeerId.key()`). */
  readonly peerKey: string;
  /**
   * A decoded message for this node arrived.
   *
   * @param envelope The message (and copy URI for InstallSnapshot).
   */
  receive(envelope: MessageEnvelope): void;
}

/** Counters for what the manager could not deliver, and for coalesced heartbeats. */
export interface NodeManagerStats {
  /** Frames that failed to decode. */
  malformed: number;
  /** Frames (or heartbeat batch tuples) for a group or peer not served here. */
  unknownTarget: number;
  /** Heartbeat batch frames sent (each carries the heartbeats of many groups). */
  heartbeatFramesOut: number;
  /** Heartbeats and heartbeat answers sent inside batch frames. */
  heartbeatTuplesOut: number;
  /** Heartbeat batch frames received that decoded. */
  heartbeatFramesIn: number;
  /** Heartbeats and heartbeat answers received inside batch frames. */
  heartbeatTuplesIn: number;
}

const managers = new WeakMap<Transport, NodeManager>();

/**
 * Routes one endpoint's traffic to the nodes registered on it. Frames that do not decode, or
 * that name a group or peer not served here, are counted and dropped: a peer can never crash
 * a node with what it sends.
 *
 * @internal
 */
export class NodeManager {
  readonly transport: Transport;
  readonly fileService: FileService = new FileService();
  readonly stats: NodeManagerStats = {
    malformed: 0,
    unknownTarget: 0,
    heartbeatFramesOut: 0,
    heartbeatTuplesOut: 0,
    heartbeatFramesIn: 0,
    heartbeatTuplesIn: 0,
  };
  #nodes = new Map<string, RoutedNode>();
  /** Heartbeats (and their answers) waiting for the flush, by destination endpoint. */
  #buckets = new Map<string, MessageEnvelope[]>();
  #flushHandle: ReturnType<typeof setImmediate> | null = null;

  /**
   * The manager of a transport, created (and listening) on first use.
   *
   * @param transport The endpoint's transport.
   * @returns Its manager.
   */
  static for(transport: Transport): NodeManager {
    let m = managers.get(transport);
    if (m === undefined) {
      m = new NodeManager(transport);
      managers.set(transport, m);
    }
    return m;
  }

  /**
   * The manager of a transport if one was created, without creating (and listening).
   *
   * @param transport The endpoint's transport.
   * @returns Its manager, or `null`.
   */
  static existing(transport: Transport): NodeManager | null {
    return managers.get(transport) ?? null;
  }

  private constructor(transport: Transport) {
    this.transport = transport;
    transport.listen({
      onFrame: (from, frame) => this.#onFrameFrom(from, frame),
      onCall: (_from, request) => this.#onCall(request),
    });
  }

  /**
   * Adds a node.
   *
   * @param node The node.
   * @throws {RaftException} EEXIST if the same (group, peer) is already served here.
   */
  add(node: RoutedNode): void {
    const key = routeKey(node.groupId, node.peerKey);
    if (this.#nodes.has(key)) {
      throw RaftException.of(
        RaftError.EEXIST,
        `Cannot add node ${node.groupId}:${node.peerKey}: it already runs in this process`,
      );
    }
    this.#nodes.set(key, node);
  }

  /**
   * Removes a node (no-op if absent or replaced).
   *
   * @param node The node.
   */
  remove(node: RoutedNode): void {
    const key = routeKey(node.groupId, node.peerKey);
    if (this.#nodes.get(key) === node) this.#nodes.delete(key);
  }

  /**
   * The nodes of a group served here.
   *
   * @param groupId The group.
   * @returns Its nodes.
   */
  nodesOf(groupId: string): RoutedNode[] {
    return [...this.#nodes.values()].filter((n) => n.groupId === groupId);
  }

  /**
   * Every node served here, in the order they were added.
   *
   * @returns The nodes.
   */
  all(): RoutedNode[] {
    return [...this.#nodes.values()];
  }

  /**
   * Sends a raft message to another endpoint. Heartbeats and heartbeat answers wait in a
   * bucket per endpoint and leave, with those of every other group, as one batch frame per
   * endpoint on the next macrotask; anything else is sent at once as its own frame.
   *
   * The flush is a macrotask (not a microtask) so that it runs after every microtask chain
   * started in this turn: all groups ticking in one timer callback, or all nodes answering
   * one received batch, drive their Ready loops in microtasks, and their heartbeats all land
   * in the same bucket before it is flushed.
   *
   * @param endpoint The receiver's endpoint.
   * @param groupId The raft group.
   * @param message The message.
   * @param uri For InstallSnapshot: the copy URI of the snapshot's files.
   */
  send(endpoint: string, groupId: string, message: Message, uri?: string): void {
    this.sendEnvelope(
      endpoint,
      uri === undefined ? { groupId, message } : { groupId, message, uri },
    );
  }

  /**
   * {@linkcode NodeManager.send} with every envelope field (such as `quiesce`).
   *
   * @param endpoint The receiver's endpoint.
   * @param envelope The group, the message, and its envelope fields.
   */
  sendEnvelope(endpoint: string, envelope: MessageEnvelope): void {
    if (!isCoalescible(envelope)) {
      this.#sendAlone(endpoint, envelope);
      return;
    }
    let bucket = this.#buckets.get(endpoint);
    if (bucket === undefined) {
      bucket = [];
      this.#buckets.set(endpoint, bucket);
    }
    bucket.push(envelope);
    this.#flushHandle ??= setImmediate(() => this.#flush());
  }

  /** Sends one message as its own frame, with every envelope field. */
  #sendAlone(endpoint: string, e: MessageEnvelope): void {
    this.transport.send(endpoint, encodeMessage(e.groupId, e.message, e.uri, e.quiesce));
  }

  #flush(): void {
    this.#flushHandle = null;
    const buckets = this.#buckets;
    this.#buckets = new Map();
    for (const [endpoint, envelopes] of buckets) {
      let frames: Uint8Array[];
      try {
        frames = encodeHeartbeatBatch(envelopes);
      } catch {
        // A field out of range (never made by the core): send each as its own frame.
        for (const e of envelopes) this.#sendAlone(endpoint, e);
        continue;
      }
      for (const frame of frames) {
        this.stats.heartbeatFramesOut++;
        this.transport.send(endpoint, frame);
      }
      this.stats.heartbeatTuplesOut += envelopes.length;
    }
  }

  /**
   * Sends a snapshot file request to another endpoint.
   *
   * @param to The endpoint.
   * @param groupId The group (for routing and logs).
   * @param request The request.
   * @param options Timeout and abort.
   * @returns The encoded response.
   */
  callFile(
    to: string,
    groupId: string,
    request: FileRequest,
    options?: CallOptions,
  ): Promise<Uint8Array> {
    return this.transport.call(to, encode({ g: groupId, ...request }) as Uint8Array, options);
  }

  // ------------------------------------------------------------------ endpoint liveness

  #liveness: EndpointLiveness | null = null;

  /** The liveness tracker of quiesced nodes, once a node has quiesced here (else `null`). */
  get liveness(): EndpointLiveness | null {
    return this.#liveness;
  }

  /**
   * A node quiesced: ping the endpoints it depends on and wake it when they go silent.
   *
   * @param node What the tracker needs of the node.
   * @param clock The node's clock (the first quiesced node's clock runs the tracker).
   */
  quiesced(node: QuiescedNode, clock: Clock): void {
    this.#liveness ??= new EndpointLiveness(clock, (to) => this.transport.send(to, PING_FRAME));
    this.#liveness.register(node);
  }

  /**
   * A node woke (or stopped): stop watching it.
   *
   * @param node What was given to `quiesced`.
   */
  unquiesced(node: QuiescedNode): void {
    this.#liveness?.unregister(node);
  }

  /** Any frame counts as a sign of life of its sender; PINGs carry nothing else. */
  #onFrameFrom(from: string, frame: Uint8Array): void {
    this.#liveness?.heard(from);
    if (frame instanceof Uint8Array && isControlFrame(frame)) {
      if (!isPingFrame(frame)) this.stats.malformed++;
      return;
    }
    this.#onFrame(frame);
  }

  #onFrame(frame: Uint8Array): void {
    if (frame instanceof Uint8Array && frame[0] === HEARTBEAT_BATCH_TAG) {
      this.#onBatch(frame);
      return;
    }
    let envelope: MessageEnvelope;
    try {
      envelope = decodeMessage(frame);
    } catch {
      this.stats.malformed++;
      return;
    }
    this.#deliver(envelope);
  }

  /** Hands a message to the node it names, or counts it as for no one served here. */
  #deliver(envelope: MessageEnvelope): void {
    const node = this.#nodes.get(routeKey(envelope.groupId, envelope.message.to));
    if (node === undefined) {
      this.stats.unknownTarget++;
      return;
    }
    node.receive(envelope);
  }

  #onBatch(frame: Uint8Array): void {
    let envelopes: MessageEnvelope[];
    try {
      envelopes = decodeHeartbeatBatch(frame);
    } catch {
      this.stats.malformed++;
      return;
    }
    this.stats.heartbeatFramesIn++;
    this.stats.heartbeatTuplesIn += envelopes.length;
    for (const envelope of envelopes) this.#deliver(envelope);
  }

  #onCall(request: Uint8Array): Promise<Uint8Array> {
    let body: unknown;
    try {
      body = decode(request);
    } catch {
      return Promise.reject(RaftException.of(RaftError.EINVAL, "Cannot decode call: not CBOR"));
    }
    if (
      typeof body !== "object" || body === null || typeof (body as { t?: unknown }).t !== "string"
    ) {
      return Promise.reject(
        RaftException.of(RaftError.EINVAL, "Cannot decode call: expected { t: string }"),
      );
    }
    const b = body as Record<string, unknown>;
    if (b.t === "snapshot_files" || b.t === "get_file") {
      try {
        return this.fileService.handle(parseFileRequest(b));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    if (b.t === CLI_CALL_TYPE) return handleCliCall(this, b);
    if (b.t === READ_INDEX_CALL_TYPE) return handleReadIndexCall(this, b);
    return Promise.reject(RaftException.of(RaftError.EINVAL, `Unknown call "${String(b.t)}"`));
  }
}

function routeKey(groupId: string, peerKey: string): string {
  return `${groupId}\u0000${peerKey}`;
}
