/**
 * `InboundSession`: the server side of one peer's WebSocket. Sends the challenge, checks the
 * peer's proof, then hands its frames to the handler and answers its calls (coalesced).
 * Anything malformed, oversized or unproven closes the socket; nothing is delivered first.
 *
 * @module
 */

import { RaftError, RaftException } from "../../src/errors/status.ts";
import { serverProof, verifyClientProof } from "./auth.ts";
import { CloseCode, type TransportContext } from "./context.ts";
import { checkEndpoint } from "./endpoint.ts";
import { type Flushable, Outbox } from "./outbox.ts";
import type { ServerSocket, ServerSocketEvents } from "./runtime.ts";
import {
  decodeAuth,
  decodeBatch,
  encodeHello,
  encodeWelcome,
  type Item,
  ItemKind,
  NONCE_BYTES,
  WireError,
} from "./wire.ts";

const FROM_CLIENT = new Set<number>([ItemKind.FRAME, ItemKind.REQUEST]);
const MAX_EARLY = 64;

/** One accepted peer socket. */
export class InboundSession implements ServerSocketEvents, Flushable {
  #ctx: TransportContext;
  #onEnd: (s: InboundSession) => void;
  #socket: ServerSocket | null = null;
  #phase: "new" | "hello" | "verifying" | "open" | "closed" = "new";
  #challenge = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  #from = "";
  #timer: ReturnType<typeof setTimeout> | null = null;
  #outbox = new Outbox();
  // Messages pipelined behind AUTH while its proof is checked, replayed once accepted.
  #early: Uint8Array[] = [];
  #earlyBytes = 0;
  #inflight = 0;
  #peerMax = 0; // the smaller of both sides' message limits

  /**
   * Creates a session for a socket about to open.
   *
   * @param ctx The owning transport.
   * @param onEnd Called once when the session ends.
   */
  constructor(ctx: TransportContext, onEnd: (s: InboundSession) => void) {
    this.#ctx = ctx;
    this.#onEnd = onEnd;
  }

  /** The endpoint the peer proved (empty before the handshake). */
  get from(): string {
    return this.#from;
  }

  onOpen(socket: ServerSocket): void {
    this.#socket = socket;
    if (this.#ctx.closed) return this.#fail(CloseCode.GOING_AWAY, "Transport closed");
    this.#phase = "hello";
    socket.send(encodeHello({
      authRequired: this.#ctx.key !== null,
      maxMessageBytes: this.#ctx.settings.maxMessageBytes,
      challenge: this.#challenge,
    }));
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#fail(CloseCode.HANDSHAKE_TIMEOUT, "Handshake timed out");
    }, this.#ctx.settings.handshakeTimeoutMs);
  }

  onMessage(data: Uint8Array | string): void {
    if (this.#phase === "closed" || this.#phase === "new") return;
    const stats = this.#ctx.stats;
    if (typeof data === "string") {
      stats.malformed++;
      return this.#fail(CloseCode.UNSUPPORTED, "Text messages are not accepted");
    }
    const max = this.#ctx.settings.maxMessageBytes;
    if (data.length > max) {
      stats.oversize++;
      return this.#fail(CloseCode.TOO_BIG, `Message of ${data.length} bytes exceeds ${max}`);
    }
    try {
      if (this.#phase === "open") return this.#onBatch(data);
      if (this.#phase === "hello") return this.#onAuth(data);
      if (this.#early.length < MAX_EARLY && this.#earlyBytes + data.length <= max) {
        this.#early.push(data);
        this.#earlyBytes += data.length;
        return;
      }
      stats.malformed++;
      this.#fail(CloseCode.PROTOCOL, "Message before the handshake finished");
    } catch (e) {
      stats.malformed++;
      this.#fail(CloseCode.INVALID, e instanceof WireError ? e.message : "Malformed message");
    }
  }

  onClose(): void {
    this.#end();
  }

  /** Closes the socket (transport closing). */
  close(): void {
    this.#fail(CloseCode.GOING_AWAY, "Transport closed");
  }

  /** Writes queued responses. */
  flush(): void {
    const socket = this.#socket;
    if (this.#phase !== "open" || socket === null) return;
    const stats = this.#ctx.stats;
    const { messages } = this.#outbox.drain(this.#peerMax, (item) => {
      if (item.kind === ItemKind.RESPONSE) {
        // Too large to send: tell the caller instead (an ERROR item is small).
        this.#outbox.push({
          kind: ItemKind.ERROR,
          id: item.id,
          code: RaftError.EINVAL,
          message: `Response of ${item.bytes.length} bytes exceeds the message limit`,
        });
        this.#ctx.scheduler.schedule(this);
      }
    });
    for (const msg of messages) {
      socket.send(msg);
      stats.messagesSent++;
      stats.bytesSent += msg.length;
    }
  }

