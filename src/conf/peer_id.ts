/**
 * `PeerId`: the address of one raft replica, `host:port:idx[:role]`.
 *
 * @module
 */

/** A replica's role: 0 is a normal replica, 1 a witness (braft's `Role`). */
export type PeerRole = 0 | 1;

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV4 = /^(?:\d{1,3})\.(?:\d{1,3})\.(?:\d{1,3})\.(?:\d{1,3})$/;
const IPV6_BODY = /^[0-9A-Fa-f:.]+(?:%[A-Za-z0-9._-]+)?$/;
const DIGITS = /^\d+$/;

/**
 * Parsed peer ids by their text, shared by the whole process: a process running many groups of
 * the same peers keeps one `PeerId` (and one key string) per peer instead of one per group.
 * Sharing is safe because a `PeerId` is frozen. Bounded: cleared when full.
 */
const parsedPeers = new Map<string, PeerId>();
const PARSED_PEERS_MAX = 4096;

/**
 * The identity of one replica: an endpoint (`host:port`) plus an index, so several replicas
 * may share one endpoint, plus a role (replica or witness).
 *
 * Accepted forms: `host:port`, `host:port:idx`, braft's `host:port:idx:role`; the host may be
 * an IPv4 address, a hostname or a bracketed IPv6 address (`[::1]:8100:0`). Equality and
 * ordering ignore the role, as in braft. Instances are frozen, so `PeerId.parse` hands out one
 * shared instance per text (a process running many groups of the same peers keeps one).
 *
 * @example
 * ```ts
 * import { PeerId } from "@webraft/raft";
 * import assert from "node:assert/strict";
 *
 * const p = PeerId.parse("127.0.0.1:8100");
 * assert.equal(p.toString(), "127.0.0.1:8100:0");
 * assert.equal(p.endpoint, "127.0.0.1:8100");
 * assert.ok(p.equals(PeerId.parse("127.0.0.1:8100:0:1")));
 * assert.equal(PeerId.parse("[::1]:9000:2").idx, 2);
 * ```
 */
export class PeerId {
  /** Host name, IPv4 address, or IPv6 address without brackets. */
  readonly host: string;
  /** TCP port, 0–65535. */
  readonly port: number;
  /** Replica index at this endpoint (default 0). */
  readonly idx: number;
  /** 0 = replica, 1 = witness. */
  readonly role: PeerRole;

