/**
 * Which Hono apps are being served, and the largest message limit of the transports mounted
 * on each (Bun needs it when the server starts).
 *
 * @module
 */

/** The part of a request context the raft routes read (Hono's `Context` fits). */
export interface RouteContext {
  /** The request. */
  req: {
    /** The runtime's original request. */
    raw: Request;
    /** A request header. */
    header(name: string): string | undefined;
  };
  /** What the server passed as the fetch handler's second argument (Bun's server). */
  env: unknown;
}

/** A route handler as the raft routes write them. */
export type RouteHandler = (c: RouteContext) => Response | Promise<Response>;

/** The part of a Hono app the raft routes and `serve` use: any `new Hono()` fits. */
export interface AnyHono {
  /** Adds a GET route. */
  get(path: string, handler: RouteHandler): unknown;
  /** Adds a POST route. */
  post(path: string, handler: RouteHandler): unknown;
  /** Answers a request (`env` is the runtime's extra argument). */
  fetch(request: Request, env?: unknown): Response | Promise<Response>;
}

const serving = new WeakSet<AnyHono>();
const mountedLimit = new WeakMap<AnyHono, number>();

/**
 * Whether `app` is being served by `serve` right now (mounting routes on it is then an error).
 *
 * @param app A Hono app.
 * @returns `true` between `serve(app)` and its shutdown.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { isServing, serve } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const app = new Hono();
 * assert.equal(isServing(app), false);
 * const server = await serve(app, { hostname: "127.0.0.1", port: 0 });
 * assert.equal(isServing(app), true);
 * await server.shutdown();
 * assert.equal(isServing(app), false);
 * ```
 */
export function isServing(app: AnyHono): boolean {
  return serving.has(app);
}

const servedPort = new WeakMap<AnyHono, number>();

/**
 * @internal Marks `app` served on `port` (`on`) or not.
 */
export function setServing(app: AnyHono, on: boolean, port = 0): void {
  if (on) {
    serving.add(app);
    servedPort.set(app, port);
  } else {
    serving.delete(app);
    servedPort.delete(app);
  }
}

/**
 * @internal The port `serve` bound for `app`, or 0 when it is not served.
 */
export function servedPortOf(app: AnyHono): number {
  return servedPort.get(app) ?? 0;
}

/** @internal Records a mounted transport's message limit. */
export function noteMountedLimit(app: AnyHono, bytes: number): void {
  mountedLimit.set(app, Math.max(mountedLimit.get(app) ?? 0, bytes));
}

/** @internal The largest limit mounted on `app`, or 0. */
export function mountedLimitOf(app: AnyHono): number {
  return mountedLimit.get(app) ?? 0;
}
