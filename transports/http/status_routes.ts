/**
 * `/raft_stat` and `/flags` (braft's builtin `raft_stat` and `flags` services): HTML pages for
 * people, JSON for scripts, braft's `key: value` text for everything else.
 *
 * @module
 */

import type { NodeStatus } from "../../src/node/options.ts";
import { RaftError, RaftException } from "../../src/errors/status.ts";
import { isFlagName, setFlag } from "../../src/util/flags.ts";
import { SharedKey } from "./auth.ts";
import { errorResponse, readProvenBody } from "./http_call.ts";
import { asRaftException } from "./inbound.ts";
import { chooseFormat, escapeHtml, htmlPage, htmlResponse, textResponse } from "./pages/html.ts";
import { flagJson, flagsHtml, flagsJson, flagsText } from "./pages/flags_page.ts";
import { statHtml, statJson, statText } from "./pages/raft_stat_page.ts";
import type { AnyHono, RouteContext } from "./registry.ts";

/** A node that can describe itself (every `Node` can). */
export interface DescribableNode {
  /** The raft group. */
  readonly groupId: string;
  /** braft's raft_stat fields. */
  describe(): NodeStatus;
}

/** Options for {@linkcode mountStatusRoutes}. */
export interface StatusRoutesOptions {
  /**
   * The cluster's shared secret (`addService`'s): `POST /flags/<name>` must then carry the
   * same `x-raft-auth` proof as a CLI call, and the HTML page shows the flags read-only.
   * Default: none (anyone who reaches the port may change runtime flags).
   */
  secret?: string;
  /** How far a proof's timestamp may be from now, in ms. Default 60000. */
  authWindowMs?: number;
}

/** Largest `POST /flags/<name>` body. */
const MAX_FLAG_BODY = 64 * 1024;

/**
 * Adds the status routes to the app:
 *
 * - `GET /raft_stat`: every node served on this endpoint; `GET /raft_stat/<group>`: that
 *   group's nodes (404 when none is served here: JSON error body, or an HTML page for
 *   browsers).
 * - `GET /flags`: every raft_* flag with its value, default, whether it may change at runtime,
 *   when it is read, and a description.
 * - `POST /flags/<name>` with JSON `{"value": v}` or a form `value=v`: changes a runtime flag
 *   (see `setFlag`); unknown name 404, bad value or static flag 400, nothing changes on error.
 *   With a secret it needs the `x-raft-auth` proof over the body (from `""`), else 401. A
 *   browser's cross-origin form post is refused (403). It answers the flag's new state as
 *   JSON, or 303 back to `/flags` for an HTML form.
 *
 * Formats: `?format=html|json|text`, else the `Accept` header (HTML or JSON), else text (as
 * braft prints to non-browsers). HTML pages of `/raft_stat` reload every 2 s (`?refresh=N`
 * seconds, 0 = off) and allow no scripts.
 *
 * `/raft_stat` JSON is `{ "nodes": [ … ] }`, one object per node with braft's field names:
 * `group_id`, `peer_id`, `state`, `readonly` and `quiesced` (booleans), `term`, `conf_index`, `peers`,
 * `learners`, `old_peers` (arrays of peer ids), `leader` (`""` when unknown),
 * `election_timer`, `vote_timer`, `stepdown_timer`, `snapshot_timer`,
 * `storage: { first_index, last_index }`, `disk_index`, `known_applied_index`,
 * `last_log_id: { index, term }`, `state_machine`, `last_committed_index`, `pending_index`,
 * `pending_queue_size`, `pending_queue_bytes`, `applying_index`, `last_snapshot_index`,
 * `last_snapshot_term`, `snapshot_status`, and `replicators` (leader only): `[{ peer_id,
 * next_index, match_index, flying_append_entries_size, state, blocking, installing_snapshot,
 * consecutive_error_times, last_contact_ms }]`. The text form prints the same fields as braft's `key: value`
 * lines (`storage: [first, last]`, `last_log_id: (index=N,term=T)`, `readonly: 0|1`, one
 * `replicator@<peer>: next_index=… ` line per follower) under a `[group]` line.
 *
 * `/flags` JSON is `{ "<name>": { value, default, runtime, read_at, description, min?, max? } }`.
 *
 * @param app The user's Hono app.
 * @param nodes The nodes served on this endpoint, read at each request.
 * @param options The secret that guards `POST /flags/<name>`.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { mountStatusRoutes } from "./status_routes.ts";
 * import assert from "node:assert/strict";
 *
 * const app = new Hono();
 * mountStatusRoutes(app, () => []);
 * const res = await app.request("/flags?format=json");
 * assert.equal((await res.json()).raft_sync.value, true);
 * assert.match(await (await app.request("/flags")).text(), /^raft_sync: true /);
 * assert.equal((await app.request("/raft_stat/nope")).status, 404);
 * ```
 */
