// braft parity of NodeOptions and raft_* flags: lease flag, vote timeout, catch-up timeout,
// disk batches, extension points (logStorage, snapshot file system and throttle, gcRaftData,
// nodeOwnsFsm), describe() fields and onError's ErrorType.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorType, RaftError, type RaftException } from "../../src/errors/status.ts";
import { Node } from "../../src/node/node.ts";
import { LeaseState } from "../../src/node/options.ts";
import {
  type SnapshotThrottle,
  ThroughputSnapshotThrottle,
} from "../../src/node/snapshot_throttle.ts";
import { type Clock, ManualClock } from "../../src/util/clock.ts";
import { flags, type RaftFlags } from "../../src/util/flags.ts";
import type { LogEntry } from "../../src/core/entry.ts";
import { MemoryFileSystem } from "../../storage/fs/memory.ts";
import type { LogStorage } from "../../storage/log/log_storage.ts";
import { MemoryLogStorage } from "../../storage/log/memory_log_storage.ts";
import { MemoryRaftMetaStorage } from "../../storage/meta/meta_storage.ts";
import { createLogStorage, registerMetaStorage } from "../../storage/uri.ts";
import { gcRaftData } from "../../storage/gc.ts";
import { localFileSystem } from "../../storage/fs/detect.ts";
import { MemoryNetwork } from "../../transports/memory/memory_network.ts";
import { ManualNet } from "../core/manual_net.ts";
import { Cluster, DEADLINE_MS, MockFsm, peerIds, waitFor } from "./cluster.ts";
import { SettleTracker } from "./_settle.ts";

/** Every closure given to `apply()` runs once and every Promise settles (checked last). */
const settle = new SettleTracker();

/** Runs `body` with some flags changed, restoring them afterwards. */
async function withFlags(changes: Partial<RaftFlags>, body: () => Promise<void>): Promise<void> {
  const saved = { ...flags };
  Object.assign(flags, changes);
  try {
    await body();
  } finally {
    Object.assign(flags, saved);
  }
}

/** A log storage that counts its calls (delegating to a private MemoryLogStorage). */
class CountingLog implements LogStorage {
  readonly inner = new MemoryLogStorage();
  appendSizes: number[] = [];
  closed = 0;
  failAppends = false;
  init(): Promise<void> {
    return this.inner.init();
  }
  firstLogIndex(): number {
    return this.inner.firstLogIndex();
  }
  lastLogIndex(): number {
    return this.inner.lastLogIndex();
  }
  getTerm(index: number): number {
    return this.inner.getTerm(index);
  }
  getEntry(index: number): Promise<LogEntry | null> {
    return this.inner.getEntry(index);
  }
  getEntries(lo: number, hi: number, maxBytes?: number): Promise<LogEntry[]> {
    return this.inner.getEntries(lo, hi, maxBytes);
  }
  appendEntries(entries: readonly LogEntry[]): Promise<number> {
    if (this.failAppends) return Promise.reject(new Error("injected disk failure"));
    this.appendSizes.push(entries.length);
    return this.inner.appendEntries(entries);
  }
  truncatePrefix(firstIndexKept: number): Promise<void> {
    return this.inner.truncatePrefix(firstIndexKept);
  }
  truncateSuffix(lastIndexKept: number): Promise<void> {
    return this.inner.truncateSuffix(lastIndexKept);
  }
  reset(nextLogIndex: number): Promise<void> {
    return this.inner.reset(nextLogIndex);
  }
  configurationEntries(): LogEntry[] {
    return this.inner.configurationEntries();
  }
  close(): Promise<void> {
    this.closed++;
    return this.inner.close();
  }
}

let seq = 0;

/** A one-node group on its own network. */
async function single(
  extra: Partial<Parameters<Node["init"]>[0]> = {},
  fsm: MockFsm = new MockFsm(),
): Promise<{ node: Node; net: MemoryNetwork; fsm: MockFsm }> {
  const net = new MemoryNetwork();
  const name = `parity-${++seq}-${Math.floor(Math.random() * 1e9)}`;
  const node = new Node(name, "127.0.0.1:7700:0");
  settle.instrument(node);
  await node.init({
    fsm,
    initialConf: "127.0.0.1:7700:0",
    logUri: `memory://${name}/log`,
    raftMetaUri: `memory://${name}/meta`,
    transport: net.transport("127.0.0.1:7700"),
    ...extra,
  });
  return { node, net, fsm };
}

