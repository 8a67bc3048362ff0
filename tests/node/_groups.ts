/**
 * Many raft groups over the same three endpoints of one MemoryNetwork (every group has one
 * node on each endpoint, so the endpoints' NodeManagers carry every group's traffic), on a
 * hand-moved clock: one `advance` ticks every group in the same call, as a shared tick
 * source would.
 */

import assert from "node:assert/strict";
import { Configuration } from "../../src/conf/configuration.ts";
import type { PeerId } from "../../src/conf/peer_id.ts";
import { Node } from "../../src/node/node.ts";
import { NodeManager } from "../../src/node/node_manager.ts";
import { ManualClock } from "../../src/util/clock.ts";
import { MemoryNetwork } from "../../transports/memory/memory_network.ts";
import { MockFsm, peerIds } from "./cluster.ts";

/** Election timeout of the groups: 20 ticks of 50 ms, a heartbeat every 2 ticks. */
export const ELECTION_TIMEOUT_MS = 1000;
/** One tick. */
export const TICK_MS = ELECTION_TIMEOUT_MS / 20;
/** Ticks between two heartbeats of a leader (raft_election_heartbeat_factor 10). */
export const HEARTBEAT_TICKS = 2;

let seq = 0;

/** `count` groups of three nodes, one per endpoint. */
export class Groups {
  readonly net: MemoryNetwork = new MemoryNetwork({ seed: 13 });
  readonly clock: ManualClock = new ManualClock();
  readonly peers: PeerId[];
  readonly groupIds: string[];
  /** Nodes by group, in `peers` order. */
  readonly nodes = new Map<string, Node[]>();
  readonly #name: string;
  readonly #options: { enableLeaderLease?: boolean };

  constructor(count: number, basePort: number, options: { enableLeaderLease?: boolean } = {}) {
    this.#name = `groups-${++seq}-${Math.floor(Math.random() * 1e9)}`;
    this.peers = peerIds(3, basePort);
    this.groupIds = Array.from({ length: count }, (_, g) => `${this.#name}-g${g}`);
    this.#options = options;
  }

  /** Starts every node. */
  async start(): Promise<void> {
    const conf = new Configuration(this.peers);
    let seed = 1;
    for (const g of this.groupIds) {
      const nodes: Node[] = [];
      for (const p of this.peers) {
        const node = new Node(g, p);
        const id = `${g}/${p.port}`;
        await node.init({
          fsm: new MockFsm(),
          electionTimeoutMs: ELECTION_TIMEOUT_MS,
          logUri: `memory://${id}/log`,
          raftMetaUri: `memory://${id}/meta`,
          transport: this.net.transport(p.endpoint),
          initialConf: conf,
          clock: this.clock,
          seed: seed++,
          ...this.#options,
        });
        nodes.push(node);
      }
      this.nodes.set(g, nodes);
    }
  }

  /** The manager of each endpoint, in `peers` order. */
  managers(): NodeManager[] {
    return this.peers.map((p) => NodeManager.for(this.net.transport(p.endpoint)));
  }

  /** Sums a counter over the endpoints' managers. */
  total(counter: "heartbeatFramesOut" | "heartbeatTuplesOut" | "heartbeatTuplesIn"): number {
    return this.managers().reduce((n, m) => n + m.stats[counter], 0);
  }

  /** Lets every message and answer of the current tick arrive (no timer fires meanwhile). */
  async quiet(): Promise<void> {
    // Until a round passes with nothing sent: every answer of this tick has arrived.
    for (let i = 0, sent = -1; i < 3 || sent !== this.net.stats.sent; i++) {
      sent = this.net.stats.sent;
      await new Promise((r) => setTimeout(r, 1));
      await this.net.idle();
    }
  }

  /** Moves time `ticks` ticks, one at a time, letting messages flow after each. */
  async tick(ticks = 1): Promise<void> {
    for (let i = 0; i < ticks; i++) {
      this.clock.advance(TICK_MS);
      await this.quiet();
    }
  }

  /** The leader of group `g` among nodes whose endpoint is up, if any. */
  leaderOf(g: string, down: ReadonlySet<string> = new Set()): Node | undefined {
    return this.nodes.get(g)!.find((n) => n.isLeader() && !down.has(n.nodeId().endpoint));
  }

  /** Ticks until every group has a leader (outside `down`) and `extra` holds. */
  async untilLeaders(
    down: ReadonlySet<string> = new Set(),
    maxTicks = 2000,
    extra: () => boolean = () => true,
  ): Promise<Node[]> {
    for (let t = 0; t < maxTicks; t++) {
      const leaders = this.groupIds.map((g) => this.leaderOf(g, down));
      if (leaders.every((l) => l !== undefined) && extra()) return leaders as Node[];
      await this.tick();
    }
    const missing = this.groupIds.filter((g) => this.leaderOf(g, down) === undefined);
    assert.fail(`no leader after ${maxTicks} ticks in ${missing.length} groups`);
  }

  /** Runs `p` while moving time (a write or read needs the event loop, not timers). */
  async settle<T>(p: Promise<T>, maxTicks = 400): Promise<T> {
    let done = false;
    const result = p.finally(() => (done = true));
    for (let t = 0; t < maxTicks && !done; t++) await this.tick();
    assert.ok(done, `not settled after ${maxTicks} ticks`);
    return await result;
  }

  /** Shuts every node down and closes the network. */
  async stop(): Promise<void> {
    for (const nodes of this.nodes.values()) {
      await Promise.all(nodes.map((n) => n.shutdown()));
    }
    await this.net.close();
  }
}
