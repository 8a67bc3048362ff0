/**
 * Serving on Node: `@hono/node-server` (its HTTP adapter and its WebSocket upgrade helper)
 * with a `ws` server for the upgrades. Both are optional dependencies, imported only on Node
 * the first time a server starts or a socket is upgraded.
 *
 * @module
 */

import { RaftError, RaftException } from "../../src/errors/status.ts";
import { closeSocket } from "./close_socket.ts";
import type { AnyHono, RouteContext } from "./registry.ts";
import type { ServerSocket, ServerSocketEvents } from "./runtime.ts";

// Minimal shapes of the parts of node:net, node:http, ws and @hono/node-server used here, so
// this file type-checks without their typings and Deno and Bun never load them.
interface NetSocket {
  destroy(): void;
  once(event: "close", listener: () => void): void;
}
interface HttpServer {
  address(): { address: string; port: number } | string | null;
  listen(port: number, hostname: string, listener: () => void): void;
  close(callback: (err?: Error) => void): void;
  on(event: "connection", listener: (socket: NetSocket) => void): void;
  once(event: "error", listener: (err: Error) => void): void;
  off(event: "error", listener: (err: Error) => void): void;
}
interface WsSocket {
  readonly bufferedAmount: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
}
interface WsServer {
  readonly clients: Set<WsSocket>;
}
interface WsModule {
  WebSocketServer: new (options: {
    noServer: true;
    maxPayload: number;
    perMessageDeflate: false;
    clientTracking: true;
  }) => WsServer;
}
interface WsContext {
  raw?: unknown;
}
interface WsEvents {
  onOpen(evt: Event, ws: WsContext): void;
  onMessage(evt: MessageEvent, ws: WsContext): void;
  onClose(evt: { code: number; reason: string }, ws: WsContext): void;
  onError(evt: Event, ws: WsContext): void;
}
type Middleware = (c: RouteContext, next: () => Promise<void>) => Promise<Response | void>;
interface NodeServerModule {
  createAdaptorServer(options: {
    fetch: (req: Request, env: unknown) => Response | Promise<Response>;
    overrideGlobalObjects: boolean;
    websocket: { server: WsServer };
  }): HttpServer;
  upgradeWebSocket(
    createEvents: (c: RouteContext) => WsEvents,
    options: { onError: (err: unknown) => void },
  ): Middleware;
}

/** A server started by {@linkcode serveNode}. */
export interface NodeServer {
  /** The address listened on. */
  readonly hostname: string;
  /** The bound port. */
  readonly port: number;
  /** Closes every connection, upgraded ones included; resolves once the port is free. */
  shutdown(): Promise<void>;
}

let loaded: Promise<{ nodeServer: NodeServerModule; ws: WsModule }> | undefined;

/**
 * Imports `@hono/node-server` and `ws` once.
 *
 * @returns Both modules.
 * @throws {RaftException} EINVAL naming the package to install when one is missing.
 */
function load(): Promise<{ nodeServer: NodeServerModule; ws: WsModule }> {
  loaded ??= (async () => {
    const need = async <T>(name: string, load: () => Promise<unknown>): Promise<T> => {
      try {
        return await load() as T;
      } catch (e) {
        throw RaftException.of(
          RaftError.EINVAL,
          `Cannot serve on Node: the optional dependency "${name}" cannot be loaded ` +
            `(${e instanceof Error ? e.message : String(e)}); install it with ` +
            `"npm install @hono/node-server ws"`,
        );
      }
    };
    return {
      nodeServer: await need<NodeServerModule>(
        "@hono/node-server",
        () => import("@hono/node-server"),
      ),
      ws: await need<WsModule>("ws", () => import("ws")),
    };
  })();
  // A failed import is not cached, so installing the package and retrying works.
  loaded.catch(() => loaded = undefined);
  return loaded;
}

/**
 * Serves `app` on Node.
 *
 * @param app The Hono app.
 * @param hostname Address to listen on.
 * @param port Port, 0 for a free one.
 * @param maxPayload `ws`'s own limit on incoming messages (closes with 1009 above it).
 * @returns The running server.
 */
export async function serveNode(
  app: AnyHono,
  hostname: string,
  port: number,
  maxPayload: number,
): Promise<NodeServer> {
  const { nodeServer, ws } = await load();
  const wss = new ws.WebSocketServer({
    noServer: true,
    maxPayload,
    perMessageDeflate: false,
    clientTracking: true,
  });
  const server = nodeServer.createAdaptorServer({
    fetch: (req, env) => app.fetch(req, env),
    overrideGlobalObjects: false, // a library must not replace the process's Request/Response
    websocket: { server: wss },
  });
  // Every TCP connection, so that shutdown can end the upgraded ones and idle keep-alives.
  const sockets = new Set<NetSocket>();
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const bound = typeof address === "object" && address !== null
    ? address
    : { address: hostname, port };
  return {
    hostname: bound.address,
    port: bound.port,
    shutdown() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const client of wss.clients) client.terminate();
      for (const socket of sockets) socket.destroy();
      return closed;
    },
  };
}

function safe(fn: () => void): void {
  try {
    fn();
  } catch {
    // A socket that is already closing refuses sends and closes; nothing to do.
  }
}

/**
 * Upgrades the request in `c` (served by `@hono/node-server` with a `ws` server, as
 * {@linkcode serveNode} does) to a WebSocket whose events go to `events`.
 *
 * @param c The route context; `c.env.incoming` is Node's request.
 * @param events The receiver of the socket's events.
 * @returns The response to return from the route, or `null` when the request did not come
 *   through `@hono/node-server`.
 */
export function upgradeNode(
  c: RouteContext,
  events: ServerSocketEvents,
): Promise<Response> | null {
  const env = c.env as { incoming?: { socket?: NetSocket } } | undefined;
  if (typeof env !== "object" || env === null || env.incoming === undefined) return null;
  let opened = false;
  let ended = false;
  const end = (code: number, reason: string): void => {
    if (ended) return;
    ended = true;
    events.onClose(code, reason);
  };
  // A handshake that dies before the socket opens reports nothing through the helper.
  env.incoming.socket?.once("close", () => {
    if (!opened) end(1006, "");
  });
  return load().then(async ({ nodeServer }) => {
    const middleware = nodeServer.upgradeWebSocket(() => ({
      onOpen(_evt, ctx) {
        opened = true;
        const ws = ctx.raw as WsSocket;
        const socket: ServerSocket = {
          send: (data) => safe(() => ws.send(data)),
          close: (code, reason) => closeSocket(ws, code, reason),
          get bufferedAmount() {
            return ws.bufferedAmount;
          },
        };
        events.onOpen(socket);
      },
      onMessage(evt) {
        const data = evt.data as ArrayBuffer | string;
        events.onMessage(typeof data === "string" ? data : new Uint8Array(data));
      },
      onClose(evt) {
        end(evt.code, evt.reason);
      },
      onError() {}, // a close event follows
    }), { onError: () => {} });
    const res = await middleware(c, () => Promise.resolve());
    // The helper answers 500 when the server has no WebSocket support wired in.
    return res ?? new Response(null, { status: 500 });
  });
}
