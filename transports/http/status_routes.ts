/**
 * `/raft_stat` and `/flags` as JSON (braft's builtin `raft_stat` and `flags` services). The
 * HTML pages for people come with the operate issue; these are what scripts and tests read.
 *
 * @module
 */

import type { NodeStatus } from "../../src/node/options.ts";
import { RaftError } from "../../src/errors/status.ts";
import { flags } from "../../src/util/flags.ts";
import { errorResponse } from "./http_call.ts";
import type { AnyHono } from "./registry.ts";

/** A node that can describe itself (every `Node` can). */
export interface DescribableNode {
  /** The raft group. */
  readonly groupId: string;
  /** braft's raft_stat fields. */
  describe(): NodeStatus;
}

/**
 * Adds `GET /raft_stat` (every node served here), `GET /raft_stat/<group>` (one group; 404 JSON
 * when none of its nodes is served here) and `GET /flags` (every raft_* flag and its value).
 *
 * @param app The user's Hono app.
 * @param nodes The nodes served on this endpoint, read at each request.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { mountStatusRoutes } from "./status_routes.ts";
 * import assert from "node:assert/strict";
 *
 * const app = new Hono();
 * mountStatusRoutes(app, () => []);
 * const res = await app.request("/flags");
 * assert.equal((await res.json()).raft_sync, true);
 * assert.equal((await app.request("/raft_stat/nope")).status, 404);
 * ```
 */
export function mountStatusRoutes(app: AnyHono, nodes: () => readonly DescribableNode[]): void {
  app.get("/raft_stat", () => Response.json({ nodes: nodes().map((n) => n.describe()) }));
  app.get("/raft_stat/:group", (c) => {
    const group = lastSegment(c.req.raw.url);
    const found = nodes().filter((n) => n.groupId === group);
    if (found.length === 0) {
      return errorResponse(404, RaftError.ENOENT, `Group "${group}" is not served here`);
    }
    return Response.json({ nodes: found.map((n) => n.describe()) });
  });
  app.get("/flags", () => Response.json({ ...flags }));
}

/**
 * The last path segment of a URL, percent-decoded (`""` when it does not decode).
 *
 * @param url A request URL.
 * @returns The segment.
 * @internal
 */
export function lastSegment(url: string): string {
  const path = new URL(url).pathname;
  try {
    return decodeURIComponent(path.slice(path.lastIndexOf("/") + 1));
  } catch {
    return "";
  }
}
