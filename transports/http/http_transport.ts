/**
 * `HttpTransport`: the {@linkcode Transport} over WebSockets and HTTP. Outgoing frames and
 * calls ride one long-lived WebSocket per peer (`ws://host:port/raft/ws`), coalesced per
 * event-loop turn; calls fall back to `POST /raft/call` while no socket is open. The receiving
 * side is mounted on a Hono app with {@linkcode mountTransport} and served with `serve`.
 *
 * @module
 */

import { RaftError, RaftException } from "../../src/errors/status.ts";
import { flags } from "../../src/util/flags.ts";
import type { CallOptions, Transport, TransportHandler } from "../transport.ts";
import { FROM_HEADER, SharedKey } from "./auth.ts";
import {
  type HttpTransportStats,
  newStats,
  type Settings,
  type TransportContext,
} from "./context.ts";
import { checkEndpoint } from "./endpoint.ts";
import { errorResponse, httpStatusOf, postCall, readProvenBody } from "./http_call.ts";
import { asRaftException, InboundSession } from "./inbound.ts";
import { FlushScheduler } from "./outbox.ts";
import { PeerLink } from "./peer_link.ts";
import type { ServerSocketEvents } from "./runtime.ts";
import { MIN_MESSAGE_LIMIT } from "./wire.ts";

export type { HttpTransportStats } from "./context.ts";

/** Options for {@linkcode HttpTransport}. */
export interface HttpTransportOptions {
  /**
   * Shared secret every peer must prove (HMAC-SHA256 challenge on sockets, a signed header on
   * HTTP calls). Default: none (anyone who can reach the port may talk to it).
   */
  secret?: string;
  /** Largest WebSocket message or POST body accepted and sent. Default `flags.raft_max_body_size` + 1 MiB. */
  maxMessageBytes?: number;
  /** Frames are dropped while a socket has more than this many bytes unsent. Default 16 MiB. */
  maxBufferedBytes?: number;
  /** First reconnect delay in ms (jittered, doubling). Default 50. */
  backoffMinMs?: number;
  /** Longest reconnect delay in ms. Default 2000. */
  backoffMaxMs?: number;
  /** An outgoing socket must finish its handshake in this many ms. Default 5000. */
  connectTimeoutMs?: number;
  /** An incoming socket must prove itself in this many ms. Default 10000. */
  handshakeTimeoutMs?: number;
  /** How far an HTTP call's signed timestamp may be from the receiver's clock. Default 60000. */
  authWindowMs?: number;
  /** Calls one incoming socket may have in the handler at once; more fail with EBUSY. Default 4096. */
  maxInflightCalls?: number;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(Number.isFinite(value) && value > 0)) {
    throw RaftException.of(
      RaftError.EINVAL,
      `Invalid ${name} ${value}: expected a positive number`,
    );
  }
  return value;
}

/**
 * The HTTP/WebSocket transport of one endpoint.
 *
 * @example Two endpoints on one machine
 * ```ts
 * import { Hono } from "hono";
 * import { HttpTransport, mountTransport, serve } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const appB = new Hono();
 * const b = new HttpTransport("127.0.0.1:0"); // real port known after serve; fine for a receiver
 * b.listen({ onFrame() {}, onCall: (from, req) => Promise.resolve(req.map((x) => x + 1)) });
 * mountTransport(appB, b);
 * const server = await serve(appB, { hostname: "127.0.0.1", port: 0 });
 *
 * const a = new HttpTransport("127.0.0.1:1");
 * const res = await a.call(`127.0.0.1:${server.port}`, new Uint8Array([1]), { timeoutMs: 5000 });
 * assert.deepEqual(res, new Uint8Array([2]));
 * await a.close();
 * await b.close();
 * await server.shutdown();
 * ```
 */
export class HttpTransport implements Transport {
  /** This endpoint, `host:port`: what peers see as `from`. */
  readonly endpoint: string;
  #key: SharedKey | null;
  #settings: Settings;
  #stats: HttpTransportStats = newStats();
  #scheduler = new FlushScheduler();
  #handler: TransportHandler | null = null;
  #closed = false;
  #links = new Map<string, PeerLink>();
  #sessions = new Set<InboundSession>();
  #httpCalls = new Set<AbortController>();
  #ctx: TransportContext;

