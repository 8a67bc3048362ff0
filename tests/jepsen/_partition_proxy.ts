/**
 * A fault-injecting TCP proxy on loopback for network partitions between real processes.
 *
 * A node's PeerId is both its identity and the address its peers dial, so the proxy owns that
 * address: node `i` is started with `--port=<public i>` (its PeerId) and
 * `--listen_port=<private i>`, and the proxy listens on `public i` and forwards to `private i`.
 * To know which peer a connection comes from, the proxy reads the caller's endpoint from the
 * first bytes the caller sends: the `x-raft-from` header of a `POST /raft/call`, or, on a
 * `GET /raft/ws` upgrade, the endpoint in the transport's AUTH message (the first WebSocket
 * frame the client sends; it is held back until read). Anything else (a counter client, a CLI
 * call) is never cut.
 *
 * {@link PartitionProxy.cut} blocks a pair both ways: open connections between them are reset
 * and new ones are reset as soon as their caller is known, before anything after the HTTP
 * request head reaches the node. {@link PartitionProxy.heal} lifts every cut.
 *
 * @module
 */

import { connect, createServer, type Server, type Socket } from "node:net";

/** One proxied node: the address peers dial and where the node really listens. */
export interface ProxiedNode {
  /** The port of the node's PeerId (the proxy listens here). */
  publicPort: number;
  /** The port the node binds (`--listen_port`). */
  privatePort: number;
}

interface Conn {
  down: Socket;
  up: Socket;
  /** The caller's public port, once known; 0 for a caller that is not a peer. */
  from: number | null;
  /** The node this connection reaches (public port). */
  to: number;
}

/** Most bytes read while looking for the caller's identity before giving up on it. */
const SNIFF_LIMIT = 64 * 1024;
const AUTH_HEAD = 8;
/** The transport's AUTH message type (transports/http/wire.ts). */
const MSG_AUTH = 0x02;

/** A proxy in front of every node of a group, with pairwise cuts. */
export class PartitionProxy {
  readonly #servers: Server[] = [];
  readonly #conns = new Set<Conn>();
  readonly #cuts = new Set<string>();
  readonly #publicPorts: Set<number>;
  /** Connections reset because of a cut. */
  resets = 0;

  private constructor(nodes: ProxiedNode[]) {
    this.#publicPorts = new Set(nodes.map((n) => n.publicPort));
  }

