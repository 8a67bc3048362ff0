/**
 * `Configuration`: the sorted set of peers that make up a raft group.
 *
 * @module
 */

import { PeerId } from "./peer_id.ts";

/** The result of {@linkcode Configuration.diff}. */
export interface ConfigurationDiff {
  /** Peers in the new configuration but not in the old one. */
  added: PeerId[];
  /** Peers in the old configuration but not in the new one. */
  removed: PeerId[];
}

/**
 * A set of peers, kept sorted by (host, port, idx) so that two equal sets print the same.
 * Its string form is the comma-separated peer list; empty fields are skipped on parse, so
 * braft's trailing commas (`"a:1:0,b:2:0,"`) work.
 *
 * `add` and `remove` change the configuration in place (as braft's do); use `clone()` to
 * keep the original.
 *
 * @example
 * ```ts
 * import { Configuration, PeerId } from "@webraft/raft";
 * import assert from "node:assert/strict";
 *
 * const conf = Configuration.parse("127.0.0.1:8101:0,127.0.0.1:8100:0,");
 * assert.equal(conf.toString(), "127.0.0.1:8100:0,127.0.0.1:8101:0");
 * assert.ok(conf.contains("127.0.0.1:8101"));
 * conf.add(PeerId.parse("127.0.0.1:8102"));
 * assert.equal(conf.size, 3);
 * ```
 */
export class Configuration {
  #peers: PeerId[] = [];

  /**
   * Creates a configuration from peers (duplicates collapse).
   *
   * @param peers Peer ids or their string forms.
   * @throws {TypeError} If a string does not parse as a peer id.
   */
  constructor(peers: Iterable<PeerId | string> = []) {
    for (const peer of peers) this.add(peer);
    this.#trim();
  }

  /**
   * Drops the spare capacity the list grew while being built (a process with many groups keeps
   * several configurations per group).
   */
  #trim(): void {
    if (this.#peers.length > 0) this.#peers = this.#peers.slice();
  }

  /**
   * Parses a comma-separated list of peer ids. Whitespace around fields and empty fields
   * are ignored, so `""` is the empty configuration.
   *
   * @param text For example `"10.0.0.1:8100:0,10.0.0.2:8100:0"`.
   * @returns The configuration.
   * @throws {TypeError} If any field is not a peer id; the message quotes the input and the field.
   */
  static parse(text: string): Configuration {
    if (typeof text !== "string") {
      throw new TypeError(`Cannot parse configuration ${String(text)}: expected a string`);
    }
    const conf = new Configuration();
    for (const field of text.split(",")) {
      const trimmed = field.trim();
      if (trimmed === "") continue;
      let peer: PeerId;
      try {
        peer = PeerId.parse(trimmed);
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        throw new TypeError(
          `Cannot parse configuration "${text}": expected comma-separated host:port[:idx] peers (${why})`,
        );
      }
      conf.add(peer);
    }
    conf.#trim();
    return conf;
  }

  /**
   * Returns `value` if it already is a `Configuration`, else parses or collects it.
   *
   * @param value A configuration, its string form, or a list of peers.
   * @returns The configuration.
   * @throws {TypeError} If a peer does not parse.
   */
  static from(value: Configuration | string | Iterable<PeerId | string>): Configuration {
    if (value instanceof Configuration) return value;
    if (typeof value === "string") return Configuration.parse(value);
    return new Configuration(value);
  }

  /** The peers in sorted order (a copy). */
  get peers(): PeerId[] {
    return [...this.#peers];
  }

  /** The number of peers. */
  get size(): number {
    return this.#peers.length;
  }

  /**
   * Whether there are no peers.
   *
   * @returns `true` when `size` is 0.
   */
  isEmpty(): boolean {
    return this.#peers.length === 0;
  }

  /**
   * Whether `peer` is a member (role ignored).
   *
   * @param peer A peer id or its string form.
   * @returns `true` if present.
   */
  contains(peer: PeerId | string): boolean {
    return this.#find(PeerId.from(peer)).found;
  }

  /**
   * Adds a peer, keeping the set sorted.
   *
   * @param peer A peer id or its string form.
   * @returns `true` if it was added, `false` if it was already present.
   */
  add(peer: PeerId | string): boolean {
    const p = PeerId.from(peer);
    const { found, index } = this.#find(p);
    if (found) return false;
    this.#peers.splice(index, 0, p);
    return true;
  }

  /**
   * Removes a peer.
   *
   * @param peer A peer id or its string form.
   * @returns `true` if it was present.
   */
  remove(peer: PeerId | string): boolean {
    const { found, index } = this.#find(PeerId.from(peer));
    if (!found) return false;
    this.#peers.splice(index, 1);
    return true;
  }

  #find(peer: PeerId): { found: boolean; index: number } {
    let lo = 0;
    let hi = this.#peers.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = PeerId.compare(this.#peers[mid]!, peer);
      if (c === 0) return { found: true, index: mid };
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    return { found: false, index: lo };
  }

  /**
   * Set equality (roles ignored).
   *
   * @param other Another configuration or its string form.
   * @returns `true` when both hold the same peers.
   */
  equals(other: Configuration | string): boolean {
    const that = Configuration.from(other);
    if (that.size !== this.size) return false;
    return this.#peers.every((p, i) => p.equals(that.#peers[i]!));
  }

  /**
   * What changes from this configuration to `next`.
   *
   * @param next The new configuration.
   * @returns The peers `next` adds and the peers it removes.
   */
  diff(next: Configuration): ConfigurationDiff {
    return {
      added: next.#peers.filter((p) => !this.contains(p)),
      removed: this.#peers.filter((p) => !next.contains(p)),
    };
  }

  /**
   * An independent copy.
   *
   * @returns A new configuration with the same peers.
   */
  clone(): Configuration {
    const copy = new Configuration();
    copy.#peers = this.#peers.slice();
    return copy;
  }

  /**
   * Iterates the peers in sorted order.
   *
   * @returns An iterator over the peers.
   */
  [Symbol.iterator](): IterableIterator<PeerId> {
    return this.#peers[Symbol.iterator]();
  }

  /**
   * The comma-separated peer list, sorted. Parses back to an equal configuration.
   *
   * @returns The string form.
   */
  toString(): string {
    return this.#peers.join(",");
  }
}
