/**
 * A braft-style test cluster (braft test/util.h `Cluster`) on a MemoryNetwork, with
 * memory:// or local:// storage, and `MockFsm`, a state machine that records every entry.
 *
 * Waiting is on events (leader elected, index applied) with generous deadlines; a deadline
 * only turns a hang into a clear failure.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Configuration } from "../../src/conf/configuration.ts";
import { PeerId } from "../../src/conf/peer_id.ts";
import { RaftError, RaftException, Status } from "../../src/errors/status.ts";
import type { Closure } from "../../src/node/closure.ts";
import type { Iterator } from "../../src/node/iterator.ts";
import { Node } from "../../src/node/node.ts";
import type { NodeOptions } from "../../src/node/options.ts";
import { type LeaderChangeContext, StateMachine } from "../../src/node/state_machine.ts";
import type { SnapshotReader, SnapshotWriter } from "../../storage/snapshot/snapshot.ts";
import { MemoryNetwork } from "../../transports/memory/memory_network.ts";
import "./_faults.ts";
import { SettleTracker } from "./_settle.ts";

/** Generous deadline for anything a loaded 2-core machine must finish. */
export const DEADLINE_MS = 30_000;

/** A state machine that records every applied payload (braft's MockFSM). */
export class MockFsm extends StateMachine {
  logs: string[] = [];
  appliedIndex = 0;
  leaderTerm = -1;
  leaderStarts = 0;
  leaderStops = 0;
  startFollowing = 0;
  stopFollowing = 0;
  snapshotsSaved = 0;
  snapshotsLoaded = 0;
  snapshotIndex = 0;
  errors: RaftException[] = [];
  confs: string[] = [];
  failLoad = false;
  throwOnApplyAt = -1;

  onApply(iter: Iterator): void {
    for (; iter.valid(); iter.next()) {
      if (iter.index() === this.throwOnApplyAt) throw new Error(`mock failure at ${iter.index()}`);
      this.logs.push(iter.data().text());
      this.appliedIndex = iter.index();
      iter.done()?.run(Status.OK());
    }
  }
  override async onSnapshotSave(writer: SnapshotWriter, done: Closure): Promise<void> {
    await writer.writeFile("data", new TextEncoder().encode(JSON.stringify(this.logs)));
    this.snapshotsSaved++;
    this.snapshotIndex = this.appliedIndex;
    done.run(Status.OK());
  }
  override async onSnapshotLoad(reader: SnapshotReader): Promise<void> {
    if (this.failLoad) throw new Error("mock load failure");
    this.logs = JSON.parse(new TextDecoder().decode(await reader.readFile("data"))) as string[];
    this.snapshotsLoaded++;
    this.snapshotIndex = reader.loadMeta().lastIncludedIndex;
    this.appliedIndex = this.snapshotIndex;
  }
  override onLeaderStart(term: number): void {
    this.leaderTerm = term;
    this.leaderStarts++;
  }
  override onLeaderStop(): void {
    this.leaderTerm = -1;
    this.leaderStops++;
  }
  override onStartFollowing(_ctx: LeaderChangeContext): void {
    this.startFollowing++;
  }
  override onStopFollowing(_ctx: LeaderChangeContext): void {
    this.stopFollowing++;
  }
  override onError(e: RaftException): void {
    this.errors.push(e);
  }
  override onConfigurationCommitted(conf: Configuration): void {
    this.confs.push(conf.toString());
  }
}

/** Options for a {@linkcode Cluster}. */
export interface ClusterOptions {
  electionTimeoutMs?: number;
  snapshotIntervalS?: number;
  catchupMargin?: number;
  /** `faultmem`: memory:// meta and snapshots, the log on `faultFs` (see `_faults.ts`). */
  storage?: "memory" | "local" | "faultmem";
  enableLeaderLease?: boolean;
  withSnapshots?: boolean;
}

let clusterSeq = 0;

/** Peer ids `127.0.0.1:<port>:0` for `n` peers on distinct ports. */
export function peerIds(n: number, basePort = 5006): PeerId[] {
  return Array.from({ length: n }, (_, i) => PeerId.parse(`127.0.0.1:${basePort + i}:0`));
}

/** Several nodes of one group on one MemoryNetwork. */
export class Cluster {
  readonly name: string;
  readonly net: MemoryNetwork = new MemoryNetwork({ seed: 7 });
  readonly nodes = new Map<string, Node>();
  readonly fsms = new Map<string, MockFsm>();
  /** Every closure given to a node's `apply()` and every Promise from its API. */
  readonly settle: SettleTracker = new SettleTracker();
  readonly #generation = new Map<string, number>();
  readonly #options: ClusterOptions;
  readonly #dir: string | null;
  #initialPeers: PeerId[];

  constructor(name: string, peers: PeerId[], options: ClusterOptions = {}) {
    this.name = `${name}-${++clusterSeq}-${Math.floor(Math.random() * 1e9)}`;
    this.#initialPeers = peers;
    this.#options = options;
    this.#dir = options.storage === "local"
      ? mkdtempSync(join(tmpdir(), "webraft-cluster-"))
      : null;
  }

