// braft test_node.cpp scenarios, part 3: leadership transfer, TimeoutNow, following callbacks.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ANY_PEER } from "../../src/conf/peer_id.ts";
import { RaftError } from "../../src/errors/status.ts";
import { applyStatus, Cluster, DEADLINE_MS, peerIds, waitFor } from "./cluster.ts";

describe("braft node scenarios: leadership transfer", () => {
  it("leader_transfer: transfer to a follower makes it leader; data stays identical", async () => {
    const peers = peerIds(3);
    const c = new Cluster("transfer", peers);
    try {
      for (const p of peers) await c.start(p);
      let leader = await c.waitLeader();
      await c.apply(leader, 10);
      const target = c.followers()[0]!.nodeId();
      assert.ok(leader.transferLeadershipTo(target).ok());
      leader = await waitFor(
        () => c.nodes.get(target.key())?.isLeader() ? c.nodes.get(target.key()) : undefined,
        DEADLINE_MS,
        "the target to lead",
      );
      await c.apply(leader, 10, "after");
      await c.ensureSame();
      // Transferring to itself is a no-op success; not-leader gets EPERM.
      assert.ok(leader.transferLeadershipTo(target).ok());
      assert.equal(c.followers()[0]!.transferLeadershipTo(target).code, RaftError.EPERM);
    } finally {
      await c.stopAll();
    }
  });

  it("transfer to ANY_PEER picks a follower", async () => {
    const peers = peerIds(3);
    const c = new Cluster("transferany", peers);
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      await c.apply(leader, 5);
      const old = leader.nodeId();
      assert.ok(leader.transferLeadershipTo(ANY_PEER).ok());
      const next = await waitFor(
        () => {
          const l = [...c.nodes.values()].find((n) => n.isLeader());
          return l && !l.nodeId().equals(old) ? l : undefined;
        },
        DEADLINE_MS,
        "a new leader",
      );
      assert.ok(!next.nodeId().equals(old));
    } finally {
      await c.stopAll();
    }
  });

  it("leader_transfer_resume_on_failure: writes get EBUSY during the transfer, then resume", async () => {
    const peers = peerIds(3);
    const c = new Cluster("transferfail", peers);
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      await c.apply(leader, 5);
      const target = c.followers()[0]!.nodeId();
      await c.stop(target);
      const term = leader.term();
      assert.ok(leader.transferLeadershipTo(target).ok());
      const busy = await applyStatus(leader, "during");
      assert.equal(busy.code, RaftError.EBUSY);
      assert.equal(leader.transferLeadershipTo(target).code, RaftError.EBUSY);
      // After an election timeout the transfer is abandoned and writes resume.
      await waitFor(
        () => leader.isLeader() ? true : undefined,
        DEADLINE_MS,
        "the leader to resume",
      );
      assert.equal(leader.term(), term);
      await c.apply(leader, 5, "resumed");
      await c.start(target);
      await c.ensureSame();
    } finally {
      await c.stopAll();
    }
  });

  it("leader_transfer_before_log_is_completed: a lagging target catches up, then leads", async () => {
    const peers = peerIds(3);
    const c = new Cluster("transferlag", peers);
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      const target = c.followers()[0]!.nodeId();
      await c.stop(target);
      await c.apply(leader, 20);
      await c.start(target);
      // braft: EHOSTUNREACH until the restarted target answers again (parity_test.ts)
      await waitFor(
        () => (leader.transferLeadershipTo(target).ok() ? true : undefined),
        DEADLINE_MS,
        "a transfer to start",
      );
      const next = await c.waitLeader();
      await c.apply(next, 2, "x");
      await c.ensureSame();
    } finally {
      await c.stopAll();
    }
  });

  it("vote() makes a follower campaign; resetElectionTimeoutMs changes the timers", async () => {
    const peers = peerIds(3, 5300);
    const c = new Cluster("vote", peers);
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      await c.apply(leader, 3);
      assert.equal(leader.vote().code, RaftError.EPERM, "only a follower may vote()");
      const follower = c.followers()[0]!;
      assert.ok(follower.resetElectionTimeoutMs(600).ok());
      assert.match(follower.describe().electionTimer, /timeout\(600ms\)/);
      assert.ok(follower.vote(600).ok());
      // The leader still has a valid lease on its followers' votes (check-quorum), so the vote
      // either wins or the old leader stays; either way exactly one leader and no lost data.
      const next = await c.waitLeader();
      await c.apply(next, 3, "after");
      await c.ensureSame();
    } finally {
      await c.stopAll();
    }
  });

  it("electionPriority: leadership moves to the caught-up peer with the highest priority", async () => {
    const peers = peerIds(3, 5310);
    const c = new Cluster("priority", peers);
    try {
      const favourite = peers[2]!;
      // The others elect a leader first, so only a handover can make the favourite lead.
      await c.start(peers[0]!);
      await c.start(peers[1]!);
      const first = await c.waitLeader();
      assert.ok(!first.nodeId().equals(favourite));
      await c.start(favourite, { extra: { electionPriority: 5 } });
      const leader = await waitFor(
        () => (c.nodes.get(favourite.key())?.isLeader() ? c.nodes.get(favourite.key()) : undefined),
        DEADLINE_MS,
        "the high-priority peer to lead",
      );
      await c.apply(leader, 3);
      await c.ensureSame();
    } finally {
      await c.stopAll();
    }
  });

  for (const lease of [false, true]) {
    it(`shutting_leader_triggers_timeout_now${lease ? " (leader lease on)" : ""}: a new leader appears within one election timeout`, async () => {
      const peers = peerIds(3);
      // With the lease on, followers refuse votes while their lease runs, unless the old leader
      // says it stepped down for good (the TimeoutNow it sends on shutdown does).
      const c = new Cluster(lease ? "shutleaderlease" : "shutleader", peers, {
        electionTimeoutMs: 3000,
        enableLeaderLease: lease,
      });
      try {
        for (const p of peers) await c.start(p);
        const leader = await c.waitLeader();
        await c.apply(leader, 5);
        const started = Date.now();
        await c.stop(leader.nodeId());
        await c.waitLeader();
        // Without TimeoutNow the followers would wait at least one election timeout (2 s).
        assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
      } finally {
        await c.stopAll();
      }
    });
  }

  it("removing_leader_triggers_timeout_now: a new leader appears within one election timeout", async () => {
    const peers = peerIds(3);
    const c = new Cluster("rmleadernow", peers, { electionTimeoutMs: 3000 });
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      await c.apply(leader, 5);
      const started = Date.now();
      await leader.removePeer(leader.nodeId());
      const next = await waitFor(
        () => {
          const l = [...c.nodes.values()].find((n) => n.isLeader());
          return l && !l.nodeId().equals(leader.nodeId()) ? l : undefined;
        },
        DEADLINE_MS,
        "a new leader",
      );
      assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
      assert.equal(next.listPeers().length, 2);
    } finally {
      await c.stopAll();
    }
  });

  it("on_start_following and on_stop_following are counted across failover and transfer", async () => {
    const peers = peerIds(5);
    const c = new Cluster("following", peers);
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      await c.apply(leader, 3);
      // Each of the 4 followers started following once.
      await waitFor(
        () => c.followers().every((f) => c.fsm(f.nodeId()).startFollowing === 1) ? true : undefined,
        DEADLINE_MS,
        "4 start_following",
      );
      const target = c.followers()[0]!.nodeId();
      assert.ok(leader.transferLeadershipTo(target).ok());
      const next = await waitFor(
        () => c.nodes.get(target.key())?.isLeader() ? c.nodes.get(target.key()) : undefined,
        DEADLINE_MS,
        "the target to lead",
      );
      await c.apply(next, 3, "x");
      await c.ensureSame();
      // The three bystanders stopped following the old leader and started following the new one;
      // the new leader stopped following; the old leader started following.
      await waitFor(
        () => {
          const others = peers.filter((p) => !p.equals(target) && !p.equals(leader.nodeId()));
          const ok = others.every((p) =>
            c.fsm(p).stopFollowing === 1 && c.fsm(p).startFollowing === 2
          ) &&
            c.fsm(target).stopFollowing === 1 && c.fsm(leader.nodeId()).startFollowing === 1;
          return ok ? true : undefined;
        },
        DEADLINE_MS,
        "following callbacks after the transfer",
      );
    } finally {
      await c.stopAll();
    }
  });
});
