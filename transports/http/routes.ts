/**
 * `mountTransport`: adds the raft routes (`GET /raft/ws`, `POST /raft/call`) to a user's
 * Hono app, so raft shares the app's port and the user's routes keep working.
 *
 * @module
 */

import { RaftError, RaftException } from "../../src/errors/status.ts";
import { CALL_PATH, errorResponse, WS_PATH } from "./http_call.ts";
import type { HttpTransport } from "./http_transport.ts";
import { type AnyHono, isServing, noteMountedLimit } from "./registry.ts";
import { upgradeToSocket } from "./runtime.ts";

/**
 * Mounts `transport`'s receiving side on `app`: `GET /raft/ws` (the peer WebSocket, accepted
 * through Deno's, Bun's or `@hono/node-server`'s upgrade, picked by runtime) and `POST /raft/call`. Serve the app with
 * `serve` (which also hands Bun its WebSocket handler).
 *
 * @param app The user's Hono app, not yet served.
 * @param transport The transport whose handler receives the traffic, or a function returning
 *   it (for a transport created after the server is up, e.g. when port 0 picked the port);
 *   while that returns `undefined`, the routes answer 503.
 * @throws {RaftException} EPERM if the app is already being served.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { HttpTransport, mountTransport, serve } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const app = new Hono();
 * app.get("/hello", (c) => c.text("hi")); // the user's own route
 * const t = new HttpTransport("127.0.0.1:0");
 * mountTransport(app, t);
 * const server = await serve(app, { hostname: "127.0.0.1", port: 0 });
 * const res = await fetch(`http://127.0.0.1:${server.port}/hello`);
 * assert.equal(await res.text(), "hi");
 * await t.close();
 * await server.shutdown();
 * ```
 */
export function mountTransport(
  app: AnyHono,
  transport: HttpTransport | (() => HttpTransport | undefined),
): void {
  if (isServing(app)) {
    throw RaftException.of(
      RaftError.EPERM,
      "Cannot mount raft routes on an app that is already being served",
    );
  }
  const current = typeof transport === "function" ? transport : () => transport;
  if (typeof transport !== "function") noteMountedLimit(app, transport.maxMessageBytes);
  app.get(WS_PATH, (c) => {
    const transport = current();
    if (transport === undefined) return notYet();
    if (transport.closed) {
      return errorResponse(503, RaftError.ESHUTDOWN, `Endpoint "${transport.endpoint}" is closed`);
    }
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      return errorResponse(426, RaftError.EINVAL, "Expected a WebSocket upgrade");
    }
    const events = transport.acceptSocket();
    const refused = (e: unknown): Response => {
      events.onClose(1006, "");
      return errorResponse(
        400,
        RaftError.EINVAL,
        `Cannot upgrade to a WebSocket: ${e instanceof Error ? e.message : String(e)}`,
      );
    };
    let res: Response | Promise<Response> | null;
    try {
      res = upgradeToSocket(c, events);
    } catch (e) {
      return refused(e);
    }
    if (res instanceof Promise) return res.catch(refused);
    if (res === null) {
      events.onClose(1006, "");
      return errorResponse(
        501,
        RaftError.EINVAL,
        "Cannot accept WebSockets here: serve the app with serve()",
      );
    }
    return res;
  });
  app.post(CALL_PATH, (c) => current()?.handleCall(c.req.raw) ?? notYet());
}

function notYet(): Response {
  return errorResponse(503, RaftError.EHOSTUNREACH, "No raft transport is mounted here yet");
}