describe("flags", () => {
  it("raft_enable_leader_lease turns the lease on for nodes that do not set enableLeaderLease", async () => {
    await withFlags({ raft_enable_leader_lease: true }, async () => {
      const { node, net } = await single();
      try {
        await node.waitLeader();
        assert.notEqual(node.getLeaderLeaseStatus().state, LeaseState.DISABLED);
      } finally {
        await node.shutdown();
        await net.close();
      }
    });
    const { node, net } = await single({ enableLeaderLease: false });
    try {
      await node.waitLeader();
      assert.equal(node.getLeaderLeaseStatus().state, LeaseState.DISABLED);
    } finally {
      await node.shutdown();
      await net.close();
    }
  });

  for (const stepDown of [true, false]) {
    it(
      `raft_step_down_when_vote_timedout=${stepDown}: a candidate whose vote timed out ${
        stepDown ? "pre-votes again" : "starts the next election at once"
      }`,
      () => {
        const net = new ManualNet(3, { stepDownWhenVoteTimedout: stepDown });
        const a = net.ids[0]!;
        const core = net.core(a);
        core.campaign();
        // Pre-votes are granted; the real votes are lost.
        for (let i = 0; i < 10; i++) {
          net.drain();
          net.drop((m) => m.type === "RequestVote");
          net.deliver((m) => m.type.startsWith("PreVote"));
        }
        assert.equal(core.role(), "candidate");
        const term = core.term();
        for (let i = 0; i < 25 && core.role() === "candidate" && core.term() === term; i++) {
          core.tick();
          net.drain();
          net.drop();
        }
        if (stepDown) {
          assert.equal(core.role(), "precandidate");
          assert.equal(core.term(), term);
        } else {
          assert.equal(core.role(), "candidate");
          assert.equal(core.term(), term + 1);
        }
      },
    );
  }

  it("raft_leader_batch and raft_max_append_buffer_size bound each log write", async () => {
    for (
      const [changes, cap] of [
        [{ raft_leader_batch: 4 }, 4],
        [{ raft_max_append_buffer_size: 10 }, 2], // 4-byte payloads: two per write
      ] as const
    ) {
      await withFlags(changes, async () => {
        const log = new CountingLog();
        const { node, net } = await single({ logStorage: log });
        try {
          await node.waitLeader();
          await Promise.all(
            Array.from({ length: 40 }, () => node.applyAsync(new Uint8Array([1, 2, 3, 4]))),
          );
          assert.ok(
            Math.max(...log.appendSizes) <= cap,
            `${JSON.stringify(changes)}: writes of ${log.appendSizes.join(",")}`,
          );
          assert.ok(log.appendSizes.some((n) => n === cap), "batches were filled");
        } finally {
          await node.shutdown();
          await net.close();
        }
      });
    }
  });
});

describe("catchupTimeoutMs", () => {
  /** Ms from addPeer of an unreachable peer until it fails with ECATCHUP. */
  async function catchupFailsAfter(catchupTimeoutMs?: number): Promise<number> {
    const manual = new ManualClock();
    const clock: Clock = manual;
    const { node, net } = await single({
      clock,
      electionTimeoutMs: 1000,
      ...(catchupTimeoutMs === undefined ? {} : { catchupTimeoutMs }),
    });
    try {
      await node.waitLeader();
      const start = manual.now();
      let failed: RaftException | null = null;
      node.addPeer("127.0.0.1:7799:0").then(
        () => assert.fail("a dead peer cannot catch up"),
        (e: RaftException) => (failed = e),
      );
      for (let i = 0; i < 400 && failed === null; i++) {
        manual.advance(50);
        await net.idle();
        await new Promise((r) => setTimeout(r, 0));
      }
      assert.ok(failed !== null, "addPeer failed");
      assert.equal((failed as RaftException).code, RaftError.ECATCHUP);
      return manual.now() - start;
    } finally {
      await node.shutdown();
      await net.close();
    }
  }

  it("a new peer gets catchupTimeoutMs to catch up, not just one election timeout", async () => {
    const byDefault = await catchupFailsAfter();
    assert.ok(byDefault >= 1000 && byDefault < 2000, `default: failed after ${byDefault} ms`);
    const longer = await catchupFailsAfter(5000);
    assert.ok(longer >= 5000 && longer < 6500, `catchupTimeoutMs 5000: failed after ${longer} ms`);
  });
});

