/**
 * The one place that knows which runtime we are on, and the runtime-specific half of
 * accepting a WebSocket: Deno's `Deno.upgradeWebSocket`, Bun's `server.upgrade` plus the
 * `websocket` handler that `serve` hands to `Bun.serve`, and on Node the upgrade helper of
 * `@hono/node-server` (in `node_server.ts`, loaded only there).
 *
 * @module
 */

import type { RouteContext } from "./registry.ts";
import { closeSocket } from "./close_socket.ts";
import { upgradeNode } from "./node_server.ts";

/** The JavaScript runtime this process runs on. */
export type Runtime = "deno" | "bun" | "node";

/** Detected once, at import. */
export const runtime: Runtime = "Deno" in globalThis
  ? "deno"
  : "Bun" in globalThis
  ? "bun"
  : "node";

/** An accepted server-side WebSocket, the same on every runtime. */
export interface ServerSocket {
  /** Sends one binary message; does nothing once the socket is closing. */
  send(data: Uint8Array): void;
  /** Closes the socket with a code and reason. */
  close(code: number, reason: string): void;
  /** Bytes queued but not yet written. */
  readonly bufferedAmount: number;
}

/** What happens on an accepted socket. Implementations must not throw. */
export interface ServerSocketEvents {
  /** The socket is open. */
  onOpen(socket: ServerSocket): void;
  /** A message arrived (binary as bytes, text as a string). */
  onMessage(data: Uint8Array | string): void;
  /** The socket closed. */
  onClose(code: number, reason: string): void;
}

// Minimal shapes of the runtime APIs we use, so this file type-checks without their typings.
interface DenoSocket {
  binaryType: string;
  readonly bufferedAmount: number;
  onopen: (() => void) | null;
  onmessage: ((e: { data: ArrayBuffer | string }) => void) | null;
  onclose: ((e: { code: number; reason: string }) => void) | null;
  onerror: (() => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}
interface DenoUpgrade {
  upgradeWebSocket(req: Request): { socket: DenoSocket; response: Response };
}
interface BunServerSocket {
  data: unknown;
  binaryType: string;
  send(data: Uint8Array): number;
  close(code?: number, reason?: string): void;
  getBufferedAmount(): number;
}
interface BunServerLike {
  upgrade(req: Request, options: { data: unknown }): boolean;
}

/** Bun's `websocket` handler shape (the part `serve` uses). */
export interface BunWebSocketHandler {
  /** Largest message Bun accepts before closing with 1009. */
  maxPayloadLength: number;
  /** A socket opened. */
  open(ws: BunServerSocket): void;
  /** A message arrived. */
  message(ws: BunServerSocket, message: string | Uint8Array): void;
  /** A socket closed. */
  close(ws: BunServerSocket, code: number, reason: string): void;
}

const RAFT_SOCKET = Symbol("webraft.socket");

function safe(fn: () => void): void {
  try {
    fn();
  } catch {
    // A socket that is already closing refuses sends and closes; nothing to do.
  }
}

/**
 * Upgrades the request in `c` to a WebSocket whose events go to `events`.
 *
 * @param c The Hono context of a `GET` with `Upgrade: websocket`.
 * @param events The receiver of the socket's events.
 * @returns The response to return from the route (a promise on Node), or `null` if the server
 *   cannot upgrade (Bun without the server in `c.env`, Node without `@hono/node-server`).
 */
export function upgradeToSocket(
  c: RouteContext,
  events: ServerSocketEvents,
): Response | Promise<Response> | null {
  if (runtime === "deno") {
    const deno = (globalThis as unknown as { Deno: DenoUpgrade }).Deno;
    const { socket, response } = deno.upgradeWebSocket(c.req.raw);
    socket.binaryType = "arraybuffer";
    const wrapped: ServerSocket = {
      send: (data) => safe(() => socket.send(data)),
      close: (code, reason) => closeSocket(socket, code, reason),
      get bufferedAmount() {
        return socket.bufferedAmount;
      },
    };
    socket.onopen = () => events.onOpen(wrapped);
    socket.onmessage = (e) =>
      events.onMessage(typeof e.data === "string" ? e.data : new Uint8Array(e.data));
    socket.onclose = (e) => events.onClose(e.code, e.reason);
    socket.onerror = () => {}; // a close event follows
    return response;
  }
  if (runtime === "bun") {
    const env = c.env as { server?: BunServerLike } & Partial<BunServerLike> | undefined;
    const server = env?.server ?? env;
    if (typeof server?.upgrade !== "function") return null;
    if (!server.upgrade(c.req.raw, { data: { [RAFT_SOCKET]: events } })) return null;
    return new Response(null);
  }
  return upgradeNode(c, events);
}

function raftEvents(ws: BunServerSocket): ServerSocketEvents | undefined {
  const data = ws.data as Record<symbol, ServerSocketEvents> | undefined;
  return typeof data === "object" && data !== null ? data[RAFT_SOCKET] : undefined;
}

/**
 * Bun's `websocket` handler: raft sockets go to their events, every other socket to
 * `fallback` (hono/bun's `websocket`, so the user's own `upgradeWebSocket` routes work).
 *
 * @param fallback The handler for sockets not upgraded by raft.
 * @param maxPayloadLength Bun's own limit on incoming messages.
 * @returns The handler to pass to `Bun.serve`.
 */
export function bunWebSocketHandler(
  fallback: Omit<BunWebSocketHandler, "maxPayloadLength">,
  maxPayloadLength: number,
): BunWebSocketHandler {
  return {
    maxPayloadLength,
    open(ws) {
      const events = raftEvents(ws);
      if (events === undefined) return fallback.open(ws);
      ws.binaryType = "uint8array";
      events.onOpen({
        send: (data) => safe(() => ws.send(data)),
        close: (code, reason) => closeSocket(ws, code, reason),
        get bufferedAmount() {
          return ws.getBufferedAmount();
        },
      });
    },
    message(ws, message) {
      const events = raftEvents(ws);
      if (events === undefined) return fallback.message(ws, message);
      events.onMessage(message);
    },
    close(ws, code, reason) {
      const events = raftEvents(ws);
      if (events === undefined) return fallback.close(ws, code, reason);
      events.onClose(code, reason);
    },
  };
}
