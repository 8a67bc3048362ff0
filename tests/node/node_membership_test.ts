// braft test_node.cpp scenarios, part 4: change_peers, chaos, readonly, reads, learners, misuse.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Configuration } from "../../src/conf/configuration.ts";
import { RaftError, RaftException } from "../../src/errors/status.ts";
import { Node } from "../../src/node/node.ts";
import { type Clock, systemClock } from "../../src/util/clock.ts";
import { Prng } from "../../src/util/prng.ts";
import { MemoryNetwork } from "../../transports/memory/memory_network.ts";
import {
  applyStatus,
  Cluster,
  DEADLINE_MS,
  MockFsm,
  peerIds,
  rejectsWith,
  waitFor,
  withDeadline,
} from "./cluster.ts";

describe("braft node scenarios: membership changes", () => {
  it("change_peers: grow one peer at a time with change_peers; data identical", async () => {
    const peers = peerIds(5);
    const c = new Cluster("changepeers", [peers[0]!]);
    try {
      await c.start(peers[0]!);
      for (const p of peers.slice(1)) await c.start(p, { emptyPeers: true });
      let leader = await c.waitLeader();
      for (let i = 1; i < peers.length; i++) {
        await c.apply(leader, 3, `step${i}-`);
        await leader.changePeers(new Configuration(peers.slice(0, i + 1)));
        leader = await c.waitLeader();
      }
      assert.equal(leader.listPeers().length, 5);
      await c.ensureSame();
      // The same configuration again: done at once.
      await leader.changePeers(new Configuration(peers));
    } finally {
      await c.stopAll();
    }
  });

  it("change_peers_add_multiple_node: unstarted peers give ECATCHUP; joint consensus once they run", async () => {
    const peers = peerIds(4);
    const c = new Cluster("multi", [peers[0]!]);
    try {
      await c.start(peers[0]!);
      const leader = await c.waitLeader();
      await c.apply(leader, 5);
      const all = new Configuration(peers);
      await rejectsWith(
        withDeadline(leader.changePeers(all), DEADLINE_MS, "changePeers"),
        RaftError.ECATCHUP,
      );
      for (const p of peers.slice(1)) await c.start(p, { emptyPeers: true });
      await leader.changePeers(all);
      assert.equal(leader.listPeers().length, 4);
      await c.apply(leader, 5, "after");
      await c.ensureSame();
      // Every follower saw the final, non-joint configuration committed.
      for (const p of peers.slice(1)) {
        await waitFor(
          () => c.fsm(p).confs.includes(all.toString()) ? true : undefined,
          DEADLINE_MS,
          `conf on ${p}`,
        );
      }
    } finally {
      await c.stopAll();
    }
  });

  it("change_peers_steps_down_in_joint_consensus: losing the new majority fails the change, then it converges", async () => {
    const peers = peerIds(5);
    const c = new Cluster("jointdown", peers.slice(0, 3));
    try {
      for (const p of peers.slice(0, 3)) await c.start(p);
      for (const p of peers.slice(3)) await c.start(p, { emptyPeers: true });
      const leader = await c.waitLeader();
      await c.apply(leader, 5);
      // Replace two old followers by the two new peers, and kill both new peers mid-change.
      const keep = [
        leader.nodeId(),
        c.followers().find((f) => peers.slice(0, 3).some((p) => p.equals(f.nodeId())))!.nodeId(),
      ];
      const target = new Configuration([...keep, ...peers.slice(3)]);
      const change = leader.changePeers(target);
      await c.stop(peers[3]!);
      await c.stop(peers[4]!);
      await assert.rejects(
        withDeadline(change, DEADLINE_MS, "changePeers"),
        (e: unknown) => e instanceof RaftException,
      );
      await c.start(peers[3]!, { emptyPeers: true });
      await c.start(peers[4]!, { emptyPeers: true });
      const next = await c.waitLeader();
      await next.changePeers(new Configuration(peers));
      await c.apply(await c.waitLeader(), 3, "final");
      await c.ensureSame();
    } finally {
      await c.stopAll();
    }
  });

  for (const withSnapshot of [false, true]) {
    it(`change_peers_chaos_${withSnapshot ? "with" : "without"}_snapshot: random changes during writes converge`, async () => {
      const seed = withSnapshot ? 41 : 42;
      const rng = new Prng(seed);
      const peers = peerIds(5);
      const c = new Cluster(`chaos${withSnapshot}`, peers);
      try {
        for (const p of peers) await c.start(p);
        let leader = await c.waitLeader();
        let stop = false;
        const failures: string[] = [];
        const writer = (async () => {
          for (let i = 0; i < 300 && !stop; i++) {
            const l = [...c.nodes.values()].find((n) => n.isLeader());
            if (l === undefined) {
              await new Promise((r) => setTimeout(r, 10));
              continue;
            }
            const st = await applyStatus(l, `w${i}`);
            if (!st.ok() && st.code !== RaftError.EPERM && st.code !== RaftError.EBUSY) {
              failures.push(st.toString());
            }
          }
        })();
        for (let round = 0; round < 15; round++) {
          leader = await c.waitLeader();
          const subset = new Configuration(peers.filter(() => rng.chance(0.6)));
          if (subset.size === 0) subset.add(leader.nodeId());
          try {
            await withDeadline(leader.changePeers(subset), DEADLINE_MS, "changePeers");
          } catch (e) {
            assert.ok(e instanceof RaftException, `seed ${seed}: ${String(e)}`);
            assert.ok(
              [RaftError.EPERM, RaftError.EBUSY, RaftError.ECATCHUP].includes(e.code as 1),
              `seed ${seed}: unexpected ${e.message}`,
            );
          }
          if (withSnapshot && rng.chance(0.3)) {
            const l = [...c.nodes.values()].find((n) => n.isLeader());
            await l?.snapshot().catch(() => {});
          }
        }
        stop = true;
        await writer;
        assert.deepEqual(failures, [], `seed ${seed}`);
        // Converge: all peers back in.
        for (let attempt = 0;; attempt++) {
          leader = await c.waitLeader();
          try {
            await withDeadline(
              leader.changePeers(new Configuration(peers)),
              DEADLINE_MS,
              "final changePeers",
            );
            break;
          } catch (e) {
            if (attempt > 10) throw e;
          }
        }
        await c.apply(await c.waitLeader(), 3, "end");
        await c.ensureSame();
      } finally {
        await c.stopAll();
      }
    });
  }
});