describe("extension points", () => {
  it("logStorage: the node uses the instance and closes it only when it owns it", async () => {
    for (const owns of [undefined, true, false]) {
      const log = new CountingLog();
      const { node, net } = await single({
        logStorage: log,
        ...(owns === undefined ? {} : { nodeOwnsLogStorage: owns }),
      });
      try {
        await node.waitLeader();
        await node.applyAsync(new Uint8Array([7]));
        assert.ok(log.inner.lastLogIndex() >= 2, "entries went to the given storage");
      } finally {
        await node.shutdown();
        await net.close();
      }
      assert.equal(log.closed, owns === false ? 0 : 1, `nodeOwnsLogStorage ${owns}`);
    }
  });

  it("snapshotFileSystemAdaptor: local:// snapshots go to the given file system", async () => {
    const fs = new MemoryFileSystem();
    // A real temporary path: without the adaptor the snapshot would land on disk there.
    const tmp = mkdtempSync(join(tmpdir(), "webraft-adaptor-"));
    const dir = join(tmp, "snap");
    const { node, net } = await single({
      snapshotUri: `local://${dir}`,
      snapshotFileSystemAdaptor: fs,
    });
    try {
      await node.waitLeader();
      await node.applyAsync(new Uint8Array([1]));
      await node.snapshot();
      const names = await fs.readDir(dir);
      assert.ok(names.some((n) => n.startsWith("snapshot_")), `adaptor holds ${names.join(",")}`);
      assert.equal(await (await localFileSystem()).stat(dir), null, "nothing on the real disk");
    } finally {
      await node.shutdown();
      await net.close();
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it("ThroughputSnapshotThrottle hands out throughput / checkCycle bytes per cycle", () => {
    const clock = new ManualClock();
    const t = new ThroughputSnapshotThrottle(10_000, 10, clock);
    assert.equal(t.throttledByThroughput(600), 600);
    assert.equal(t.throttledByThroughput(600), 400);
    assert.equal(t.throttledByThroughput(600), 0);
    clock.advance(101);
    assert.equal(t.throttledByThroughput(5000), 1000);
    assert.equal(t.retryIntervalMs(), 101);
    assert.throws(() => new ThroughputSnapshotThrottle(0, 10), RangeError);
    const saved = flags.raft_minimal_throttle_threshold_mb;
    flags.raft_minimal_throttle_threshold_mb = 1; // 1 MiB/s floor: 104857 bytes a cycle
    try {
      clock.advance(101);
      assert.equal(t.throttledByThroughput(200_000), 104_857);
    } finally {
      flags.raft_minimal_throttle_threshold_mb = saved;
    }
    assert.throws(() => new ThroughputSnapshotThrottle(100, 0), RangeError);
  });

  it("snapshotThrottle limits the copy on both the serving leader and the downloading follower", async () => {
    /** Allows `per` bytes a call once opened; records what it was asked. */
    class Gate implements SnapshotThrottle {
      asked: number[] = [];
      open = true;
      readonly per: number;
      constructor(per: number) {
        this.per = per;
      }
      throttledByThroughput(bytes: number): number {
        this.asked.push(bytes);
        return this.open ? Math.min(bytes, this.per) : 0;
      }
      retryIntervalMs(): number {
        return 2;
      }
    }
    const peers = peerIds(3, 7710);
    const c = new Cluster("throttle", peers);
    const gates = new Map(peers.map((p) => [p.key(), new Gate(64)]));
    try {
      for (const p of peers) await c.start(p, { extra: { snapshotThrottle: gates.get(p.key())! } });
      const leader = await c.waitLeader();
      await c.apply(leader, 10, "a");
      const lagger = c.followers()[0]!.nodeId();
      await c.stop(lagger);
      await c.apply(leader, 10, "b");
      await leader.snapshot();
      await c.apply(leader, 10, "c");
      await leader.snapshot();
      const serving = gates.get(leader.nodeId().key())!;
      serving.open = false; // hold the copy so that describe() shows it
      await c.start(lagger, { extra: { snapshotThrottle: gates.get(lagger.key())! } });
      await waitFor(
        () =>
          leader.describe().followers.find((f) =>
            f.peer === lagger.toString() && f.installingSnapshot
          ) ?? undefined,
        DEADLINE_MS,
        "the leader to report installingSnapshot",
      );
      serving.open = true;
      await c.ensureSame();
      assert.equal(c.fsm(lagger).snapshotsLoaded, 1);
      const downloading = gates.get(lagger.key())!;
      assert.ok(downloading.asked.length >= 3, `follower asked ${downloading.asked.length}`);
      assert.ok(serving.asked.length >= 3, `leader asked ${serving.asked.length}`);
      assert.ok(
        downloading.asked.every((n) => n <= flags.raft_max_byte_count_per_rpc),
        "the follower asks per chunk",
      );
      assert.ok(serving.asked.every((n) => n <= 64), "the follower requested throttled chunks");
    } finally {
      await c.stopAll();
    }
  });

  it("raft_max_install_snapshot_tasks_num: a refused download waits, then installs", async () => {
    const t = new ThroughputSnapshotThrottle(1 << 20, 10);
    await withFlags({ raft_max_install_snapshot_tasks_num: 1 }, () => {
      assert.equal(t.addOneMoreTask(false), true);
      assert.equal(t.addOneMoreTask(false), false, "one download at a time");
      assert.equal(t.addOneMoreTask(true), true, "the serving side is not counted");
      t.finishOneTask(false);
      assert.equal(t.addOneMoreTask(false), true);
      return Promise.resolve();
    });
    /** Refuses downloads until `admit`. */
    class Admission implements SnapshotThrottle {
      admit = false;
      refused = 0;
      running = 0;
      throttledByThroughput(bytes: number): number {
        return bytes;
      }
      retryIntervalMs(): number {
        return 1;
      }
      addOneMoreTask(): boolean {
        if (!this.admit) this.refused++;
        else this.running++;
        return this.admit;
      }
      finishOneTask(): void {
        this.running--;
      }
    }
    const peers = peerIds(3, 7750);
    const c = new Cluster("tasks", peers);
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      await c.apply(leader, 5, "a");
      const lagger = c.followers()[0]!.nodeId();
      await c.stop(lagger);
      await c.apply(leader, 5, "b");
      await leader.snapshot();
      await c.apply(leader, 5, "c");
      await leader.snapshot();
      const gate = new Admission();
      const fsm = new MockFsm();
      await c.start(lagger, { fsm, extra: { snapshotThrottle: gate } });
      await waitFor(() => gate.refused >= 2 || undefined, DEADLINE_MS, "refused downloads");
      assert.equal(fsm.snapshotsLoaded, 0, "no snapshot while refused");
      gate.admit = true;
      await c.ensureSame();
      assert.equal(fsm.snapshotsLoaded, 1);
      assert.equal(gate.running, 0, "every admitted download finished");
    } finally {
      await c.stopAll();
    }
  });

  it("gcRaftData removes a member's log, meta and snapshots (local:// and memory://)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "webraft-gc-"));
    const fs = await localFileSystem();
    for (const scheme of ["local", "memory"]) {
      const base = scheme === "local" ? `local://${dir}` : `memory://gc-${++seq}`;
      const uris = {
        logUri: `${base}/log`,
        raftMetaUri: `${base}/meta`,
        snapshotUri: `${base}/snapshot`,
      };
      const { node, net } = await single(uris);
      try {
        await node.waitLeader();
        await node.applyAsync(new Uint8Array([1]));
        await node.snapshot();
      } finally {
        await node.shutdown();
        await net.close();
      }
      await gcRaftData(uris);
      if (scheme === "local") {
        for (const kind of ["log", "meta", "snapshot"]) {
          assert.equal(await fs.stat(join(dir, kind)), null, `${kind} removed`);
          assert.equal(await fs.stat(join(dir, `${kind}.tmp`)), null, `${kind}.tmp removed`);
        }
      }
      const log = await createLogStorage(uris.logUri);
      await log.init();
      assert.equal(log.lastLogIndex(), 0, `${scheme}: the log is gone`);
      await log.close();
      const again = await single(uris);
      try {
        assert.equal(again.node.describe().lastSnapshotIndex, 0, `${scheme}: snapshots are gone`);
      } finally {
        await again.node.shutdown();
        await again.net.close();
      }
    }
    await assert.rejects(
      gcRaftData({ logUri: "nosuch://x", raftMetaUri: "memory://x" }),
      (e: RaftException) => e.code === RaftError.EINVAL,
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it("nodeOwnsFsm: the node disposes of its state machine after onShutdown", async () => {
    class Disposable extends MockFsm {
      events: string[] = [];
      override onShutdown(): void {
        this.events.push("shutdown");
      }
      [Symbol.asyncDispose](): Promise<void> {
        this.events.push("dispose");
        return Promise.resolve();
      }
    }
    for (const owns of [true, false]) {
      const fsm = new Disposable();
      const { node, net } = await single({ nodeOwnsFsm: owns }, fsm);
      await node.waitLeader();
      await node.shutdown();
      await net.close();
      assert.deepEqual(fsm.events, owns ? ["shutdown", "dispose"] : ["shutdown"]);
    }
  });
});

describe("describe() and onError", () => {
  it("pendingIndex and the per-follower blocking, installingSnapshot, consecutiveErrorTimes", async () => {
    const peers = peerIds(3, 7720);
    const c = new Cluster("describe", peers);
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      await c.apply(leader, 3);
      assert.equal(leader.describe().pendingIndex, 0, "nothing waits");
      for (const f of c.followers()) await c.stop(f.nodeId());
      const committed = leader.describe().lastCommittedIndex;
      void leader.applyAsync(new Uint8Array([1])).catch(() => {});
      const st = await waitFor(
        () => {
          const s = leader.describe();
          return s.pendingIndex > 0 && s.followers.every((f) => f.consecutiveErrorTimes >= 2)
            ? s
            : undefined;
        },
        DEADLINE_MS,
        "pending index and silent followers",
      );
      assert.equal(st.pendingIndex, committed + 1);
      for (const f of st.followers) {
        assert.equal(typeof f.blocking, "boolean");
        assert.equal(f.installingSnapshot, false);
      }
    } finally {
      await c.stopAll();
    }
  });

  it("onError carries ErrorType SNAPSHOT when an installed snapshot cannot be published", async () => {
    const peers = peerIds(3, 7740);
    const c = new Cluster("snaperr", peers);
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      await c.apply(leader, 5, "a");
      const lagger = c.followers()[0]!.nodeId();
      await c.stop(lagger);
      await c.apply(leader, 5, "b");
      await leader.snapshot();
      await c.apply(leader, 5, "c");
      await leader.snapshot();
      const fs = new MemoryFileSystem();
      const fsm = new MockFsm();
      await c.start(lagger, {
        fsm,
        extra: { snapshotUri: "local:///snaperr", snapshotFileSystemAdaptor: fs },
      });
      fs.injectFault({ op: "rename", path: "/snaperr/temp", count: Infinity });
      await waitFor(() => fsm.errors[0], DEADLINE_MS, "the follower's onError");
      assert.equal(fsm.errors[0]!.type, ErrorType.SNAPSHOT, fsm.errors[0]!.message);
    } finally {
      await c.stopAll();
    }
  });

  it("onError carries braft's ErrorType: LOG, STABLE and STATE_MACHINE", async () => {
    // LOG: the log storage fails an append.
    {
      const log = new CountingLog();
      const { node, net, fsm } = await single({ logStorage: log });
      try {
        await node.waitLeader();
        log.failAppends = true;
        await node.applyAsync(new Uint8Array([1])).catch(() => {});
        await waitFor(() => fsm.errors[0], DEADLINE_MS, "onError");
        assert.equal(fsm.errors[0]!.type, ErrorType.LOG);
      } finally {
        await node.shutdown();
        await net.close();
      }
    }
    // STATE_MACHINE: onApply throws.
    {
      const fsm = new MockFsm();
      const { node, net } = await single({}, fsm);
      try {
        await node.waitLeader();
        fsm.throwOnApplyAt = node.describe().lastIndex + 1;
        await node.applyAsync(new Uint8Array([1])).catch(() => {});
        await waitFor(() => fsm.errors[0], DEADLINE_MS, "onError");
        assert.equal(fsm.errors[0]!.type, ErrorType.STATE_MACHINE);
      } finally {
        await node.shutdown();
        await net.close();
      }
    }
    // STABLE: the meta storage fails to persist a new term.
    {
      let failing = false;
      registerMetaStorage("parityfailmeta", (path) => {
        const inner = new MemoryRaftMetaStorage(path);
        const orig = inner.setTermAndVotedFor.bind(inner);
        inner.setTermAndVotedFor = (term, votedFor) =>
          failing ? Promise.reject(new Error("injected meta failure")) : orig(term, votedFor);
        return inner;
      });
      const peers = peerIds(3, 7730);
      const c = new Cluster("stable", peers);
      try {
        for (const p of peers) {
          await c.start(p, { extra: { raftMetaUri: `parityfailmeta://${c.name}/${p.port}` } });
        }
        const leader = await c.waitLeader();
        failing = true;
        await c.stop(leader.nodeId());
        const fsm = await waitFor(
          () => [...c.fsms.values()].find((f) => f.errors.length > 0),
          DEADLINE_MS,
          "a follower's onError",
        );
        assert.equal(fsm.errors[0]!.type, ErrorType.STABLE);
      } finally {
        failing = false;
        await c.stopAll();
      }
    }
  });
});

it("every closure given to apply() ran exactly once and every node Promise settled", async () => {
  assert.ok(settle.counts.promises > 0, "the check had work");
  await settle.check(30_000);
});