  /**
   * Creates the transport. Nothing is opened until the first `send`/`call`, and nothing is
   * received until it is mounted on a served app.
   *
   * @param endpoint This endpoint, `host:port` (IPv4, hostname or `[v6]:port`).
   * @param options Secret, limits, timings.
   * @throws {RaftException} EINVAL for a malformed endpoint or option.
   */
  constructor(endpoint: string, options: HttpTransportOptions = {}) {
    const bad = checkEndpoint(endpoint);
    if (bad !== null) throw RaftException.of(RaftError.EINVAL, bad);
    this.endpoint = endpoint;
    if (options.secret !== undefined && options.secret.length === 0) {
      throw RaftException.of(RaftError.EINVAL, "Invalid secret: expected a non-empty string");
    }
    this.#key = options.secret !== undefined ? new SharedKey(options.secret) : null;
    const maxMessageBytes = Math.floor(
      positive("maxMessageBytes", options.maxMessageBytes, flags.raft_max_body_size + 1024 * 1024),
    );
    if (maxMessageBytes < MIN_MESSAGE_LIMIT || maxMessageBytes > 0xffffffff) {
      throw RaftException.of(
        RaftError.EINVAL,
        `Invalid maxMessageBytes ${maxMessageBytes}: expected ${MIN_MESSAGE_LIMIT} to 2^32-1`,
      );
    }
    this.#settings = {
      maxMessageBytes,
      maxBufferedBytes: positive("maxBufferedBytes", options.maxBufferedBytes, 16 * 1024 * 1024),
      backoffMinMs: positive("backoffMinMs", options.backoffMinMs, 50),
      backoffMaxMs: positive("backoffMaxMs", options.backoffMaxMs, 2000),
      connectTimeoutMs: positive("connectTimeoutMs", options.connectTimeoutMs, 5000),
      handshakeTimeoutMs: positive("handshakeTimeoutMs", options.handshakeTimeoutMs, 10000),
      authWindowMs: positive("authWindowMs", options.authWindowMs, 60000),
      maxInflightCalls: positive("maxInflightCalls", options.maxInflightCalls, 4096),
    };
    // deno-lint-ignore no-this-alias
    const self = this;
    this.#ctx = {
      endpoint,
      key: this.#key,
      settings: this.#settings,
      stats: this.#stats,
      scheduler: this.#scheduler,
      get closed() {
        return self.#closed;
      },
      deliverFrame: (from, frame) => this.#deliverFrame(from, frame),
      runCall: (from, request) => this.#runCall(from, request),
    };
  }

  /** Counters of what the transport did (a snapshot copy). */
  get stats(): HttpTransportStats {
    return { ...this.#stats };
  }

  /** Largest WebSocket message or POST body this endpoint accepts. */
  get maxMessageBytes(): number {
    return this.#settings.maxMessageBytes;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The state of the outgoing socket to `to`: `"open"`, `"connecting"` (socket or handshake
   * under way), `"backoff"` (known down, waiting to retry), `"idle"` (no socket, nothing
   * sent lately), or `"none"` (never sent to, or this transport is closed).
   *
   * @param to A peer endpoint.
   * @returns The state.
   */
  connectionState(to: string): "open" | "connecting" | "backoff" | "idle" | "none" {
    const state = this.#links.get(to)?.state;
    return state === undefined || state === "closed" ? "none" : state;
  }

  /**
   * Starts delivering incoming frames and calls to `handler`.
   *
   * @param handler The receiver.
   * @throws {RaftException} EEXIST if a handler is already set; ESHUTDOWN after close.
   */
  listen(handler: TransportHandler): void {
    if (this.#closed) {
      throw RaftException.of(RaftError.ESHUTDOWN, `Endpoint "${this.endpoint}" is closed`);
    }
    if (this.#handler !== null) {
      throw RaftException.of(
        RaftError.EEXIST,
        `Endpoint "${this.endpoint}" already has a listener`,
      );
    }
    this.#handler = handler;
  }

  /**
   * Sends a one-way frame on the socket to `to`, coalesced with the other frames of this
   * event-loop turn. Never throws: with no open socket (a connect is then started), too much
   * unsent data, or a frame over the peer's limit, the frame is dropped and counted.
   *
   * @param to The receiver's endpoint.
   * @param frame The bytes; kept by reference until flushed.
   */
  send(to: string, frame: Uint8Array): void {
    if (this.#closed) {
      this.#stats.framesDropped++;
      return;
    }
    const link = this.#link(to);
    if (link === null) {
      this.#stats.framesDropped++;
      return;
    }
    link.send(frame);
  }

  /**
   * Sends a request to `to` and waits for its response: on the open socket, else by HTTP
   * POST while a connect is under way; fails fast while the peer is known down.
   *
   * @param to The receiver's endpoint.
   * @param request The request bytes.
   * @param options Timeout and cancellation.
   * @returns The response bytes.
   * @throws {RaftException} The receiver's code; EHOSTUNREACH (peer down or connection lost),
   *   ETIMEDOUT, ECANCELED, ESHUTDOWN (closed), EINVAL (bad endpoint or request too large).
   */
  call(to: string, request: Uint8Array, options: CallOptions = {}): Promise<Uint8Array> {
    if (this.#closed) {
      return Promise.reject(
        RaftException.of(RaftError.ESHUTDOWN, `Endpoint "${this.endpoint}" is closed`),
      );
    }
    const link = this.#link(to);
    if (link === null) {
      return Promise.reject(RaftException.of(RaftError.EINVAL, checkEndpoint(to)!));
    }
    switch (link.route()) {
      case "socket":
        return link.call(request, options);
      case "down":
        this.#stats.callsFailedFast++;
        return Promise.reject(
          RaftException.of(RaftError.EHOSTUNREACH, `Peer "${to}" is down (reconnecting)`),
        );
      default:
        return this.#callHttp(to, request, options);
    }
  }

  /**
   * Closes outgoing and incoming sockets, cancels reconnect timers and flushes, fails pending
   * calls with ESHUTDOWN and stops delivering to the handler.
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#handler = null;
    this.#scheduler.cancel();
    for (const link of this.#links.values()) link.close();
    this.#links.clear();
    for (const session of [...this.#sessions]) session.close();
    this.#sessions.clear();
    for (const controller of [...this.#httpCalls]) controller.abort();
    return Promise.resolve();
  }

  /**
   * The events for a newly accepted peer socket (used by {@linkcode mountTransport}; other
   * servers can call it from their own upgrade route).
   *
   * @returns The socket's event receiver.
   */
  acceptSocket(): ServerSocketEvents {
    const session = new InboundSession(this.#ctx, (s) => this.#sessions.delete(s));
    this.#sessions.add(session);
    return session;
  }

  /**
   * Answers a `POST /raft/call` request (used by {@linkcode mountTransport}): checks size,
   * caller header and proof, runs `handler.onCall`, and returns 200 with the response bytes
   * or a 4xx/5xx with the JSON body `{ error, code, message }`.
   *
   * @param req The HTTP request.
   * @returns The HTTP response.
   */
  async handleCall(req: Request): Promise<Response> {
    if (this.#closed) {
      return errorResponse(503, RaftError.ESHUTDOWN, `Endpoint "${this.endpoint}" is closed`);
    }
    const from = req.headers.get(FROM_HEADER) ?? "";
    const bad = from === "" ? null : checkEndpoint(from);
    if (bad !== null) {
      await req.body?.cancel().catch(() => {});
      this.#stats.malformed++;
      return errorResponse(400, RaftError.EINVAL, `Bad ${FROM_HEADER} header: ${bad}`);
    }
    const read = await readProvenBody(req, {
      maxBytes: this.#settings.maxMessageBytes,
      key: this.#key,
      from,
      windowMs: this.#settings.authWindowMs,
    });
    if (!read.ok) {
      if (read.reason === "oversize") this.#stats.oversize++;
      else if (read.reason === "auth") this.#stats.rejectedAuth++;
      else this.#stats.malformed++;
      return errorResponse(read.status, read.code, read.message);
    }
    const body = read.bytes;
    try {
      const response = await this.#runCall(from, body);
      return new Response(response as Uint8Array<ArrayBuffer>, {
        status: 200,
        headers: { "content-type": "application/octet-stream" },
      });
    } catch (e) {
      const ex = asRaftException(e);
      return errorResponse(httpStatusOf(ex.code), ex.code, ex.status.message);
    }
  }

  #link(to: string): PeerLink | null {
    let link = this.#links.get(to);
    if (link === undefined) {
      if (checkEndpoint(to) !== null) return null;
      link = new PeerLink(this.#ctx, to);
      this.#links.set(to, link);
    }
    return link;
  }

  async #callHttp(to: string, request: Uint8Array, options: CallOptions): Promise<Uint8Array> {
    this.#stats.callsHttp++;
    const controller = new AbortController();
    this.#httpCalls.add(controller);
    const onAbort = (): void => controller.abort();
    options.signal?.addEventListener("abort", onAbort);
    if (options.signal?.aborted) controller.abort();
    try {
      return await postCall(to, request, {
        key: this.#key,
        from: this.endpoint,
        timeoutMs: options.timeoutMs,
        signal: controller.signal,
        maxResponseBytes: this.#settings.maxMessageBytes,
      });
    } catch (e) {
      if (this.#closed) {
        throw RaftException.of(RaftError.ESHUTDOWN, `Endpoint "${this.endpoint}" was closed`);
      }
      throw e;
    } finally {
      this.#httpCalls.delete(controller);
      options.signal?.removeEventListener("abort", onAbort);
    }
  }

  #deliverFrame(from: string, frame: Uint8Array): void {
    const handler = this.#handler;
    if (handler === null) {
      this.#stats.framesDropped++;
      return;
    }
    this.#stats.framesReceived++;
    try {
      handler.onFrame(from, frame);
    } catch {
      this.#stats.handlerErrors++;
    }
  }

  async #runCall(from: string, request: Uint8Array): Promise<Uint8Array> {
    const handler = this.#handler;
    if (handler === null) {
      throw RaftException.of(
        this.#closed ? RaftError.ESHUTDOWN : RaftError.EHOSTUNREACH,
        `No listener at "${this.endpoint}"`,
      );
    }
    this.#stats.callsReceived++;
    try {
      const response = await handler.onCall(from, request);
      if (!(response instanceof Uint8Array)) {
        throw RaftException.of(RaftError.EIO, "Handler returned a non-Uint8Array response");
      }
      return response;
    } catch (e) {
      throw asRaftException(e);
    }
  }

  /** Keeps options (and the secret) out of `JSON.stringify(transport)`. */
  toJSON(): { endpoint: string; stats: HttpTransportStats } {
    return { endpoint: this.endpoint, stats: this.stats };
  }
}