export function mountStatusRoutes(
  app: AnyHono,
  nodes: () => readonly DescribableNode[],
  options: StatusRoutesOptions = {},
): void {
  const guard = new FlagGuard(options);
  app.get("/raft_stat", (c) => statResponse(c, nodes(), undefined));
  app.get("/raft_stat/:group", (c) => {
    const group = lastSegment(c.req.raw.url);
    return statResponse(c, nodes().filter((n) => n.groupId === group), group);
  });
  app.get("/flags", (c) => {
    const format = chooseFormat(c.req.raw);
    if (format === null) return badFormat();
    if (format === "json") return Response.json(flagsJson());
    if (format === "text") return textResponse(200, flagsText());
    return htmlResponse(200, flagsHtml({ editable: !guard.locked }));
  });
  app.post("/flags/:name", (c) => guard.post(c.req.raw));
}

function badFormat(): Response {
  return errorResponse(400, RaftError.EINVAL, "Unknown format: expected html, json or text");
}

function statResponse(
  c: RouteContext,
  found: readonly DescribableNode[],
  group: string | undefined,
): Response {
  const req = c.req.raw;
  const format = chooseFormat(req);
  if (format === null) return badFormat();
  if (group !== undefined && found.length === 0) {
    const message = `Group "${group}" is not served here`;
    if (format !== "html") return errorResponse(404, RaftError.ENOENT, message);
    return htmlResponse(
      404,
      htmlPage(
        "raft_stat: no such group",
        `<h1>Not found</h1><p class="error">${escapeHtml(message)}.</p>`,
      ),
    );
  }
  const json = found.map((n) => statJson(n.describe()));
  if (format === "json") return Response.json({ nodes: json });
  if (format === "text") return textResponse(200, statText(json));
  const refresh = new URL(req.url).searchParams.get("refresh");
  const refreshS = refresh !== null && /^\d{1,4}$/.test(refresh) ? Number(refresh) : 2;
  return htmlResponse(200, statHtml(json, { refreshS, ...(group === undefined ? {} : { group }) }));
}

/** `POST /flags/<name>`: authentication, body parsing and the answer in the asked format. */
class FlagGuard {
  readonly #key: SharedKey | null;
  readonly #windowMs: number;
  /** A secret is set: proofs are required and the HTML page is read-only. */
  readonly locked: boolean;

  constructor(options: StatusRoutesOptions) {
    this.locked = options.secret !== undefined;
    // An empty secret cannot make a key; such a service refuses every change.
    this.#key = options.secret !== undefined && options.secret.length > 0
      ? new SharedKey(options.secret)
      : null;
    this.#windowMs = options.authWindowMs ?? 60_000;
  }

  async post(req: Request): Promise<Response> {
    const format = chooseFormat(req, "json");
    if (format === null) return badFormat();
    const fail = (status: number, code: number, message: string): Response =>
      format === "html"
        ? htmlResponse(status, flagsHtml({ editable: !this.locked, error: message }))
        : errorResponse(status, code, message);
    const origin = req.headers.get("origin");
    if (origin !== null && !sameOrigin(origin, req.url)) {
      await req.body?.cancel().catch(() => {});
      return fail(403, RaftError.EACCES, `Cannot set a flag from another origin (${origin})`);
    }
    if (this.locked && this.#key === null) {
      await req.body?.cancel().catch(() => {});
      return fail(401, RaftError.EACCES, "The service's secret is empty: flags cannot be changed");
    }
    const read = await readProvenBody(req, {
      maxBytes: MAX_FLAG_BODY,
      key: this.locked ? this.#key : null,
      from: "",
      windowMs: this.#windowMs,
    });
    if (!read.ok) return fail(read.status, read.code, read.message);
    const bytes = read.bytes;
    const name = lastSegment(req.url);
    try {
      if (!isFlagName(name)) throw RaftException.of(RaftError.ENOENT, `Unknown flag "${name}"`);
      setFlag(name, parseValue(req.headers.get("content-type"), bytes));
      if (format === "html") {
        return new Response(null, { status: 303, headers: { location: "/flags" } });
      }
      const state = { name, ...flagJson(name) };
      if (format === "text") return textResponse(200, `${name}: ${state.value}\n`);
      return Response.json(state);
    } catch (e) {
      const ex = asRaftException(e);
      return fail(ex.code === RaftError.ENOENT ? 404 : 400, ex.code, ex.status.message);
    }
  }
}

function sameOrigin(origin: string, url: string): boolean {
  try {
    return new URL(origin).host === new URL(url).host;
  } catch {
    return false;
  }
}

/** The `value` of a JSON `{"value": v}` body or of a form `value=v`. */
function parseValue(contentType: string | null, bytes: Uint8Array): unknown {
  const type = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  const bad = (why: string): never => {
    throw RaftException.of(RaftError.EINVAL, `Cannot read the new flag value: ${why}`);
  };
  let text = "";
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    bad("the body is not UTF-8");
  }
  if (type === "application/x-www-form-urlencoded") {
    const value = new URLSearchParams(text).get("value");
    return value ?? bad("the form has no value field");
  }
  if (type === "application/json" || type === "") {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return bad('expected JSON {"value": …}');
    }
    if (body === null || typeof body !== "object" || !Object.hasOwn(body, "value")) {
      return bad('expected JSON {"value": …}');
    }
    return (body as { value: unknown }).value;
  }
  return bad(`unsupported content type "${type}": send JSON {"value": …} or a form value=…`);
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