  /**
   * Listens on every node's public port.
   *
   * @param nodes The nodes.
   * @returns The proxy.
   */
  static async start(nodes: ProxiedNode[]): Promise<PartitionProxy> {
    const proxy = new PartitionProxy(nodes);
    try {
      for (const n of nodes) {
        const srv = createServer((down) => proxy.#accept(down, n));
        proxy.#servers.push(srv);
        await new Promise<void>((resolve, reject) => {
          srv.once("error", reject);
          srv.listen(n.publicPort, "127.0.0.1", () => resolve());
        });
      }
    } catch (e) {
      await proxy.close();
      throw e;
    }
    return proxy;
  }

  /** The cuts in force, as "a-b" pairs of public ports. */
  get cuts(): string[] {
    return [...this.#cuts];
  }

  /**
   * Cuts the link between two nodes, both ways.
   *
   * @param a A node's public port.
   * @param b Another node's public port.
   */
  cut(a: number, b: number): void {
    this.#cuts.add(pairKey(a, b));
    for (const c of this.#conns) {
      if (c.from !== null && this.#blocked(c.from, c.to)) this.#reset(c);
    }
  }

  /** Lifts every cut. */
  heal(): void {
    this.#cuts.clear();
  }

  /** Closes the listeners and every connection. */
  async close(): Promise<void> {
    for (const c of this.#conns) this.#drop(c);
    await Promise.all(
      this.#servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
    );
  }

  #blocked(from: number, to: number): boolean {
    return from !== 0 && this.#cuts.has(pairKey(from, to));
  }

  #reset(c: Conn): void {
    this.resets++;
    this.#drop(c);
  }

  #drop(c: Conn): void {
    this.#conns.delete(c);
    c.down.destroy();
    c.up.destroy();
  }

  #accept(down: Socket, node: ProxiedNode): void {
    const up = connect(node.privatePort, "127.0.0.1");
    const c: Conn = { down, up, from: null, to: node.publicPort };
    this.#conns.add(c);
    down.setNoDelay(true);
    up.setNoDelay(true);
    const drop = () => this.#drop(c);
    down.on("error", drop).on("close", drop);
    up.on("error", drop).on("close", drop);
    up.on("data", (d: Buffer) => {
      if (!down.destroyed) down.write(d);
    });
    let held = Buffer.alloc(0);
    let headDone = false;
    down.on("data", (d: Buffer) => {
      if (c.from !== null) {
        if (!up.destroyed) up.write(d);
        return;
      }
      held = Buffer.concat([held, d]);
      if (!headDone) {
        const end = held.indexOf("\r\n\r\n");
        if (end < 0) {
          if (held.length > SNIFF_LIMIT) this.#identify(c, 0, held);
          return;
        }
        const head = held.subarray(0, end + 4).toString("latin1");
        const from = /\r\nx-raft-from:\s*([^\r]*)/i.exec(head)?.[1];
        if (from !== undefined) return this.#identify(c, this.#portOf(from), held);
        if (!/^GET [^ ]*\/raft\/ws[ ?]/.test(head)) return this.#identify(c, 0, held);
        // Let the upgrade through (the node answers with its hello); hold what follows.
        headDone = true;
        up.write(held.subarray(0, end + 4));
        held = held.subarray(end + 4);
      }
      const endpoint = authEndpoint(held);
      if (endpoint === undefined) {
        if (held.length > SNIFF_LIMIT) this.#identify(c, 0, held);
        return;
      }
      this.#identify(c, endpoint === null ? 0 : this.#portOf(endpoint), held);
    });
  }

  #identify(c: Conn, from: number, held: Buffer): void {
    c.from = from;
    if (this.#blocked(from, c.to)) return this.#reset(c);
    if (held.length > 0 && !c.up.destroyed) c.up.write(held);
  }

  /** The public port of a peer endpoint ("127.0.0.1:P" or "127.0.0.1:P:0"), else 0. */
  #portOf(endpoint: string): number {
    const m = /^127\.0\.0\.1:(\d+)(?::\d+)?$/.exec(endpoint.trim());
    const port = m === null ? 0 : Number(m[1]);
    return this.#publicPorts.has(port) ? port : 0;
  }
}

function pairKey(a: number, b: number): string {
  return a < b ? `${a}-${b}` : `${b}-${a}`;
}

/**
 * The endpoint in the first client WebSocket frame if it is the transport's AUTH message;
 * `undefined` if more bytes are needed; `null` if the frame is something else.
 */
function authEndpoint(buf: Buffer): string | null | undefined {
  if (buf.length < 2) return undefined;
  let len = buf[1]! & 0x7f;
  const masked = (buf[1]! & 0x80) !== 0;
  let at = 2;
  if (len === 126) {
    if (buf.length < 4) return undefined;
    len = buf.readUInt16BE(2);
    at = 4;
  } else if (len === 127) {
    if (buf.length < 10) return undefined;
    len = Number(buf.readBigUInt64BE(2));
    at = 10;
  }
  const mask = masked ? buf.subarray(at, at + 4) : null;
  if (masked) at += 4;
  if (len < AUTH_HEAD) return null;
  if (buf.length < at + len) return len > SNIFF_LIMIT ? null : undefined;
  const payload = Buffer.from(buf.subarray(at, at + len));
  if (mask !== null) { for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i % 4]!; }
  if (payload[0] !== MSG_AUTH) return null;
  const epLen = payload.readUInt16BE(6);
  if (AUTH_HEAD + epLen > payload.length) return null;
  return payload.subarray(AUTH_HEAD, AUTH_HEAD + epLen).toString("utf8");
}
