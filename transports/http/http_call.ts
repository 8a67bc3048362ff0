/**
 * Calls over plain HTTP (`POST /raft/call`): the client function for non-peers (CLI, curl
 * users, tests) and the transport's fallback, plus the JSON error body both sides share.
 *
 * @module
 */

import { errorName, RaftError, RaftException } from "../../src/errors/status.ts";
import { flags } from "../../src/util/flags.ts";
import { AUTH_HEADER, callProof, FROM_HEADER, SharedKey, verifyCallProof } from "./auth.ts";
import { checkEndpoint } from "./endpoint.ts";
import { concatBytes } from "../../src/bytes/concat.ts";

/**
 * Path of the call route (`POST`, body = request bytes).
 *
 * @example A plain POST answered in-process with `app.request` (no server)
 * ```ts
 * import { Hono } from "hono";
 * import { CALL_PATH, HttpTransport, mountTransport } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const app = new Hono();
 * const t = new HttpTransport("127.0.0.1:8100");
 * t.listen({ onFrame() {}, onCall: (_from, req) => Promise.resolve(req.reverse()) });
 * mountTransport(app, t);
 * const res = await app.request(CALL_PATH, { method: "POST", body: new Uint8Array([1, 2]) });
 * assert.deepEqual(new Uint8Array(await res.arrayBuffer()), new Uint8Array([2, 1]));
 * await t.close();
 * ```
 */
export const CALL_PATH = "/raft/call";
/**
 * Path of the peer WebSocket route (`GET` with `Upgrade: websocket`).
 *
 * @example
 * ```ts
 * import { WS_PATH } from "./mod.ts";
 * import assert from "node:assert/strict";
 * assert.equal(`ws://127.0.0.1:8100${WS_PATH}`, "ws://127.0.0.1:8100/raft/ws");
 * ```
 */
export const WS_PATH = "/raft/ws";

/** Options for {@linkcode httpCall}. */
export interface HttpCallOptions {
  /** The cluster's shared secret, if it has one. */
  secret?: string;
  /** Give up after this many milliseconds (ETIMEDOUT). Default: no limit. */
  timeoutMs?: number;
  /** Abort the call (ECANCELED). */
  signal?: AbortSignal;
  /** Largest response accepted. Default `flags.raft_max_body_size` + 1 MiB. */
  maxResponseBytes?: number;
}

/** @internal The transport's form: an imported key and the caller's endpoint. */
export interface PostOptions {
  key: SharedKey | null;
  from: string;
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
  maxResponseBytes: number;
}

/**
 * Sends `request` to the raft endpoint `endpoint` over HTTP and returns the response bytes,
 * for callers that are not peers (no endpoint of their own).
 *
 * @param endpoint `host:port` of a served transport (`[v6]:port` for IPv6).
 * @param request The request bytes.
 * @param options Secret, timeout, cancellation.
 * @returns The response bytes.
 * @throws {RaftException} The remote handler's code; EHOSTUNREACH if the endpoint cannot be
 *   reached; ETIMEDOUT, ECANCELED; EACCES if the secret is wrong or missing; EINVAL for a bad
 *   endpoint; EIO for a response that is not from a raft endpoint.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { HttpTransport, httpCall, mountTransport, serve } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const app = new Hono();
 * const t = new HttpTransport("127.0.0.1:0");
 * t.listen({ onFrame() {}, onCall: (_from, req) => Promise.resolve(req.map((x) => x * 2)) });
 * mountTransport(app, t);
 * const server = await serve(app, { hostname: "127.0.0.1", port: 0 });
 * const res = await httpCall(`127.0.0.1:${server.port}`, new Uint8Array([21]), { timeoutMs: 5000 });
 * assert.deepEqual(res, new Uint8Array([42]));
 * await t.close();
 * await server.shutdown();
 * ```
 */
export function httpCall(
  endpoint: string,
  request: Uint8Array,
  options: HttpCallOptions = {},
): Promise<Uint8Array> {
  return postCall(endpoint, request, {
    key: options.secret !== undefined ? new SharedKey(options.secret) : null,
    from: "",
    timeoutMs: options.timeoutMs,
    signal: options.signal,
    maxResponseBytes: options.maxResponseBytes ?? flags.raft_max_body_size + 1024 * 1024,
  });
}

