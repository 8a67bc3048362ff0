// braft test_node.cpp scenarios, part 1: elections, replication, membership.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Configuration } from "../../src/conf/configuration.ts";
import { RaftError } from "../../src/errors/status.ts";
import {
  applyStatus,
  Cluster,
  DEADLINE_MS,
  peerIds,
  rejectsWith,
  sleep,
  withDeadline,
} from "./cluster.ts";

describe("braft node scenarios: elections and replication", () => {
  it("SingleNode: a one-peer group elects itself and applies", async () => {
    const [p] = peerIds(1);
    const c = new Cluster("single", [p!]);
    try {
      const node = await c.start(p!);
      await c.waitLeader();
      await c.apply(node, 10);
      assert.deepEqual(c.fsm(p!).logs, Array.from({ length: 10 }, (_, i) => `hello${i}`));
      assert.equal(c.fsm(p!).leaderStarts, 1);
    } finally {
      await c.stopAll();
    }
  });

  it("NoLeader: one of three peers alone elects no leader; writes and changes get EPERM", async () => {
    const peers = peerIds(3);
    const c = new Cluster("noleader", peers);
    try {
      const node = await c.start(peers[0]!);
      await sleep(1500); // 5 election timeouts: nothing may happen
      assert.equal(node.isLeader(), false);
      assert.equal(node.leaderId(), null);
      assert.equal((await applyStatus(node, "x")).code, RaftError.EPERM);
      await rejectsWith(node.addPeer(peers[1]!), RaftError.EPERM);
      await rejectsWith(node.removePeer(peers[1]!), RaftError.EPERM);
    } finally {
      await c.stopAll();
    }
  });

  it("TripleNode: three peers elect one leader; expected_term is checked; replicas equal", async () => {
    const peers = peerIds(3);
    const c = new Cluster("triple", peers);
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      await c.apply(leader, 10);
      assert.ok((await applyStatus(leader, "term-ok", leader.term())).ok());
      const wrong = await applyStatus(leader, "term-bad", leader.term() + 1);
      assert.equal(wrong.code, RaftError.EPERM);
      assert.match(wrong.message, /expected_term|term/);
      await c.ensureSame();
      assert.equal(c.fsm(leader.nodeId()).logs.length, 11);
      assert.equal([...c.nodes.values()].filter((n) => n.isLeader()).length, 1);
      assert.deepEqual(leader.listPeers().map(String), peers.map(String));
      const follower = c.followers()[0]!;
      assert.throws(
        () => follower.listPeers(),
        (e: unknown) => (e as { code?: number }).code === RaftError.EPERM,
      );
    } finally {
      await c.stopAll();
    }
  });

  it("LeaderFail: a new leader takes over; the old one rejoins, then recovers after a wipe", async () => {
    const peers = peerIds(3);
    const c = new Cluster("leaderfail", peers);
    try {
      for (const p of peers) await c.start(p);
      let leader = await c.waitLeader();
      await c.apply(leader, 10, "a");
      const old = leader.nodeId();
      await c.stop(old);
      const follower = c.followers()[0]!;
      const st = await applyStatus(follower, "on-follower");
      assert.equal(st.code, RaftError.EPERM);
      leader = await c.waitLeader();
      assert.ok(!leader.nodeId().equals(old));
      await c.apply(leader, 10, "b");
      await c.start(old);
      await c.ensureSame();
      leader = await c.waitLeader();
      await c.apply(leader, 10, "c");
      // Wipe the old leader's data: it catches up from nothing.
      await c.stop(old);
      c.clean(old);
      await c.start(old);
      await c.ensureSame();
      assert.equal(c.fsm(old).logs.length, 30);
    } finally {
      await c.stopAll();
    }
  });

  it("JoinNode: add_peer catches up; a dead peer gives ECATCHUP; concurrent change gives EBUSY", async () => {
    const peers = peerIds(3);
    const c = new Cluster("join", [peers[0]!]);
    try {
      await c.start(peers[0]!);
      const leader = await c.waitLeader();
      await c.apply(leader, 10);
      // A peer that is not running never catches up.
      await rejectsWith(
        withDeadline(leader.addPeer(peers[1]!), DEADLINE_MS, "addPeer"),
        RaftError.ECATCHUP,
      );
      await c.start(peers[1]!, { emptyPeers: true });
      await leader.addPeer(peers[1]!);
      await c.ensureSame();
      // Two changes at once: the second is refused.
      await c.start(peers[2]!, { emptyPeers: true });
      const first = leader.addPeer(peers[2]!);
      await rejectsWith(leader.removePeer(peers[1]!), RaftError.EBUSY);
      await first;
      // Re-adding an existing member succeeds at once.
      await leader.addPeer(peers[2]!);
      assert.equal(leader.listPeers().length, 3);
      await c.apply(leader, 5, "after");
      await c.ensureSame();
    } finally {
      await c.stopAll();
    }
  });

  it("RemoveFollower: writes continue without it; re-added it converges", async () => {
    const peers = peerIds(3);
    const c = new Cluster("rmfollower", peers);
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      await c.apply(leader, 10, "a");
      const victim = c.followers()[0]!.nodeId();
      await c.stop(victim);
      await leader.removePeer(victim);
      assert.equal(leader.listPeers().length, 2);
      await c.apply(leader, 10, "b");
      c.clean(victim);
      await c.start(victim, { emptyPeers: true });
      await leader.addPeer(victim);
      await c.apply(leader, 10, "c");
      await c.ensureSame();
      assert.equal(c.fsm(victim).logs.length, 30);
    } finally {
      await c.stopAll();
    }
  });

  it("RemoveLeader: the leader removes itself, a new one is elected, it is re-added", async () => {
    const peers = peerIds(3);
    const c = new Cluster("rmleader", peers);
    try {
      for (const p of peers) await c.start(p);
      let leader = await c.waitLeader();
      await c.apply(leader, 10, "a");
      const old = leader.nodeId();
      await leader.removePeer(old);
      await c.stop(old);
      leader = await c.waitLeader();
      assert.ok(!leader.nodeId().equals(old));
      assert.equal(leader.listPeers().length, 2);
      await c.apply(leader, 10, "b");
      c.clean(old);
      await c.start(old, { emptyPeers: true });
      await leader.addPeer(old);
      await c.ensureSame();
      assert.equal(c.fsm(old).logs.length, 20);
    } finally {
      await c.stopAll();
    }
  });

  it("PreVote: a removed and re-added follower does not disrupt the leader's term", async () => {
    const peers = peerIds(3);
    const c = new Cluster("prevote", peers);
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      await c.apply(leader, 10, "a");
      const term = leader.term();
      const victim = c.followers()[0]!.nodeId();
      // Cut it off so it keeps timing out, then let it back in.
      c.net.isolate(victim.endpoint);
      await leader.removePeer(victim).catch(() => {});
      await c.apply(leader, 10, "b");
      await sleep(1000);
      c.net.heal();
      await leader.addPeer(victim);
      await c.ensureSame();
      assert.equal(leader.term(), term, "pre-vote kept the term");
      assert.ok(leader.isLeader());
    } finally {
      await c.stopAll();
    }
  });

  it("SetPeer1: reset_peers on a node started empty bootstraps the group", async () => {
    const [p] = peerIds(1);
    const c = new Cluster("setpeer1", [p!]);
    try {
      const node = await c.start(p!, { emptyPeers: true });
      assert.ok(node.resetPeers(new Configuration([p!])).ok());
      await c.waitLeader();
      await c.apply(node, 3);
      assert.equal(c.fsm(p!).logs.length, 3);
      assert.equal(node.resetPeers("").code, RaftError.EINVAL);
    } finally {
      await c.stopAll();
    }
  });

  it("SetPeer2: after losing a majority, reset_peers to the survivor restores service", async () => {
    const peers = peerIds(3);
    const c = new Cluster("setpeer2", peers);
    try {
      for (const p of peers) await c.start(p);
      let leader = await c.waitLeader();
      await c.apply(leader, 10, "a");
      // Equal configuration: OK, nothing happens.
      assert.ok(leader.resetPeers(new Configuration(peers)).ok());
      const survivor = c.followers()[0]!;
      const dead = peers.filter((p) => !p.equals(survivor.nodeId()));
      for (const d of dead) await c.stop(d);
      assert.ok(survivor.resetPeers(new Configuration([survivor.nodeId()])).ok());
      leader = await c.waitLeader();
      assert.ok(leader.nodeId().equals(survivor.nodeId()));
      await c.apply(leader, 10, "b");
      for (const d of dead) {
        c.clean(d);
        await c.start(d, { emptyPeers: true });
        await leader.addPeer(d);
      }
      await c.ensureSame();
      assert.equal(c.fsm(dead[0]!).logs.length, 20);
    } finally {
      await c.stopAll();
    }
  });

  it("LeaderShouldNotChange: a stable group keeps its leader and term", async () => {
    const peers = peerIds(3);
    const c = new Cluster("stable", peers);
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      const term = leader.term();
      await sleep(2000); // ~7 election timeouts
      assert.ok(leader.isLeader());
      assert.equal(leader.term(), term);
      for (const n of c.nodes.values()) assert.equal(n.term(), term);
    } finally {
      await c.stopAll();
    }
  });
});
