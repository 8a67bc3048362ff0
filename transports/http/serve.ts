/**
 * `serve`: starts a Hono app on Deno (`Deno.serve`), Bun (`Bun.serve` with the WebSocket
 * handler raft and hono/bun routes need) or Node (`@hono/node-server` with a `ws` server for
 * upgrades; both optional dependencies, loaded only on Node).
 *
 * @module
 */

import { RaftError, RaftException } from "../../src/errors/status.ts";
import { type AnyHono, mountedLimitOf, setServing } from "./registry.ts";
import { type BunWebSocketHandler, bunWebSocketHandler, runtime } from "./runtime.ts";
import { serveNode } from "./node_server.ts";

/** Options for {@linkcode serve}. */
export interface ServeOptions {
  /** Address to listen on. Default `"0.0.0.0"`. */
  hostname?: string;
  /** Port to listen on; 0 picks a free one. */
  port: number;
  /** Aborting it shuts the server down (as `shutdown()`). */
  signal?: AbortSignal;
}

/** A running server. */
export interface ServeHandle {
  /** The address listened on. */
  readonly hostname: string;
  /** The bound port (the real one when 0 was asked). */
  readonly port: number;
  /**
   * Closes every connection (upgraded WebSockets included) and resolves once the port is
   * free. Calling it again returns the same promise.
   */
  shutdown(): Promise<void>;
}

interface DenoServer {
  addr: { hostname: string; port: number };
  finished: Promise<void>;
}
interface DenoServe {
  serve(
    options: { hostname: string; port: number; signal: AbortSignal; onListen: () => void },
    handler: (req: Request, info: unknown) => Response | Promise<Response>,
  ): DenoServer;
}
interface BunServer {
  hostname?: string;
  port: number;
  stop(closeActiveConnections: boolean): Promise<void> | void;
}
interface BunServe {
  serve(options: {
    hostname: string;
    port: number;
    idleTimeout: number;
    fetch: (req: Request, server: unknown) => Response | Promise<Response>;
    websocket: BunWebSocketHandler;
  }): BunServer;
}

// Bun's and ws's own limit sits above every mounted transport's, so the transport answers
// with 1009.
const DEFAULT_PAYLOAD = 16 * 1024 * 1024;

/**
 * Serves `app` on Deno, Bun or Node. On Node it needs the optional dependencies
 * `@hono/node-server` and `ws`; the user's own WebSocket routes there use `upgradeWebSocket`
 * from `@hono/node-server`.
 *
 * @param app The Hono app (with raft routes mounted by `mountTransport`, and any others).
 * @param options Address, port, abort signal.
 * @returns The running server's handle.
 * @throws {RaftException} EINVAL for a bad port, or on Node when `@hono/node-server` or `ws`
 *   is not installed; EIO if the address cannot be bound; ECANCELED if `signal` is aborted.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { serve } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const app = new Hono().get("/", (c) => c.text("ok"));
 * const server = await serve(app, { hostname: "127.0.0.1", port: 0 });
 * assert.ok(server.port > 0);
 * assert.equal(await (await fetch(`http://127.0.0.1:${server.port}/`)).text(), "ok");
 * await server.shutdown();
 * ```
 */
export async function serve(app: AnyHono, options: ServeOptions): Promise<ServeHandle> {
  const hostname = options.hostname ?? "0.0.0.0";
  const port = options.port;
  if (!(Number.isInteger(port) && port >= 0 && port <= 65535)) {
    throw RaftException.of(RaftError.EINVAL, `Invalid port ${port}: expected 0 to 65535`);
  }
  if (options.signal?.aborted) {
    throw RaftException.of(RaftError.ECANCELED, "Cannot serve: the signal is already aborted");
  }
  let handle: ServeHandle;
  try {
    if (runtime === "deno") handle = serveDeno(app, hostname, port);
    else if (runtime === "bun") handle = await serveBun(app, hostname, port);
    else handle = await serveNode(app, hostname, port, payloadLimit(app));
  } catch (e) {
    if (e instanceof RaftException) throw e;
    throw RaftException.of(
      RaftError.EIO,
      `Cannot serve on ${hostname}:${port}: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  setServing(app, true, handle.port);
  let stopping: Promise<void> | null = null;
  const signal = options.signal;
  const onAbort = (): void => void shutdown();
  const shutdown = (): Promise<void> => {
    stopping ??= handle.shutdown().finally(() => {
      setServing(app, false);
      signal?.removeEventListener("abort", onAbort);
    });
    return stopping;
  };
  signal?.addEventListener("abort", onAbort);
  return { hostname: handle.hostname, port: handle.port, shutdown };
}

function payloadLimit(app: AnyHono): number {
  return Math.max(DEFAULT_PAYLOAD, mountedLimitOf(app) + 1);
}

function serveDeno(app: AnyHono, hostname: string, port: number): ServeHandle {
  const deno = (globalThis as unknown as { Deno: DenoServe }).Deno;
  const controller = new AbortController();
  const server = deno.serve(
    { hostname, port, signal: controller.signal, onListen: () => {} },
    (req, info) => app.fetch(req, info),
  );
  return {
    hostname: server.addr.hostname,
    port: server.addr.port,
    async shutdown() {
      controller.abort(); // closes every connection, upgraded sockets included
      await server.finished;
    },
  };
}

async function serveBun(
  app: AnyHono,
  hostname: string,
  port: number,
): Promise<ServeHandle> {
  const bun = (globalThis as unknown as { Bun: BunServe }).Bun;
  const honoBun = await import("hono/bun");
  const fallback = honoBun.websocket as unknown as Omit<BunWebSocketHandler, "maxPayloadLength">;
  const server = bun.serve({
    hostname,
    port,
    idleTimeout: 0, // a CLI call may wait long (catch-up); shutdown closes idle connections
    fetch: (req, srv) => app.fetch(req, srv),
    websocket: bunWebSocketHandler(
      fallback,
      payloadLimit(app),
    ),
  });
  return {
    hostname: server.hostname ?? hostname,
    port: server.port,
    async shutdown() {
      await server.stop(true); // closes every connection, upgraded sockets included
    },
  };
}