/** @internal The POST itself. */
export async function postCall(
  endpoint: string,
  request: Uint8Array,
  options: PostOptions,
): Promise<Uint8Array> {
  const bad = checkEndpoint(endpoint);
  if (bad !== null) throw RaftException.of(RaftError.EINVAL, bad);
  const controller = new AbortController();
  let why: RaftException | null = null;
  const stop = (e: RaftException): void => {
    why ??= e;
    controller.abort();
  };
  const onAbort = (): void =>
    stop(RaftException.of(RaftError.ECANCELED, `Call to "${endpoint}" was aborted`));
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener("abort", onAbort);
  const timer = options.timeoutMs === undefined ? undefined : setTimeout(
    () =>
      stop(
        RaftException.of(
          RaftError.ETIMEDOUT,
          `Call to "${endpoint}" timed out after ${options.timeoutMs} ms`,
        ),
      ),
    options.timeoutMs,
  );
  try {
    if (why !== null) throw why;
    const headers: Record<string, string> = { "content-type": "application/octet-stream" };
    if (options.from !== "") headers[FROM_HEADER] = options.from;
    if (options.key !== null) {
      headers[AUTH_HEADER] = await callProof(options.key, options.from, request);
    }
    let res: Response;
    try {
      res = await fetch(`http://${endpoint}${CALL_PATH}`, {
        method: "POST",
        headers,
        body: request as Uint8Array<ArrayBuffer>,
        signal: controller.signal,
      });
    } catch (e) {
      throw why ?? RaftException.of(
        RaftError.EHOSTUNREACH,
        `Cannot reach "${endpoint}": ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    let body: Uint8Array;
    try {
      body = await readLimited(res, options.maxResponseBytes);
    } catch (e) {
      throw why ?? e;
    }
    if (res.status === 200) return body;
    throw errorFromResponse(endpoint, res.status, body);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * Reads a request or response body, refusing more than `max` bytes: checks Content-Length
 * first, then counts while reading.
 *
 * @param r The request or response.
 * @param max The most bytes accepted.
 * @returns The body.
 * @throws {RaftException} ERANGE if the body is larger than `max`; EIO if reading fails.
 */
export async function readLimited(r: Request | Response, max: number): Promise<Uint8Array> {
  const declared = r.headers.get("content-length");
  if (declared !== null && Number(declared) > max) {
    await r.body?.cancel().catch(() => {});
    throw tooLarge(Number(declared), max);
  }
  if (r.body === null) return new Uint8Array(0);
  const reader = r.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      n += value.length;
      if (n > max) {
        await reader.cancel().catch(() => {});
        throw tooLarge(n, max);
      }
      chunks.push(value);
    }
  } catch (e) {
    if (e instanceof RaftException) throw e;
    throw RaftException.of(
      RaftError.EIO,
      `Cannot read body: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  if (chunks.length === 1) return chunks[0]!;
  return concatBytes(chunks);
}

/** What {@linkcode readProvenBody} found: the body, or the error response to send. */
export type ProvenBody =
  | { readonly ok: true; readonly bytes: Uint8Array }
  | {
    readonly ok: false;
    /** Why: too large (413), unreadable (400) or a missing or wrong proof (401). */
    readonly reason: "oversize" | "malformed" | "auth";
    /** The HTTP status to answer. */
    readonly status: 400 | 401 | 413;
    /** The raft error code (EINVAL or EACCES). */
    readonly code: number;
    /** What was wrong. */
    readonly message: string;
  };

/** Options for {@linkcode readProvenBody}. */
export interface ProvenBodyOptions {
  /** The most bytes accepted (413 beyond). */
  readonly maxBytes: number;
  /** The cluster's key, or `null` when there is no secret (no proof is checked). */
  readonly key: SharedKey | null;
  /** The caller's endpoint the proof covers (`""` for non-peers). */
  readonly from: string;
  /** How far the proof's timestamp may be from now, in ms. */
  readonly windowMs: number;
}

/**
 * Reads a POST body within a size limit and checks its `x-raft-auth` proof: the one gate of
 * every route that acts on a request (`/raft/call`, `/raft/cli/<verb>`, `POST /flags/<name>`).
 *
 * @param req The request.
 * @param options Limit, key and caller.
 * @returns The body, or why not (status, code and message for the error response).
 *
 * @example
 * ```ts
 * import { readProvenBody } from "./http_call.ts";
 * import assert from "node:assert/strict";
 * const req = new Request("http://127.0.0.1/x", { method: "POST", body: "too long" });
 * const r = await readProvenBody(req, { maxBytes: 4, key: null, from: "", windowMs: 60_000 });
 * assert.equal(r.ok, false);
 * if (!r.ok) assert.equal(r.status, 413);
 * ```
 */
export async function readProvenBody(
  req: Request,
  options: ProvenBodyOptions,
): Promise<ProvenBody> {
  let bytes: Uint8Array;
  try {
    bytes = await readLimited(req, options.maxBytes);
  } catch (e) {
    const ex = e instanceof RaftException
      ? e
      : RaftException.of(RaftError.EIO, e instanceof Error ? e.message : String(e));
    const oversize = ex.code === RaftError.ERANGE;
    return {
      ok: false,
      reason: oversize ? "oversize" : "malformed",
      status: oversize ? 413 : 400,
      code: RaftError.EINVAL,
      message: ex.status.message,
    };
  }
  if (options.key !== null) {
    const why = await verifyCallProof(
      options.key,
      req.headers.get(AUTH_HEADER),
      options.from,
      bytes,
      options.windowMs,
    );
    if (why !== null) {
      return { ok: false, reason: "auth", status: 401, code: RaftError.EACCES, message: why };
    }
  }
  return { ok: true, bytes };
}

function tooLarge(n: number, max: number): RaftException {
  return RaftException.of(RaftError.ERANGE, `Body of ${n} bytes exceeds the limit of ${max}`);
}

/** The JSON body of an HTTP error. */
export interface ErrorBody {
  /** The code's name, e.g. `"EPERM"`. */
  error: string;
  /** The braft code. */
  code: number;
  /** What went wrong. */
  message: string;
}

/**
 * The HTTP status for a raft error code: 400 bad input, 401 bad proof, 403 refused (EACCES from
 * a node with `disableCli`), 404 unknown group, peer, reader or file, 409 EEXIST, 413 too large,
 * 503 for "try elsewhere or later" (not leader, busy, unreachable, shutting down), 504 timeout,
 * 500 otherwise.
 *
 * @param code A braft code.
 * @returns The HTTP status.
 */
export function httpStatusOf(code: number): number {
  switch (code) {
    case RaftError.EINVAL:
    case RaftError.ERANGE:
      return 400;
    case RaftError.EACCES:
      return 403;
    case RaftError.ENOENT:
      return 404;
    case RaftError.EEXIST:
      return 409;
    case RaftError.EPERM:
    case RaftError.EAGAIN:
    case RaftError.EBUSY:
    case RaftError.EHOSTUNREACH:
    case RaftError.ESHUTDOWN:
    case RaftError.ECATCHUP:
    case RaftError.EREADONLY:
      return 503;
    case RaftError.ETIMEDOUT:
      return 504;
    default:
      return 500;
  }
}

/**
 * An error response with the JSON body `{ error, code, message }`.
 *
 * @param status The HTTP status.
 * @param code The braft code.
 * @param message What went wrong.
 * @returns The response.
 */
export function errorResponse(status: number, code: number, message: string): Response {
  const body: ErrorBody = { error: errorName(code), code, message };
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function errorFromResponse(endpoint: string, status: number, body: Uint8Array): RaftException {
  try {
    const json = JSON.parse(new TextDecoder().decode(body)) as Partial<ErrorBody>;
    if (typeof json.code === "number" && Number.isInteger(json.code) && json.code !== 0) {
      return RaftException.of(json.code, String(json.message ?? ""));
    }
  } catch {
    // not JSON: not a raft endpoint's answer
  }
  return RaftException.of(
    RaftError.EIO,
    `Call to "${endpoint}" got HTTP ${status} without a raft error body`,
  );
}
