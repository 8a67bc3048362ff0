/**
 * `addService`: mounts raft on the user's Hono app (braft's `add_service` on a brpc server), so
 * raft shares the user's port: the peer routes of the HTTP transport, the CLI routes,
 * `/raft_stat` and `/flags`. A `Node` on the same port without a `transport` option uses this
 * service's transport.
 *
 * @module
 */

import { RaftError, RaftException } from "../../src/errors/status.ts";
import { CLI_VERBS, handleCliRequest } from "../../src/node/cli_service.ts";
import { NodeManager } from "../../src/node/node_manager.ts";
import { findService, isWildcardHost, registerService } from "../../src/node/service_registry.ts";
import { SharedKey } from "./auth.ts";
import { errorResponse, httpStatusOf, readProvenBody } from "./http_call.ts";
import { HttpTransport, type HttpTransportOptions } from "./http_transport.ts";
import { type AnyHono, isServing, servedPortOf } from "./registry.ts";
import { mountTransport } from "./routes.ts";
import { type DescribableNode, lastSegment, mountStatusRoutes } from "./status_routes.ts";
import { asRaftException } from "./inbound.ts";

/** Options for {@linkcode addService}. */
export interface AddServiceOptions extends HttpTransportOptions {
  /**
   * Shared secret of the cluster: every peer connection, peer call and CLI call must prove it
   * (HMAC-SHA256, see the README's security model). It never appears in logs, errors or
   * `/raft_stat`. Default: none.
   */
  secret?: string;
}

/** Path prefix of the CLI routes: `POST /raft/cli/<verb>` with a JSON body. */
export const CLI_PATH = "/raft/cli";

const services = new WeakMap<AnyHono, RaftService>();

/**
 * The raft service mounted on one app: its listen address, and the HTTP transport its nodes
 * share (created when the first node of this endpoint starts, once the port is known).
 */
export class RaftService {
  /** The host from the listen address (`""` when only a port was given). */
  readonly host: string;
  readonly #app: AnyHono;
  readonly #port: number;
  readonly #options: AddServiceOptions;
  readonly #key: SharedKey | null;
  #transport: HttpTransport | null = null;
  #unregister: () => void;
  #closed = false;

  /** @internal Use {@linkcode addService}. */
  constructor(app: AnyHono, host: string, port: number, options: AddServiceOptions) {
    this.#app = app;
    this.host = host;
    this.#port = port;
    this.#options = options;
    this.#key = options.secret === undefined ? null : new SharedKey(options.secret);
    this.#unregister = registerService(this);
  }

  /**
   * The port: the one given to `addService`, or the port `serve` bound when 0 was given
   * (0 until then).
   *
   * @returns The port.
   */
  port(): number {
    return this.#port !== 0 ? this.#port : servedPortOf(this.#app);
  }

  /** The transport, once a node has started on this endpoint (or `transportFor` was called). */
  get transport(): HttpTransport | null {
    return this.#transport;
  }

  /**
   * The transport of this endpoint, created on first use with `endpoint` as its name (what
   * peers see as the sender). Nodes call this from `init`.
   *
   * @param endpoint `host:port` of the node asking.
   * @returns The transport.
   * @throws {RaftException} ESHUTDOWN after `close()`.
   */
  transportFor(endpoint: string): HttpTransport {
    if (this.#closed) {
      throw RaftException.of(RaftError.ESHUTDOWN, `The raft service of "${endpoint}" is closed`);
    }
    this.#transport ??= new HttpTransport(endpoint, this.#options);
    return this.#transport;
  }

  /**
   * The nodes served on this endpoint.
   *
   * @returns The nodes (empty before the first node starts).
   */
  nodes(): DescribableNode[] {
    const manager = this.#manager();
    return manager === null ? [] : manager.all() as unknown as DescribableNode[];
  }

  /**
   * Closes the transport and forgets the service (nodes of this endpoint can no longer start).
   * Shut the nodes down first.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unregister();
    await this.#transport?.close();
  }

  /** @internal The node manager of this endpoint, if a node has started. */
  #manager(): NodeManager | null {
    return this.#transport === null ? null : NodeManager.existing(this.#transport);
  }

  /** @internal `POST /raft/cli/<verb>` with a JSON body. */
  async handleCli(verb: string, req: Request): Promise<Response> {
    if (!(CLI_VERBS as readonly string[]).includes(verb)) {
      return errorResponse(404, RaftError.EINVAL, `Unknown CLI verb "${verb}"`);
    }
    const read = await readProvenBody(req, {
      maxBytes: this.#transport?.maxMessageBytes ?? 1024 * 1024,
      key: this.#key,
      from: "",
      windowMs: this.#options.authWindowMs ?? 60_000,
    });
    if (!read.ok) return errorResponse(read.status, read.code, read.message);
    const bytes = read.bytes;
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch {
      return errorResponse(400, RaftError.EINVAL, "Cannot parse the CLI request: not JSON");
    }
    if (body === null || typeof body !== "object" || Array.isArray(body)) {
      return errorResponse(400, RaftError.EINVAL, "The CLI request must be a JSON object");
    }
    const manager = this.#manager();
    try {
      if (manager === null) {
        throw RaftException.of(RaftError.ENOENT, "No raft node is served on this endpoint");
      }
      const answer = await handleCliRequest(manager, verb, body as Record<string, unknown>);
      return Response.json(answer);
    } catch (e) {
      const ex = asRaftException(e);
      return errorResponse(httpStatusOf(ex.code), ex.code, ex.status.message);
    }
  }
}

