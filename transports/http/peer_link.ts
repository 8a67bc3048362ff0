/**
 * `PeerLink`: this endpoint's one outgoing WebSocket to one peer, with its handshake,
 * coalesced batches, multiplexed calls and reconnect backoff.
 *
 * States: `idle` (no socket, no timer) → `connecting` (socket opening or handshaking) →
 * `open`; a failed attempt or a lost socket → `backoff` (one timer; the peer is known down,
 * calls fail fast) → `connecting` again if anything was sent meanwhile, else `idle`.
 *
 * @module
 */

import { RaftError, RaftException } from "../../src/errors/status.ts";
import { closeSocket } from "./close_socket.ts";
import type { CallOptions } from "../transport.ts";
import { clientProof, verifyServerProof } from "./auth.ts";
import { type ClientSocket, openClientSocket } from "./client_socket.ts";
import { CloseCode, type TransportContext } from "./context.ts";
import { WS_PATH } from "./http_call.ts";
import { type Flushable, Outbox } from "./outbox.ts";
import {
  decodeBatch,
  decodeHello,
  decodeWelcome,
  encodeAuth,
  type Hello,
  type Item,
  ItemKind,
  itemSize,
  MsgType,
  NONCE_BYTES,
  WireError,
} from "./wire.ts";

const FROM_SERVER = new Set<number>([ItemKind.RESPONSE, ItemKind.ERROR]);
/** Most bytes of frames held while a socket opens. */
const CONNECTING_BYTES = 4 * 1024 * 1024;

type State = "idle" | "connecting" | "open" | "backoff" | "closed";

interface PendingCall {
  resolve(bytes: Uint8Array): void;
  reject(e: RaftException): void;
}

/** The outgoing connection to one peer. */
export class PeerLink implements Flushable {
  readonly to: string;
  #ctx: TransportContext;
  #state: State = "idle";
  #ws: ClientSocket | null = null;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #failures = 0;
  #everOpened = false;
  #demand = false;
  #peerMax = 0;
  #outbox = new Outbox();
  #pending = new Map<number, PendingCall>();
  #nextId = 1;

  /**
   * Creates an idle link.
   *
   * @param ctx The owning transport.
   * @param to The peer's endpoint.
   */
  constructor(ctx: TransportContext, to: string) {
    this.#ctx = ctx;
    this.to = to;
  }

  /** The current state (for tests and stats). */
  get state(): State {
    return this.#state;
  }

  /**
   * Queues a frame for the next batch (also while the socket opens, up to 4 MiB), or drops it
   * (peer in backoff, back-pressure, too large).
   *
   * @param frame The bytes.
   */
  send(frame: Uint8Array): void {
    const stats = this.#ctx.stats;
    const item: Item = { kind: ItemKind.FRAME, bytes: frame };
    const size = itemSize(item);
    if (this.#state !== "open") {
      this.#want();
      // While the socket opens, frames wait (bounded) and go out once it is open: the first
      // vote request or answer to a peer must not be lost to the handshake, or a new peer's
      // first election (or a transfer to it) fails for want of a socket. A peer in backoff
      // is known down: its frames are dropped.
      if (
        this.#state !== "connecting" ||
        this.#outbox.bytes + size > Math.min(this.#ctx.settings.maxBufferedBytes, CONNECTING_BYTES)
      ) {
        stats.framesDropped++;
        return;
      }
      this.#outbox.push(item, size);
      return;
    }
    const buffered = this.#ws!.bufferedAmount + this.#outbox.bytes;
    if (1 + size > this.#peerMax || buffered + size > this.#ctx.settings.maxBufferedBytes) {
      stats.framesDropped++;
      return;
    }
    this.#outbox.push(item, size);
    this.#ctx.scheduler.schedule(this);
  }

