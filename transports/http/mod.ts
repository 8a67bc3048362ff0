/**
 * The HTTP/WebSocket transport: {@linkcode HttpTransport} (the `Transport` port over one
 * WebSocket per peer, with HTTP POST calls as fallback), {@linkcode mountTransport} (the raft
 * routes on a user's Hono app), {@linkcode serve} (Deno, Bun and Node), and {@linkcode httpCall}
 * (calls from non-peers such as a CLI).
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { HttpTransport, mountTransport, serve } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const app = new Hono();
 * const got: number[] = [];
 * const b = new HttpTransport("127.0.0.1:0");
 * b.listen({ onFrame: (_from, f) => got.push(f[0]!), onCall: (_f, r) => Promise.resolve(r) });
 * mountTransport(app, b);
 * const server = await serve(app, { hostname: "127.0.0.1", port: 0 });
 * const to = `127.0.0.1:${server.port}`;
 *
 * const a = new HttpTransport("127.0.0.1:1");
 * await a.call(to, new Uint8Array([0]), { timeoutMs: 5000 }); // by POST; opens the socket
 * while (a.connectionState(to) !== "open") await new Promise((r) => setTimeout(r, 5));
 * a.send(to, new Uint8Array([7]));
 * await a.call(to, new Uint8Array([0]), { timeoutMs: 5000 }); // on the socket, after the frame
 * assert.deepEqual(got, [7]);
 * await a.close();
 * await b.close();
 * await server.shutdown();
 * ```
 *
 * @module
 */

export {
  HttpTransport,
  type HttpTransportOptions,
  type HttpTransportStats,
} from "./http_transport.ts";
export { mountTransport } from "./routes.ts";
export { addService, type AddServiceOptions, CLI_PATH, RaftService } from "./service.ts";
export { serve, type ServeHandle, type ServeOptions } from "./serve.ts";
export { type AnyHono, isServing, type RouteContext, type RouteHandler } from "./registry.ts";
export type { ServerSocket, ServerSocketEvents } from "./runtime.ts";
export type { CallOptions, Transport, TransportHandler } from "../transport.ts";
export { CALL_PATH, type ErrorBody, httpCall, type HttpCallOptions, WS_PATH } from "./http_call.ts";
export { AUTH_HEADER, FROM_HEADER } from "./auth.ts";
export { CloseCode } from "./context.ts";
