/**
 * `EndpointLiveness`: how a quiesced node notices that the endpoints it depends on went
 * silent, at a cost of one small PING frame per remote endpoint per heartbeat interval (per
 * endpoint pair, not per group).
 *
 * ## Quiescence and why it is safe
 *
 * A leader whose group is idle (everything committed, applied and replicated, every follower
 * heard from recently, for an election timeout) sends one last heartbeat flagged `quiesce`
 * and stops ticking; a follower that accepts such a heartbeat from its leader in its term,
 * with nothing left to commit or apply, stops ticking too. Any other message, any API call
 * that needs progress, or the silence of an endpoint (below) wakes a node: it ticks again.
 *
 * Ticks only drive timeouts (elections, heartbeats, check-quorum, the follower lease). Election
 * safety, log matching and the commit rule are decided by messages and terms, so a node that
 * does not tick can only be slower to act, never wrong. The follower lease counts ticks, so a
 * quiesced follower refuses votes for longer in real time: safe (it is a promise not to vote).
 * The leader lease is checked against the real clock as well as ticks (the node's
 * `#leaseConfirmedByClock`: the heartbeat a quorum acknowledged must have left less than
 * T - 1 ticks' worth of milliseconds ago), so a quiesced leader's lease runs out in real time
 * and a read falls back to ReadIndex, whose API call wakes the group.
 *
 * ## Liveness
 *
 * While any quiesced node depends on a remote endpoint (a follower on its leader's, a leader
 * on its voters'), the manager sends that endpoint a PING every heartbeat interval and notes
 * when any frame last arrived from each endpoint. A quiesced node whose dependencies have been
 * silent for longer than its election timeout (a follower: its leader's endpoint; a leader: so
 * many voters' endpoints that the rest is no quorum) is woken, and its usual timeouts run from
 * there (a follower elects after its election timeout).
 *
 * Limits: liveness is per endpoint, not per node. A leader node that stops while its process
 * lives on hands over with TimeoutNow (shutdown, ERROR); should that one frame be lost while
 * other groups keep the endpoint talking, the other followers stay quiesced until a message or
 * an API call reaches them. Every replica of a group should have the same `quiesce` setting: a
 * follower without it keeps ticking after the leader quiesced, times out, and its pre-vote
 * wakes the group (no harm, but no quiet either).
 *
 * ## PING frame
 *
 * The CBOR map `{ t: "ping" }` (8 bytes: `a1 61 74 64 70 69 6e 67`). A message frame starts
 * with its version byte (1), a CBOR map with a byte in `0xa0..0xbf`, so the two never meet.
 *
 * @module
 */

import type { Clock, TimerHandle } from "../util/clock.ts";

/** The PING frame: the CBOR encoding of `{ t: "ping" }`. */
export const PING_FRAME: Uint8Array = new Uint8Array([
  0xa1,
  0x61,
  0x74,
  0x64,
  0x70,
  0x69,
  0x6e,
  0x67,
]);

/**
 * Whether a frame is a control frame (a CBOR map), not a raft message frame.
 *
 * @param frame The bytes received.
 * @returns `true` when the first byte is a CBOR map header.
 */
export function isControlFrame(frame: Uint8Array): boolean {
  return frame.byteLength > 0 && frame[0]! >= 0xa0 && frame[0]! <= 0xbf;
}

/**
 * Whether a control frame is exactly the PING frame.
 *
 * @param frame The bytes received.
 * @returns `true` for a PING.
 */
export function isPingFrame(frame: Uint8Array): boolean {
  if (frame.byteLength !== PING_FRAME.byteLength) return false;
  for (let i = 0; i < frame.byteLength; i++) if (frame[i] !== PING_FRAME[i]) return false;
  return true;
}

/** A quiesced node as the liveness tracker sees it. */
export interface QuiescedNode {
  /** The remote endpoints to ping (so that they hear from this process). */
  readonly ping: readonly string[];
  /**
   * The remote endpoints it depends on, one entry per peer (an endpoint appears twice when two
   * peers share it).
   */
  readonly watch: readonly string[];
  /** How many entries of `watch` must have been heard from recently for it to stay quiesced. */
  readonly needed: number;
  /** Its election timeout: silence longer than this wakes it. */
  readonly timeoutMs: number;
  /** Its heartbeat interval: pings go at least this often. */
  readonly heartbeatMs: number;
  /** Wakes the node (it unregisters itself). */
  wake(): void;
}