  #onAuth(msg: Uint8Array): void {
    const auth = decodeAuth(msg);
    const bad = checkEndpoint(auth.endpoint);
    if (bad !== null) throw new WireError(bad);
    const key = this.#ctx.key;
    this.#peerMax = Math.min(auth.maxMessageBytes, this.#ctx.settings.maxMessageBytes);
    if (key === null) return this.#accept(auth.endpoint, new Uint8Array(0));
    this.#phase = "verifying";
    verifyClientProof(key, auth.mac, this.#challenge, auth.endpoint)
      .then(async (ok) => {
        if (this.#phase !== "verifying") return;
        if (!ok) {
          this.#ctx.stats.rejectedAuth++;
          return this.#fail(CloseCode.UNAUTHORIZED, "Missing or wrong secret proof");
        }
        const mac = await serverProof(key, auth.nonce, this.#challenge);
        if (this.#phase === "verifying") this.#accept(auth.endpoint, mac);
      })
      .catch(() => this.#fail(CloseCode.PROTOCOL, "Cannot verify the proof"));
  }

  #accept(from: string, mac: Uint8Array): void {
    this.#clearTimer();
    this.#from = from;
    this.#phase = "open";
    this.#ctx.stats.openInbound++;
    this.#socket!.send(encodeWelcome(mac));
    const early = this.#early;
    this.#early = [];
    for (const msg of early) this.onMessage(msg);
  }

  #onBatch(msg: Uint8Array): void {
    const items = decodeBatch(msg, FROM_CLIENT);
    const stats = this.#ctx.stats;
    stats.messagesReceived++;
    stats.bytesReceived += msg.length;
    for (const item of items) {
      if (this.#phase !== "open" || this.#ctx.closed) return;
      if (item.kind === ItemKind.FRAME) this.#ctx.deliverFrame(this.#from, item.bytes);
      else if (item.kind === ItemKind.REQUEST) this.#answer(item.id, item.bytes);
    }
  }

  #answer(id: number, request: Uint8Array): void {
    if (this.#inflight >= this.#ctx.settings.maxInflightCalls) {
      return this.#reply({
        kind: ItemKind.ERROR,
        id,
        code: RaftError.EBUSY,
        message: `Too many calls in flight from "${this.#from}"`,
      });
    }
    this.#inflight++;
    this.#ctx.runCall(this.#from, request).then(
      (bytes) => this.#reply({ kind: ItemKind.RESPONSE, id, bytes }),
      (e: RaftException) =>
        this.#reply({ kind: ItemKind.ERROR, id, code: e.code, message: e.status.message }),
    ).finally(() => this.#inflight--);
  }

  #reply(item: Item): void {
    if (this.#phase !== "open") return;
    this.#outbox.push(item);
    this.#ctx.scheduler.schedule(this);
  }

  #fail(code: number, reason: string): void {
    const socket = this.#socket;
    this.#end();
    socket?.close(code, reason);
  }

  #end(): void {
    if (this.#phase === "closed") return;
    if (this.#phase === "open") this.#ctx.stats.openInbound--;
    this.#phase = "closed";
    this.#clearTimer();
    this.#outbox.discard();
    this.#early = [];
    this.#onEnd(this);
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}

/**
 * Normalizes anything a handler rejected with to a RaftException (non-raft errors are EIO).
 *
 * @param e The rejection.
 * @returns The exception.
 */
export function asRaftException(e: unknown): RaftException {
  if (e instanceof RaftException) return e;
  return RaftException.of(
    RaftError.EIO,
    `Remote call failed: ${e instanceof Error ? e.message : String(e)}`,
  );
}
