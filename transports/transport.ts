/**
 * The `Transport` port: how raft nodes on different endpoints exchange bytes.
 *
 * A transport is bytes-only and knows nothing about raft: the node layer encodes its
 * messages (groupId, sender, receiver, body) into frames and routes what arrives. Two kinds
 * of traffic ride it:
 *
 * - one-way frames (`send`): raft messages in the etcd style, where a response is just
 *   another message; a frame may be lost, delayed, duplicated or reordered, and raft copes;
 * - calls (`call`): request/response exchanges for snapshot file copy and administration,
 *   which fail with a `RaftException` (EHOSTUNREACH, ETIMEDOUT, ECANCELED) instead of hanging.
 *
 * @module
 */

/** Handles the frames and calls that arrive at one endpoint. */
export interface TransportHandler {
  /**
   * A one-way frame arrived.
   *
   * @param from The sender's endpoint (`host:port`).
   * @param frame The bytes sent.
   */
  onFrame(from: string, frame: Uint8Array): void;
  /**
   * A call arrived; the returned bytes are the response. A rejection is delivered to the
   * caller as a failed call.
   *
   * @param from The caller's endpoint.
   * @param request The request bytes.
   * @returns The response bytes.
   */
  onCall(from: string, request: Uint8Array): Promise<Uint8Array>;
}

/** Options for {@linkcode Transport.call}. */
export interface CallOptions {
  /** Give up after this many milliseconds (rejects with ETIMEDOUT). Default: no limit. */
  timeoutMs?: number;
  /** Abort the call (rejects with ECANCELED). */
  signal?: AbortSignal;
}

/**
 * One endpoint's connection to the network.
 *
 * @example Two endpoints on a MemoryNetwork
 * ```ts
 * import { MemoryNetwork } from "./memory/memory_network.ts";
 * import assert from "node:assert/strict";
 *
 * const net = new MemoryNetwork();
 * const a = net.transport("127.0.0.1:1");
 * const b = net.transport("127.0.0.1:2");
 * b.listen({
 *   onFrame() {},
 *   onCall: (_from, req) => Promise.resolve(req.map((x) => x + 1)),
 * });
 * assert.deepEqual(await a.call("127.0.0.1:2", new Uint8Array([1])), new Uint8Array([2]));
 * await net.close();
 * ```
 */
export interface Transport {
  /** This endpoint, `host:port`. */
  readonly endpoint: string;
  /**
   * Starts delivering incoming frames and calls to `handler`. Only one handler per transport.
   *
   * @param handler The receiver.
   */
  listen(handler: TransportHandler): void;
  /**
   * Sends a one-way frame. Never throws for network trouble: an undeliverable frame is dropped.
   *
   * @param to The receiver's endpoint.
   * @param frame The bytes; the transport may keep a reference, so do not mutate them after.
   */
  send(to: string, frame: Uint8Array): void;
  /**
   * Sends a request and waits for the response.
   *
   * @param to The receiver's endpoint.
   * @param request The request bytes.
   * @param options Timeout and cancellation.
   * @returns The response bytes.
   */
  call(to: string, request: Uint8Array, options?: CallOptions): Promise<Uint8Array>;
  /**
   * Stops listening and fails the calls still waiting on this endpoint with ESHUTDOWN.
   */
  close(): Promise<void>;
}
