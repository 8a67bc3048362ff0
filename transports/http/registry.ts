/**
 * Which Hono apps are being served, and the largest message limit of the transports mounted
 * on each (Bun needs it when the server starts).
 *
 * @module
 */

import type { Hono } from "hono";

/** Any Hono app, whatever its env, schema and base path. */
// deno-lint-ignore no-explicit-any
export type AnyHono = Hono<any, any, any>;

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

/** @internal Marks `app` served (`true`) or not. */
export function setServing(app: AnyHono, on: boolean): void {
  if (on) serving.add(app);
  else serving.delete(app);
}

/** @internal Records a mounted transport's message limit. */
export function noteMountedLimit(app: AnyHono, bytes: number): void {
  mountedLimit.set(app, Math.max(mountedLimit.get(app) ?? 0, bytes));
}

/** @internal The largest limit mounted on `app`, or 0. */
export function mountedLimitOf(app: AnyHono): number {
  return mountedLimit.get(app) ?? 0;
}