describe("braft node scenarios: readonly, reads, learners", () => {
  it("readonly: leader readonly rejects writes; a majority of readonly followers does too", async () => {
    const peers = peerIds(3);
    const c = new Cluster("readonly", peers);
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      await c.apply(leader, 3);
      leader.enterReadonlyMode();
      assert.ok(leader.readonly());
      assert.equal((await applyStatus(leader, "ro")).code, RaftError.EREADONLY);
      leader.leaveReadonlyMode();
      await c.apply(leader, 3, "rw");
      // One readonly follower: still writable.
      const [f1, f2] = c.followers();
      f1!.enterReadonlyMode();
      await c.apply(leader, 2, "one-ro");
      // Both followers readonly: the leader becomes readonly (learned from heartbeats).
      f2!.enterReadonlyMode();
      await waitFor(() => leader.readonly() ? true : undefined, DEADLINE_MS, "leader readonly");
      assert.equal((await applyStatus(leader, "maj-ro")).code, RaftError.EREADONLY);
      // A snapshot still works while readonly.
      await leader.snapshot();
      f2!.leaveReadonlyMode();
      await waitFor(() => leader.readonly() ? undefined : true, DEADLINE_MS, "leader writable");
      await c.apply(leader, 2, "back");
      // braft: a readonly follower gets no new data entries; once writable it catches up
      f1!.leaveReadonlyMode();
      await c.ensureSame();
    } finally {
      await c.stopAll();
    }
  });

  it("readIndex: a linearizable read barrier on the leader; followers ask it", async () => {
    const peers = peerIds(3);
    const c = new Cluster("readindex", peers);
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      await c.apply(leader, 5);
      const index = await leader.readIndex();
      assert.ok(index >= 6, `read index ${index}`);
      assert.ok(leader.appliedIndex() >= index);
      assert.equal(c.fsm(leader.nodeId()).logs.length, 5);
      const follower = c.followers()[0]!;
      assert.ok((await follower.readIndex()) >= index, "a follower read asks the leader");
      assert.equal(c.fsm(follower.nodeId()).logs.length, 5);
      // A leader cut off from its followers cannot confirm leadership.
      for (const f of c.followers()) c.net.isolate(f.nodeId().endpoint);
      await assert.rejects(
        withDeadline(leader.readIndex(), DEADLINE_MS, "read"),
        (e: unknown) => e instanceof RaftException,
      );
      c.net.heal();
    } finally {
      await c.stopAll();
    }
  });

  it("leader lease: valid on a settled leader with the flag; disabled without it", async () => {
    const peers = peerIds(3);
    const c = new Cluster("lease", peers, { enableLeaderLease: true, electionTimeoutMs: 2000 });
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      await c.apply(leader, 2);
      await waitFor(
        () => leader.isLeaderLeaseValid() ? true : undefined,
        DEADLINE_MS,
        "a valid lease",
      );
      assert.equal(leader.getLeaderLeaseStatus().state, 4);
      assert.equal(c.followers()[0]!.isLeaderLeaseValid(), false);
      assert.equal(c.followers()[0]!.getLeaderLeaseStatus().state, 2);
    } finally {
      await c.stopAll();
    }
    const [p] = peerIds(1, 6100);
    const d = new Cluster("nolease", [p!]);
    try {
      const n = await d.start(p!);
      await d.waitLeader();
      assert.equal(n.getLeaderLeaseStatus().state, 1);
      assert.equal(n.isLeaderLeaseValid(), false);
    } finally {
      await d.stopAll();
    }
  });

  it("the lease lapses when ticks lag real time (a stalled event loop)", async () => {
    let offset = 0;
    const clock: Clock = {
      now: () => systemClock.now() + offset,
      setTimer: (fn, ms) => systemClock.setTimer(fn, ms),
      clearTimer: (h) => systemClock.clearTimer(h),
    };
    const peers = peerIds(3, 6200);
    const c = new Cluster("leasestall", peers, {
      enableLeaderLease: true,
      electionTimeoutMs: 2000,
    });
    try {
      for (const p of peers) await c.start(p, { extra: { clock } });
      const leader = await c.waitLeader();
      await c.apply(leader, 2);
      await waitFor(
        () => leader.isLeaderLeaseValid() ? true : undefined,
        DEADLINE_MS,
        "a valid lease",
      );
      offset += 10_000; // ten seconds pass with no tick: the followers may have elected anyone
      assert.equal(leader.isLeaderLeaseValid(), false);
      assert.equal(leader.getLeaderLeaseStatus().state, 2);
    } finally {
      await c.stopAll();
    }
  });

  it("learners receive the log but never vote or count", async () => {
    const peers = peerIds(4);
    const c = new Cluster("learner", peers.slice(0, 3));
    try {
      for (const p of peers.slice(0, 3)) await c.start(p);
      await c.start(peers[3]!, { emptyPeers: true });
      const leader = await c.waitLeader();
      await leader.addLearner(peers[3]!);
      await c.apply(leader, 5);
      await c.ensureSame();
      assert.deepEqual(leader.describe().learners, [peers[3]!.toString()]);
      assert.equal(leader.listPeers().length, 3);
      // Stop two voters: the learner does not make a quorum.
      const voters = c.followers().filter((f) => !f.nodeId().equals(peers[3]!));
      await c.stop(voters[0]!.nodeId());
      await c.stop(voters[1]!.nodeId());
      const st = await withDeadline(applyStatus(leader, "no-quorum"), DEADLINE_MS, "apply");
      assert.equal(st.ok(), false);
      assert.ok(!c.nodes.get(peers[3]!.key())!.isLeader());
    } finally {
      await c.stopAll();
    }
  });
});

