/**
 * What the outgoing links and incoming sessions of one transport share: settings, key,
 * counters, the flush scheduler and the way into the handler.
 *
 * @module
 */

import type { SharedKey } from "./auth.ts";
import type { FlushScheduler } from "./outbox.ts";

/** Counters of what an {@linkcode HttpTransport} did (all only grow, except the `open*`). */
export interface HttpTransportStats {
  /** Frames written to a socket. */
  framesSent: number;
  /** Frames delivered to the handler. */
  framesReceived: number;
  /** Frames dropped: no open socket, back-pressure, too large, closed, no listener. */
  framesDropped: number;
  /** Batch messages written to sockets (frames, requests and responses). */
  messagesSent: number;
  /** Batch messages received on sockets. */
  messagesReceived: number;
  /** Bytes of batch messages written. */
  bytesSent: number;
  /** Bytes of batch messages received. */
  bytesReceived: number;
  /** Calls sent on a socket. */
  callsSent: number;
  /** Calls sent by HTTP POST (no socket open). */
  callsHttp: number;
  /** Calls failed fast because the peer is known to be down. */
  callsFailedFast: number;
  /** Calls received (socket or POST) and handed to the handler. */
  callsReceived: number;
  /** Outgoing sockets that completed the handshake. */
  connects: number;
  /** Of those, the ones that replaced an earlier socket to the same peer. */
  reconnects: number;
  /** Outgoing connection attempts that failed before the handshake completed. */
  connectFailures: number;
  /** Sockets closed and POSTs refused for protocol violations (malformed data). */
  malformed: number;
  /** Sockets closed and POSTs refused because a message or body was too large. */
  oversize: number;
  /** Connections and calls refused for a missing or wrong secret proof (either side). */
  rejectedAuth: number;
  /** Exceptions thrown by `handler.onFrame` (swallowed). */
  handlerErrors: number;
  /** Outgoing sockets open now. */
  openOutbound: number;
  /** Incoming sockets open now (handshake done). */
  openInbound: number;
}

/**
 * A fresh set of counters.
 *
 * @returns All zero.
 */
export function newStats(): HttpTransportStats {
  return {
    framesSent: 0,
    framesReceived: 0,
    framesDropped: 0,
    messagesSent: 0,
    messagesReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    callsSent: 0,
    callsHttp: 0,
    callsFailedFast: 0,
    callsReceived: 0,
    connects: 0,
    reconnects: 0,
    connectFailures: 0,
    malformed: 0,
    oversize: 0,
    rejectedAuth: 0,
    handlerErrors: 0,
    openOutbound: 0,
    openInbound: 0,
  };
}

/** The settings in force, after defaults. */
export interface Settings {
  maxMessageBytes: number;
  maxBufferedBytes: number;
  backoffMinMs: number;
  backoffMaxMs: number;
  connectTimeoutMs: number;
  handshakeTimeoutMs: number;
  authWindowMs: number;
  maxInflightCalls: number;
}

/** The transport as its links and sessions see it. */
export interface TransportContext {
  readonly endpoint: string;
  readonly key: SharedKey | null;
  readonly settings: Settings;
  readonly stats: HttpTransportStats;
  readonly scheduler: FlushScheduler;
  /** The transport was closed. */
  readonly closed: boolean;
  /** Hands a frame to the handler (drops it if there is none). Never throws. */
  deliverFrame(from: string, frame: Uint8Array): void;
  /** Runs a call on the handler; rejects with a RaftException. */
  runCall(from: string, request: Uint8Array): Promise<Uint8Array>;
}

/**
 * WebSocket close codes used by the transport.
 *
 * @example
 * ```ts
 * import { CloseCode } from "./mod.ts";
 * import assert from "node:assert/strict";
 * assert.equal(CloseCode.TOO_BIG, 1009);
 * assert.equal(CloseCode.UNAUTHORIZED, 4401);
 * ```
 */
export const CloseCode = {
  /** The transport or server is going away. */
  GOING_AWAY: 1001,
  /** The peer broke the handshake order. */
  PROTOCOL: 1002,
  /** A text message. */
  UNSUPPORTED: 1003,
  /** A malformed binary message. */
  INVALID: 1007,
  /** A message over the limit. */
  TOO_BIG: 1009,
  /** Missing or wrong secret proof. */
  UNAUTHORIZED: 4401,
  /** The handshake did not finish in time. */
  HANDSHAKE_TIMEOUT: 4408,
} as const;