  /**
   * Builds a peer id from its parts.
   *
   * @param host Hostname, IPv4 address or IPv6 address (without brackets).
   * @param port TCP port.
   * @param idx Replica index at that endpoint.
   * @param role 0 replica, 1 witness.
   * @throws {TypeError} If any part is out of range.
   */
  constructor(host: string, port: number, idx = 0, role: PeerRole = 0) {
    const text = `${host}:${port}:${idx}:${role}`;
    if (!isValidHost(host)) {
      throw new TypeError(`Cannot create peer id "${text}": invalid host "${host}"`);
    }
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new TypeError(`Cannot create peer id "${text}": port must be an integer in 0..65535`);
    }
    if (!Number.isSafeInteger(idx) || idx < 0) {
      throw new TypeError(`Cannot create peer id "${text}": idx must be a non-negative integer`);
    }
    if (role !== 0 && role !== 1) {
      throw new TypeError(`Cannot create peer id "${text}": role must be 0 or 1`);
    }
    this.host = host;
    this.port = port;
    this.idx = idx;
    this.role = role;
    Object.freeze(this);
  }

  /** `key()`, made on first use (a private field: the object itself is frozen). */
  #key: string | undefined;

  /**
   * Parses `host:port[:idx[:role]]`, with `[v6addr]` for IPv6 hosts. Surrounding whitespace
   * is ignored.
   *
   * @param text The peer id string.
   * @returns The parsed peer id.
   * @throws {TypeError} If the string is not a valid peer id; the message quotes it.
   */
  static parse(text: string): PeerId {
    if (typeof text !== "string") {
      throw new TypeError(`Cannot parse peer id ${String(text)}: expected a string`);
    }
    const known = parsedPeers.get(text);
    if (known !== undefined) return known;
    const input = text.trim();
    const fail = (why: string): never => {
      throw new TypeError(`Cannot parse peer id "${text}": ${why}`);
    };
    let host: string;
    let rest: string;
    if (input.startsWith("[")) {
      const close = input.indexOf("]");
      if (close < 0) fail("missing ']' after IPv6 address");
      host = input.slice(1, close);
      if (!IPV6_BODY.test(host) || !host.includes(":")) fail(`invalid IPv6 address "${host}"`);
      rest = input.slice(close + 1);
      if (!rest.startsWith(":")) fail("expected ':port' after ']'");
      rest = rest.slice(1);
    } else {
      if (input.includes("::")) fail("IPv6 hosts need brackets, as in [::1]:8100");
      const colon = input.indexOf(":");
      if (colon < 0) fail("expected host:port[:idx[:role]]");
      host = input.slice(0, colon);
      rest = input.slice(colon + 1);
    }
    const fields = rest.split(":");
    if (fields.length > 3) {
      fail("expected host:port[:idx[:role]] (IPv6 hosts need brackets, as in [::1]:8100)");
    }
    const [portText = "", idxText = "0", roleText = "0"] = fields;
    if (host === "") fail("empty host");
    if (!isValidHost(host)) fail(`invalid host "${host}"`);
    if (!DIGITS.test(portText)) fail(`port "${portText}" is not a number`);
    const port = Number(portText);
    if (port > 65535) fail(`port ${port} is out of range 0..65535`);
    if (!DIGITS.test(idxText)) fail(`idx "${idxText}" is not a non-negative integer`);
    const idx = Number(idxText);
    if (!Number.isSafeInteger(idx)) fail(`idx "${idxText}" is too large`);
    if (roleText !== "0" && roleText !== "1") {
      fail(`role "${roleText}" must be 0 (replica) or 1 (witness)`);
    }
    const peer = new PeerId(host, port, idx, roleText === "1" ? 1 : 0);
    if (parsedPeers.size >= PARSED_PEERS_MAX) parsedPeers.clear();
    parsedPeers.set(text, peer);
    return peer;
  }

  /**
   * Returns `value` if it already is a `PeerId`, else parses it.
   *
   * @param value A peer id or its string form.
   * @returns The peer id.
   * @throws {TypeError} If the string does not parse.
   */
  static from(value: PeerId | string): PeerId {
    return value instanceof PeerId ? value : PeerId.parse(value);
  }

  /** `host:port`, with the host bracketed when it is an IPv6 address. */
  get endpoint(): string {
    return `${this.host.includes(":") ? `[${this.host}]` : this.host}:${this.port}`;
  }

  /** Whether this is a witness replica. */
  get isWitness(): boolean {
    return this.role === 1;
  }

  /**
   * Whether this is the empty id `0.0.0.0:0:0` (braft's empty `PeerId`, also `ANY_PEER`).
   *
   * @returns `true` for the empty id.
   */
  isEmpty(): boolean {
    return this.host === "0.0.0.0" && this.port === 0 && this.idx === 0;
  }

  /**
   * `host:port:idx`, plus `:1` for a witness. Parses back to an equal peer id.
   *
   * @returns The string form.
   */
  toString(): string {
    return this.role === 1 ? `${this.endpoint}:${this.idx}:1` : `${this.endpoint}:${this.idx}`;
  }

  /**
   * Equality on endpoint and idx; the role is ignored, as in braft.
   *
   * @param other A peer id or its string form.
   * @returns `true` when both name the same replica.
   */
  equals(other: PeerId | string): boolean {
    const that = PeerId.from(other);
    return this.host === that.host && this.port === that.port && this.idx === that.idx;
  }

  /**
   * Total order on (host, port, idx), used to keep configurations sorted.
   *
   * @param a First peer.
   * @param b Second peer.
   * @returns Negative, zero or positive, like `Array.prototype.sort` expects.
   */
  static compare(a: PeerId, b: PeerId): number {
    if (a.host !== b.host) return a.host < b.host ? -1 : 1;
    if (a.port !== b.port) return a.port - b.port;
    return a.idx - b.idx;
  }

  /**
   * A string key for maps: `host:port:idx` (role excluded, so it matches `equals`).
   *
   * @returns The key.
   */
  key(): string {
    return this.#key ??= `${this.endpoint}:${this.idx}`;
  }
}

function isValidHost(host: string): boolean {
  if (host.includes(":")) return IPV6_BODY.test(host);
  if (IPV4.test(host)) return host.split(".").every((octet) => Number(octet) <= 255);
  if (/^[\d.]+$/.test(host)) return false; // numeric but not a valid dotted quad
  return HOSTNAME.test(host);
}

/**
 * The wildcard peer for `transferLeadershipTo`: let the leader pick the best follower.
 * Equal to braft's `ANY_PEER` (`0.0.0.0:0:0`).
 *
 * @example
 * ```ts
 * import { ANY_PEER } from "@webraft/raft";
 * import assert from "node:assert/strict";
 * assert.ok(ANY_PEER.isEmpty());
 * ```
 */
export const ANY_PEER: PeerId = new PeerId("0.0.0.0", 0, 0);