/**
 * Tracks when each endpoint was last heard from and pings the endpoints quiesced nodes depend
 * on. Owned by a `NodeManager`.
 *
 * @example
 * ```ts
 * import { EndpointLiveness } from "./endpoint_liveness.ts";
 * import { ManualClock } from "../util/clock.ts";
 * import assert from "node:assert/strict";
 *
 * const clock = new ManualClock();
 * const pinged: string[] = [];
 * const live = new EndpointLiveness(clock, (to) => pinged.push(to));
 * let woken = false;
 * live.register({
 *   ping: ["b:1"], watch: ["b:1"], needed: 1, timeoutMs: 100, heartbeatMs: 10,
 *   wake: () => { woken = true; live.unregister(node); },
 * });
 * const node = live.nodes()[0]!;
 * clock.advance(50);
 * live.heard("b:1");
 * clock.advance(90);
 * assert.equal(woken, false);
 * clock.advance(20);
 * assert.equal(woken, true);
 * assert.equal(live.running, false);
 * assert.ok(pinged.length >= 10);
 * ```
 */
export class EndpointLiveness {
  readonly #clock: Clock;
  readonly #ping: (to: string) => void;
  #lastHeard = new Map<string, number>();
  #nodes = new Set<QuiescedNode>();
  #timer: TimerHandle | null = null;
  /** PING frames sent so far. */
  pingsSent = 0;

  /**
   * @param clock The clock for arrival times and the ping timer.
   * @param ping Sends one PING frame to an endpoint.
   */
  constructor(clock: Clock, ping: (to: string) => void) {
    this.#clock = clock;
    this.#ping = ping;
  }

  /** The clock this tracker runs on. */
  get clock(): Clock {
    return this.#clock;
  }

  /** Whether the ping timer is armed (exactly while some node is quiesced). */
  get running(): boolean {
    return this.#timer !== null;
  }

  /**
   * The registered (quiesced) nodes.
   *
   * @returns Them, in registration order.
   */
  nodes(): QuiescedNode[] {
    return [...this.#nodes];
  }

  /**
   * Notes that a frame (any frame) arrived from `endpoint`.
   *
   * @param endpoint The sender.
   */
  heard(endpoint: string): void {
    this.#lastHeard.set(endpoint, this.#clock.now());
  }

  /**
   * How long `endpoint` has been silent: since the last frame from it, or since the tracker
   * started watching it (an underestimate, which is the safe side for callers that count the
   * silence as time waited).
   *
   * @param endpoint The endpoint.
   * @returns Milliseconds, or 0 if it was never watched.
   */
  silentMs(endpoint: string): number {
    const at = this.#lastHeard.get(endpoint);
    return at === undefined ? 0 : Math.max(0, this.#clock.now() - at);
  }

  /**
   * Starts watching a quiesced node's dependencies. An endpoint not heard from since the
   * tracker started counts as heard now (the node has just heard from it to quiesce).
   *
   * @param node The node.
   */
  register(node: QuiescedNode): void {
    const now = this.#clock.now();
    for (const e of node.watch) if (!this.#lastHeard.has(e)) this.#lastHeard.set(e, now);
    this.#nodes.add(node);
    if (this.#timer === null) this.#arm();
  }

  /**
   * Stops watching a node (no-op if not registered).
   *
   * @param node The node.
   */
  unregister(node: QuiescedNode): void {
    this.#nodes.delete(node);
    if (this.#nodes.size === 0 && this.#timer !== null) {
      this.#clock.clearTimer(this.#timer);
      this.#timer = null;
    }
  }

  #arm(): void {
    let interval = Infinity;
    for (const n of this.#nodes) interval = Math.min(interval, n.heartbeatMs);
    this.#timer = this.#clock.setTimer(() => this.#fire(), Math.max(1, interval));
  }

  #fire(): void {
    this.#timer = null;
    const targets = new Set<string>();
    for (const n of this.#nodes) for (const e of n.ping) targets.add(e);
    for (const to of targets) {
      this.pingsSent++;
      try {
        this.#ping(to);
      } catch {
        // a transport never throws for network trouble; nothing to do here either way
      }
    }
    const now = this.#clock.now();
    for (const n of [...this.#nodes]) {
      if (!this.#nodes.has(n)) continue;
      let alive = 0;
      for (const e of n.watch) {
        if (now - (this.#lastHeard.get(e) ?? -Infinity) <= n.timeoutMs) alive++;
      }
      if (alive < n.needed) {
        try {
          n.wake();
        } catch {
          this.#nodes.delete(n);
        }
      }
    }
    if (this.#nodes.size > 0 && this.#timer === null) this.#arm();
  }
}