  /**
   * Whether a call should go on the socket (`"socket"`), by HTTP (`"http"`, no socket yet),
   * or fail fast (`"down"`, the peer is in backoff).
   *
   * @returns The route.
   */
  route(): "socket" | "http" | "down" {
    if (this.#state === "open") return "socket";
    this.#want();
    return this.#state === "backoff" ? "down" : "http";
  }

  /**
   * Sends a call on the open socket.
   *
   * @param request The request bytes.
   * @param options Timeout and cancellation.
   * @returns The response bytes.
   */
  call(request: Uint8Array, options: CallOptions): Promise<Uint8Array> {
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0xffffffff ? 1 : this.#nextId + 1;
    const item: Item = { kind: ItemKind.REQUEST, id, bytes: request };
    const size = itemSize(item);
    if (1 + size > this.#peerMax) {
      return Promise.reject(
        RaftException.of(
          RaftError.EINVAL,
          `Cannot call "${this.to}": request of ${request.length} bytes exceeds its limit of ${this.#peerMax}`,
        ),
      );
    }
    return new Promise<Uint8Array>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = (): void => {
        this.#pending.delete(id);
        if (timer !== undefined) clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
      };
      const onAbort = (): void => {
        done();
        reject(RaftException.of(RaftError.ECANCELED, `Call to "${this.to}" was aborted`));
      };
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener("abort", onAbort);
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          done();
          reject(
            RaftException.of(
              RaftError.ETIMEDOUT,
              `Call to "${this.to}" timed out after ${options.timeoutMs} ms`,
            ),
          );
        }, options.timeoutMs);
      }
      this.#pending.set(id, {
        resolve: (bytes) => {
          done();
          resolve(bytes);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
      this.#ctx.stats.callsSent++;
      this.#outbox.push(item, size);
      this.#ctx.scheduler.schedule(this);
    });
  }

  /** Writes the queued items as batch messages. */
  flush(): void {
    const ws = this.#ws;
    if (this.#state !== "open" || ws === null) return;
    const stats = this.#ctx.stats;
    const { messages, frames } = this.#outbox.drain(this.#peerMax, (item) => this.#unsent(item));
    stats.framesSent += frames;
    for (const msg of messages) {
      try {
        ws.send(msg);
      } catch {
        break; // closing: the close handler fails the calls
      }
      stats.messagesSent++;
      stats.bytesSent += msg.length;
    }
  }

  /** Closes the socket, cancels the timer and fails pending calls with ESHUTDOWN. */
  close(): void {
    if (this.#state === "closed") return;
    this.#setState("closed");
    this.#clearTimer();
    const ws = this.#ws;
    this.#ws = null;
    if (ws !== null) {
      detach(ws);
      try {
        ws.close(CloseCode.GOING_AWAY, "Transport closed");
      } catch { /* already closed */ }
    }
    this.#failAll(
      RaftException.of(RaftError.ESHUTDOWN, `Endpoint "${this.#ctx.endpoint}" was closed`),
    );
  }

  #unsent(item: Item): void {
    if (item.kind === ItemKind.FRAME) this.#ctx.stats.framesDropped++;
    else if (item.kind === ItemKind.REQUEST) {
      this.#pending.get(item.id)?.reject(
        RaftException.of(RaftError.EINVAL, `Request too large for "${this.to}"`),
      );
    }
  }

  /** Something wants the peer: connect now, or after the backoff timer. */
  #want(): void {
    if (this.#state === "idle") this.#connect();
    else if (this.#state === "backoff") this.#demand = true;
  }

  #setState(state: State): void {
    if (this.#state === "open") this.#ctx.stats.openOutbound--;
    if (state === "open") this.#ctx.stats.openOutbound++;
    this.#state = state;
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #connect(): void {
    this.#setState("connecting");
    this.#demand = false;
    let ws: ClientSocket;
    try {
      ws = openClientSocket(this.to, WS_PATH, this.#ctx.settings.maxMessageBytes);
    } catch {
      this.#lost(null);
      return;
    }
    this.#ws = ws;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#lost(ws);
      try {
        ws.close();
      } catch { /* ignore */ }
    }, this.#ctx.settings.connectTimeoutMs);
    let hello: Hello | null = null;
    let nonce: Uint8Array | null = null;
    let phase: "hello" | "proving" | "welcome" | "verifying" | "open" = "hello";
    const fail = (code: number, reason: string, counter?: "malformed" | "rejectedAuth"): void => {
      if (counter !== undefined) this.#ctx.stats[counter]++;
      closeSocket(ws, code, reason);
      this.#lost(ws);
    };
    ws.onmessage = (msg) => {
      if (this.#ws !== ws) return;
      if (typeof msg === "string") {
        return fail(CloseCode.UNSUPPORTED, "Text messages are not accepted", "malformed");
      }
      try {
        if (phase === "open") return this.#onBatch(msg);
        if (phase === "hello") {
          hello = decodeHello(msg);
          const key = this.#ctx.key;
          if (hello.authRequired !== (key !== null)) {
            return fail(
              CloseCode.UNAUTHORIZED,
              key === null ? "Peer requires a secret" : "Peer has no secret",
              "rejectedAuth",
            );
          }
          phase = "proving";
          nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
          const challenge = hello.challenge;
          const endpoint = this.#ctx.endpoint;
          const proof = key === null
            ? Promise.resolve(new Uint8Array(0))
            : clientProof(key, challenge, endpoint);
          proof.then((mac) => {
            if (this.#ws !== ws) return;
            phase = "welcome";
            const maxMessageBytes = this.#ctx.settings.maxMessageBytes;
            ws.send(encodeAuth({ maxMessageBytes, endpoint, nonce: nonce!, mac }));
          }).catch(() => fail(CloseCode.PROTOCOL, "Cannot sign the challenge"));
          return;
        }
        if (phase === "welcome") {
          const mac = decodeWelcome(msg);
          const key = this.#ctx.key;
          if (key === null) {
            phase = "open";
            return this.#opened(hello!);
          }
          phase = "verifying";
          verifyServerProof(key, mac, nonce!, hello!.challenge).then((ok) => {
            if (this.#ws !== ws) return;
            if (!ok) return fail(CloseCode.UNAUTHORIZED, "Wrong server proof", "rejectedAuth");
            phase = "open";
            this.#opened(hello!);
          }).catch(() => fail(CloseCode.PROTOCOL, "Cannot verify the server proof"));
          return;
        }
        fail(CloseCode.PROTOCOL, `Unexpected message during the handshake`, "malformed");
      } catch (err) {
        fail(
          CloseCode.INVALID,
          err instanceof WireError ? err.message : "Malformed message",
          "malformed",
        );
      }
    };
    ws.onclose = () => this.#lost(ws);
  }

  #opened(hello: Hello): void {
    this.#clearTimer();
    this.#peerMax = Math.min(hello.maxMessageBytes, this.#ctx.settings.maxMessageBytes);
    this.#failures = 0;
    const stats = this.#ctx.stats;
    stats.connects++;
    if (this.#everOpened) stats.reconnects++;
    this.#everOpened = true;
    this.#setState("open");
    if (this.#outbox.length > 0) this.#ctx.scheduler.schedule(this);
  }

  #onBatch(msg: Uint8Array): void {
    const stats = this.#ctx.stats;
    if (msg.length > this.#ctx.settings.maxMessageBytes) {
      throw new WireError(`Message of ${msg.length} bytes exceeds the limit`);
    }
    if (msg[0] !== MsgType.BATCH) throw new WireError(`Unexpected message type ${msg[0]}`);
    const items = decodeBatch(msg, FROM_SERVER);
    stats.messagesReceived++;
    stats.bytesReceived += msg.length;
    for (const item of items) {
      if (item.kind === ItemKind.RESPONSE) {
        this.#pending.get(item.id)?.resolve(item.bytes);
      } else if (item.kind === ItemKind.ERROR) {
        this.#pending.get(item.id)?.reject(
          RaftException.of(item.code === 0 ? RaftError.EIO : item.code, item.message),
        );
      }
    }
  }

  /** The socket `ws` is gone (or never came): fail its calls and back off. */
  #lost(ws: ClientSocket | null): void {
    if (this.#ws !== ws || this.#state === "closed") return;
    const wasOpen = this.#state === "open";
    if (ws !== null) detach(ws);
    this.#ws = null;
    this.#clearTimer();
    for (const item of this.#outbox.discard()) {
      if (item.kind === ItemKind.FRAME) this.#ctx.stats.framesDropped++;
    }
    this.#failAll(
      RaftException.of(
        RaftError.EHOSTUNREACH,
        wasOpen ? `Connection to "${this.to}" was lost` : `Cannot connect to "${this.to}"`,
      ),
    );
    if (!wasOpen) this.#ctx.stats.connectFailures++;
    this.#failures++;
    this.#setState("backoff");
    const { backoffMinMs, backoffMaxMs } = this.#ctx.settings;
    const base = Math.min(backoffMaxMs, backoffMinMs * 2 ** Math.min(this.#failures - 1, 30));
    const delay = base / 2 + Math.random() * (base / 2);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.#state !== "backoff") return;
      if (this.#demand) this.#connect();
      else this.#setState("idle");
    }, delay);
  }

  #failAll(e: RaftException): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(e);
  }
}

function detach(ws: ClientSocket): void {
  ws.onmessage = null;
  ws.onclose = null;
}