/**
 * Mounts raft on the user's Hono app so that raft shares its port (braft `add_service`):
 *
 * - `GET /raft/ws` and `POST /raft/call`: the peer routes of the HTTP transport;
 * - `POST /raft/cli/<verb>`: the CLI (`add_peer`, `remove_peer`, `change_peers`, `reset_peer`,
 *   `snapshot`, `get_leader`, `transfer_leader`, `list_peers`) with a JSON body in braft's
 *   field names (`group_id`, `peer_id`, `leader_id`, `new_peers`);
 * - `GET /raft_stat`, `GET /raft_stat/<group>`, `GET /flags` and `POST /flags/<name>` (HTML,
 *   JSON or text; see `mountStatusRoutes`).
 *
 * Nodes whose endpoint has this port and no `transport` option use this service. Call it
 * before the app is served.
 *
 * @param app The user's Hono app.
 * @param listenAddr `"host:port"`, `"[v6]:port"` or a port number; port 0 means the port
 *   `serve` picks.
 * @param options The cluster's shared secret and transport tuning.
 * @returns The service.
 * @throws {RaftException} EPERM when the app is already served; EEXIST when the app already
 *   has a raft service or another service claims the same fixed address; EINVAL for a
 *   malformed address.
 *
 * @example A one-node group on a served app
 * ```ts
 * import { Hono } from "hono";
 * import { addService, serve } from "./mod.ts";
 * import { Node, StateMachine, Status, type Iterator } from "../../mod.ts";
 * import assert from "node:assert/strict";
 *
 * class Noop extends StateMachine {
 *   onApply(iter: Iterator): void {
 *     for (; iter.valid(); iter.next()) iter.done()?.run(Status.OK());
 *   }
 * }
 * const app = new Hono();
 * app.get("/hello", (c) => c.text("hi")); // the user's routes keep working
 * const service = addService(app, "127.0.0.1:0");
 * const server = await serve(app, { hostname: "127.0.0.1", port: 0 });
 * const peer = `127.0.0.1:${server.port}:0`;
 * const node = new Node("doc", peer);
 * await node.init({
 *   fsm: new Noop(),
 *   initialConf: peer,
 *   logUri: "memory://add-service-doc/log",
 *   raftMetaUri: "memory://add-service-doc/meta",
 *   electionTimeoutMs: 200,
 * });
 * await node.waitLeader();
 * const stat = await (await fetch(`http://${server.hostname}:${server.port}/raft_stat?format=json`)).json();
 * assert.equal(stat.nodes[0].state, "LEADER");
 * await node.shutdown();
 * await service.close();
 * await server.shutdown();
 * ```
 */
export function addService(
  app: AnyHono,
  listenAddr: string | number,
  options: AddServiceOptions = {},
): RaftService {
  if (isServing(app)) {
    throw RaftException.of(
      RaftError.EPERM,
      "Cannot addService: the app is already being served; add the raft service before serve()",
    );
  }
  if (services.has(app)) {
    throw RaftException.of(RaftError.EEXIST, "Cannot addService: this app already has one");
  }
  const { host, port } = parseListenAddr(listenAddr);
  if (port !== 0) {
    const other = findService(`${host}:${port}`);
    if (other !== null && (other.host === host || isWildcardHost(other.host))) {
      throw RaftException.of(
        RaftError.EEXIST,
        `Cannot addService on "${host}:${port}": another raft service claims that address`,
      );
    }
  }
  const service = new RaftService(app, host, port, options);
  services.set(app, service);
  mountTransport(app, () => service.transport ?? undefined);
  app.post(`${CLI_PATH}/:verb`, (c) => service.handleCli(lastSegment(c.req.raw.url), c.req.raw));
  mountStatusRoutes(app, () => service.nodes(), options);
  return service;
}

/** Splits a listen address into host and port. */
function parseListenAddr(addr: string | number): { host: string; port: number } {
  const bad = (why: string): never => {
    throw RaftException.of(RaftError.EINVAL, `Cannot addService on "${addr}": ${why}`);
  };
  if (typeof addr === "number") {
    if (!Number.isInteger(addr) || addr < 0 || addr > 65535) bad("port must be 0..65535");
    return { host: "", port: addr };
  }
  if (typeof addr !== "string") return bad('expected "host:port" or a port number');
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\[\]]*):(\d{1,5})$/.exec(addr) ?? /^()(\d{1,5})$/.exec(addr);
  if (m === null) return bad('expected "host:port", "[v6]:port" or a port');
  const port = Number(m[2]);
  if (port > 65535) bad("port must be 0..65535");
  return { host: m[1]!, port };
}