  #uri(peer: PeerId, kind: string): string {
    const gen = this.#generation.get(peer.key()) ?? 0;
    const id = `${peer.host}_${peer.port}_${peer.idx}_${gen}`;
    if (this.#options.storage === "faultmem" && kind === "log") {
      return `faultmem://${this.name}/${id}/log`;
    }
    return this.#dir === null
      ? `memory://${this.name}/${id}/${kind}`
      : `local://${join(this.#dir, id, kind)}`;
  }

  /** Starts `peer` with the cluster's initial configuration (or an empty one). */
  async start(
    peer: PeerId | string,
    opts: { emptyPeers?: boolean; fsm?: MockFsm; extra?: Partial<NodeOptions> } = {},
  ): Promise<Node> {
    const id = PeerId.from(peer);
    // A restarted node rebuilds its state from snapshot + log into a fresh state machine.
    const fsm = opts.fsm ?? new MockFsm();
    const node = new Node(this.name, id);
    const options: NodeOptions = {
      fsm,
      electionTimeoutMs: this.#options.electionTimeoutMs ?? 300,
      snapshotIntervalS: this.#options.snapshotIntervalS ?? 0,
      catchupMargin: this.#options.catchupMargin ?? 2,
      logUri: this.#uri(id, "log"),
      raftMetaUri: this.#uri(id, "meta"),
      transport: this.net.transport(id.endpoint),
      ...opts.extra,
    };
    if (this.#options.withSnapshots !== false && options.snapshotUri === undefined) {
      options.snapshotUri = this.#uri(id, "snapshot");
    }
    if (this.#options.enableLeaderLease) options.enableLeaderLease = true;
    if (!opts.emptyPeers) options.initialConf = new Configuration(this.#initialPeers);
    this.settle.instrument(node);
    await node.init(options);
    this.nodes.set(id.key(), node);
    this.fsms.set(id.key(), fsm);
    return node;
  }

  /** Shuts `peer` down (its storage survives, as after a crash with synced writes). */
  async stop(peer: PeerId | string): Promise<void> {
    const key = PeerId.from(peer).key();
    const node = this.nodes.get(key);
    this.nodes.delete(key);
    await node?.shutdown();
    await this.net.transport(PeerId.from(peer).endpoint).close();
  }

  /** Wipes `peer`'s storage (it must be stopped) and forgets its state machine. */
  clean(peer: PeerId | string): void {
    const key = PeerId.from(peer).key();
    this.#generation.set(key, (this.#generation.get(key) ?? 0) + 1);
    this.fsms.delete(key);
  }

  /** The part of `peer`'s log path to give `faultFs.injectFault` (faultmem storage). */
  diskPath(peer: PeerId | string): string {
    const id = PeerId.from(peer);
    const gen = this.#generation.get(id.key()) ?? 0;
    return `/${this.name}/${id.host}_${id.port}_${id.idx}_${gen}/`;
  }

  /**
   * Stops every node, then checks that every closure given to `apply()` ran exactly once
   * and every Promise from the nodes' API settled.
   */
  async stopAll(): Promise<void> {
    for (const key of [...this.nodes.keys()]) await this.stop(key);
    await this.net.close();
    if (this.#dir !== null) rmSync(this.#dir, { recursive: true, force: true });
    await this.settle.check(DEADLINE_MS);
  }

  /** Waits for a leader among the running nodes whose first entry of its term is applied. */
  async waitLeader(deadlineMs = DEADLINE_MS): Promise<Node> {
    return await waitFor(
      () => {
        for (const [key, n] of this.nodes) {
          // onLeaderStart has run for this term: the leader's first entry is applied.
          if (n.isLeader() && this.fsms.get(key)?.leaderTerm === n.term()) return n;
        }
        return undefined;
      },
      deadlineMs,
      "a leader",
    );
  }

  /** The running followers. */
  followers(): Node[] {
    return [...this.nodes.values()].filter((n) => !n.isLeader());
  }

  fsm(peer: PeerId | string): MockFsm {
    return this.fsms.get(PeerId.from(peer).key())!;
  }

  /** Applies `n` entries `prefix<i>` through the leader and waits for all of them. */
  async apply(leader: Node, n: number, prefix = "hello"): Promise<void> {
    const all: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      all.push(leader.applyAsync(new TextEncoder().encode(`${prefix}${i}`)));
    }
    await Promise.all(all);
  }

  /** Waits until every running node applied as far as the leader and all logs are equal. */
  async ensureSame(deadlineMs = DEADLINE_MS): Promise<void> {
    const leader = await this.waitLeader(deadlineMs);
    const index = leader.appliedIndex();
    await Promise.all(
      [...this.nodes.values()].map((n) =>
        withDeadline(n.waitApplied(index), deadlineMs, `${n.nodeId()} applies ${index}`)
      ),
    );
    const reference = this.fsm(leader.nodeId()).logs;
    for (const [key, fsm] of this.fsms) {
      if (!this.nodes.has(key)) continue;
      assert.deepEqual(fsm.logs, reference, `state machine of ${key} differs from the leader's`);
    }
  }
}

/** Polls `probe` every few ms until it returns a value; fails after the deadline. */
export async function waitFor<T>(
  probe: () => T | undefined,
  deadlineMs: number,
  what: string,
): Promise<T> {
  const end = Date.now() + deadlineMs;
  while (true) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`Timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Rejects if `p` does not settle within the deadline. */
export function withDeadline<T>(p: Promise<T>, deadlineMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`Timed out after ${deadlineMs} ms waiting for ${what}`)),
        deadlineMs,
      );
    }),
  ]);
}

/** Asserts that `p` rejects with a RaftException carrying `code`. */
export async function rejectsWith(p: Promise<unknown>, code: number): Promise<RaftException> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof RaftException, `expected RaftException, got ${String(e)}`);
    assert.equal(e.code, code, `expected code ${code}, got ${e.message}`);
    return e;
  }
  assert.fail(`expected a rejection with code ${code}`);
}

/** Applies one entry and returns its status (never throws). */
export function applyStatus(node: Node, data: string, expectedTerm = -1): Promise<Status> {
  return new Promise((resolve) =>
    node.apply({ data: new TextEncoder().encode(data), expectedTerm, done: { run: resolve } })
  );
}

/** Sleeps (only for "nothing must happen during this time" assertions). */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export { RaftError };
