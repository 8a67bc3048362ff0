// The leader lease against a clock the test moves by hand: the lease measured in ticks is
// trusted only while real time confirms it, with the margins a follower's side needs.
import { it } from "node:test";
import assert from "node:assert/strict";
import { type Clock, ManualClock } from "../../src/util/clock.ts";
import { Cluster, peerIds } from "./cluster.ts";

it("the lease is not trusted a tick longer than a follower refuses votes", async () => {
  const manual = new ManualClock();
  let offset = 0; // real time that passes without any timer firing (ticks lag)
  const clock: Clock = {
    now: () => manual.now() + offset,
    setTimer: (fn, ms) => manual.setTimer(fn, ms),
    clearTimer: (h) => manual.clearTimer(h),
  };
  const electionTimeoutMs = 1000; // 20 ticks of 50 ms
  const tick = electionTimeoutMs / 20;
  const peers = peerIds(3, 6500);
  const c = new Cluster("leaseclock", peers, { enableLeaderLease: true, electionTimeoutMs });
  try {
    for (const [i, p] of peers.entries()) await c.start(p, { extra: { clock, seed: 11 * i } });
    // Move time one tick at a time (every node's tick fires exactly on it), letting messages
    // flow in between, until a leader holds a valid lease and has a full window of ticks.
    let validTicks = 0;
    for (let step = 0; step < 5000 && validTicks < 25; step++) {
      manual.advance(tick);
      await new Promise((r) => setTimeout(r, 2));
      const leader = [...c.nodes.values()].find((n) => n.isLeader());
      validTicks = leader?.isLeaderLeaseValid() ? validTicks + 1 : 0;
    }
    assert.ok(validTicks >= 25, "a leader with a valid lease");
    const leader = [...c.nodes.values()].find((n) => n.isLeader())!;
    // Right after a tick, with acks fresh: valid, also a quarter tick later.
    assert.equal(leader.isLeaderLeaseValid(), true);
    offset = tick / 4;
    assert.equal(leader.isLeaderLeaseValid(), true);
    // A whole tick passes with no tick: the oldest heartbeat the core still counts was sent
    // up to T - 1 ticks ago, which is all a follower whose first tick came at once promises.
    offset = tick;
    assert.equal(leader.isLeaderLeaseValid(), false);
    assert.equal(leader.getLeaderLeaseStatus().state, 2);
    // Time catches up (the ticks fire again): valid again.
    offset = 0;
    for (let i = 0; i < 3; i++) {
      manual.advance(tick);
      await new Promise((r) => setTimeout(r, 2));
    }
    assert.equal(leader.isLeaderLeaseValid(), true);
  } finally {
    await c.stopAll();
  }
});