describe("misuse gets a clear error, never a hang", () => {
  it("apply before init and after shutdown, init twice, duplicate (group, peer)", async () => {
    const net = new MemoryNetwork();
    const node = new Node("misuse", "127.0.0.1:7000:0");
    assert.equal((await applyStatus(node, "x")).code, RaftError.EPERM);
    await rejectsWith(node.snapshot(), RaftError.EPERM);
    const options = {
      fsm: new MockFsm(),
      initialConf: "127.0.0.1:7000:0",
      logUri: "memory://misuse/log",
      raftMetaUri: "memory://misuse/meta",
      transport: net.transport("127.0.0.1:7000"),
      electionTimeoutMs: 200,
    };
    await node.init(options);
    await rejectsWith(node.init(options), RaftError.EINVAL);
    const twin = new Node("misuse", "127.0.0.1:7000:0");
    await rejectsWith(
      twin.init({ ...options, fsm: new MockFsm(), logUri: "memory://misuse2/log" }),
      RaftError.EEXIST,
    );
    await node.waitLeader();
    await node.shutdown();
    await node.join();
    assert.equal((await applyStatus(node, "late")).code, RaftError.EPERM);
    await rejectsWith(node.addPeer("127.0.0.1:7001:0"), RaftError.EPERM);
    await node.shutdown(); // idempotent
    await net.close();
  });

  it("bad options and bad arguments get EINVAL", async () => {
    const net = new MemoryNetwork();
    const node = new Node("badopts", "127.0.0.1:7002:0");
    const base = {
      fsm: new MockFsm(),
      logUri: "memory://badopts/log",
      raftMetaUri: "memory://badopts/meta",
      transport: net.transport("127.0.0.1:7002"),
    };
    await rejectsWith(node.init({ ...base, logUri: "" }), RaftError.EINVAL);
    await rejectsWith(node.init({ ...base, logUri: "nonsense" }), RaftError.EINVAL);
    await rejectsWith(node.init({ ...base, electionTimeoutMs: -5 }), RaftError.EINVAL);
    await rejectsWith(node.init({ ...base, electionPriority: -1 }), RaftError.EINVAL);
    await rejectsWith(node.init({ ...base, initialConf: "not a conf" }), RaftError.EINVAL);
    await rejectsWith(
      node.init({ ...base, transport: net.transport("127.0.0.1:9999") }),
      RaftError.EINVAL,
    );
    assert.throws(() => new Node("", "127.0.0.1:1"), TypeError);
    assert.throws(() => new Node("g", "bad"), TypeError);
    const good = new Node("badopts2", "127.0.0.1:7003:0");
    await good.init({
      ...base,
      initialConf: "127.0.0.1:7003:0",
      logUri: "memory://badopts2/log",
      raftMetaUri: "memory://badopts2/meta",
      transport: net.transport("127.0.0.1:7003"),
    });
    await good.waitLeader();
    assert.equal(
      (await new Promise<{ code: number }>((r) =>
        good.apply({ data: "str" as unknown as Uint8Array, done: { run: r } })
      )).code,
      RaftError.EINVAL,
    );
    await rejectsWith(good.changePeers("garbage"), RaftError.EINVAL);
    assert.equal(good.transferLeadershipTo("garbage").code, RaftError.EINVAL);
    assert.equal(good.resetElectionTimeoutMs(0).code, RaftError.EINVAL);
    await rejectsWith(good.readCommittedUserLog(-1), RaftError.EINVAL);
    await good.shutdown();
    await net.close();
  });

  it("a throwing onApply puts the node in ERROR, reports onError, and applies nothing more", async () => {
    const [p] = peerIds(1, 7100);
    const c = new Cluster("fsmthrows", [p!]);
    try {
      const fsm = new MockFsm();
      const node = await c.start(p!, { fsm });
      await c.waitLeader();
      await c.apply(node, 3);
      fsm.throwOnApplyAt = node.describe().lastLogId.index + 2;
      const results = await Promise.all([0, 1, 2, 3].map((i) => applyStatus(node, `e${i}`)));
      assert.ok(results[0]!.ok());
      assert.ok(results.slice(1).every((s) => !s.ok()), results.map(String).join(", "));
      await waitFor(
        () => node.describe().state === "ERROR" ? true : undefined,
        DEADLINE_MS,
        "ERROR state",
      );
      assert.equal(fsm.errors.length, 1);
      assert.equal(fsm.errors[0]!.code, RaftError.ESTATEMACHINE);
      assert.equal(fsm.logs.length, 4);
      assert.equal((await applyStatus(node, "after-error")).code, RaftError.EPERM);
    } finally {
      await c.stopAll();
    }
  });
});
