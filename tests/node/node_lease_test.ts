// The leader lease against a clock the test moves by hand: the lease measured in ticks is
// trusted only while real time confirms it, with the margins a follower's side needs.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Node } from "../../src/node/node.ts";
import { type Clock, ManualClock } from "../../src/util/clock.ts";
import { flags } from "../../src/util/flags.ts";
import { Cluster, peerIds } from "./cluster.ts";

const ELECTION_TIMEOUT_MS = 1000; // 20 ticks
const TICK = ELECTION_TIMEOUT_MS / 20;

/** Nodes on a hand-moved clock; `offset` is real time that passes while no timer fires. */
async function leaseCluster(
  name: string,
  basePort: number,
  maxClockDriftMs?: number,
): Promise<{ c: Cluster; manual: ManualClock; setOffset: (ms: number) => void; leader: Node }> {
  const manual = new ManualClock();
  let offset = 0;
  const clock: Clock = {
    now: () => manual.now() + offset,
    setTimer: (fn, ms) => manual.setTimer(fn, ms),
    clearTimer: (h) => manual.clearTimer(h),
  };
  const peers = peerIds(3, basePort);
  const c = new Cluster(name, peers, {
    enableLeaderLease: true,
    electionTimeoutMs: ELECTION_TIMEOUT_MS,
  });
  for (const [i, p] of peers.entries()) {
    const extra = { clock, seed: 11 * i + 1 };
    await c.start(p, {
      extra: maxClockDriftMs === undefined ? extra : { ...extra, maxClockDriftMs },
    });
  }
  const leader = await stableLeader(c, manual);
  return { c, manual, setOffset: (ms) => (offset = ms), leader };
}

/** Lets every message and answer of the current tick arrive (no timer fires meanwhile). */
async function quiet(c: Cluster): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 1));
    await c.net.idle();
  }
}

/**
 * Moves time one tick at a time (every node ticks exactly then), letting messages flow in
 * between, until a leader has held a valid lease for 25 ticks.
 */
async function stableLeader(c: Cluster, manual: ManualClock): Promise<Node> {
  let validTicks = 0;
  let leader: Node | undefined;
  for (let step = 0; step < 5000 && validTicks < 25; step++) {
    manual.advance(TICK);
    await quiet(c);
    leader = [...c.nodes.values()].find((n) => n.isLeader());
    validTicks = leader?.isLeaderLeaseValid() ? validTicks + 1 : 0;
  }
  assert.ok(validTicks >= 25 && leader !== undefined, "a leader with a valid lease");
  return leader;
}

/**
 * Cuts the leader off right after a tick, once the heartbeats sent at that tick were
 * acknowledged (heartbeats go every tick here, see `everyTick`), so the cut time is the send
 * time of the heartbeat the lease rests on. Then moves time a tick at a time and, within each
 * tick, to late points of it (a late next tick). Returns how long after the cut the lease was
 * still trusted, at most.
 */
async function trustedAfterCut(
  c: Cluster,
  manual: ManualClock,
  setOffset: (ms: number) => void,
): Promise<number> {
  const leader = await stableLeader(c, manual);
  const cut = manual.now();
  const others = [...c.nodes.values()].filter((n) => n !== leader).map((n) => n.nodeId().endpoint);
  c.net.partition([leader.nodeId().endpoint], others);
  let longest = -1;
  for (let t = 0; t < 25; t++) {
    for (const late of [0, 0.5, 0.99, 1.5, 1.99]) {
      setOffset(late * TICK);
      if (leader.isLeaderLeaseValid()) {
        longest = Math.max(longest, manual.now() + late * TICK - cut);
      }
    }
    setOffset(0);
    manual.advance(TICK);
    await quiet(c);
  }
  c.net.heal();
  return longest;
}

/** Runs `fn` with a heartbeat at every tick (heartbeat factor = ticks per election timeout). */
async function everyTick(fn: () => Promise<void>): Promise<void> {
  const saved = flags.raft_election_heartbeat_factor;
  flags.raft_election_heartbeat_factor = 20;
  try {
    await fn();
  } finally {
    flags.raft_election_heartbeat_factor = saved;
  }
}

describe("leader lease against the clock", () => {
  it("is trusted less than T - 1 ticks after the last acknowledged heartbeat", async () => {
    // A follower's first tick after a heartbeat may come at once, so it refuses votes for
    // only T - 1 ticks of real time; with no drift margin the lease must end before that.
    await everyTick(async () => {
      const { c, manual, setOffset } = await leaseCluster("leasecut", 6500, 0);
      try {
        const longest = await trustedAfterCut(c, manual, setOffset);
        assert.ok(longest >= 0, "the lease was valid when the leader was cut off");
        assert.ok(longest < 19 * TICK, `lease trusted ${longest} ms after the cut (T - 1: 950)`);
      } finally {
        await c.stopAll();
      }
    });
  });

  it("leaves maxClockDriftMs of margin (at most half of T - 1 ticks)", async () => {
    await everyTick(async () => {
      const { c, manual, setOffset } = await leaseCluster("leasedrift", 6510, 300);
      try {
        const longest = await trustedAfterCut(c, manual, setOffset);
        assert.ok(longest >= 0, "the lease was valid when the leader was cut off");
        assert.ok(longest < 19 * TICK - 300, `lease trusted ${longest} ms after the cut`);
      } finally {
        await c.stopAll();
      }
    });
  });

  it("stays valid through every part of a tick while heartbeats are acknowledged", async () => {
    const { c, manual, setOffset, leader } = await leaseCluster("leasesteady", 6520);
    try {
      for (let t = 0; t < 30; t++) {
        for (const late of [0, 0.25, 0.5, 0.75, 0.99]) {
          setOffset(late * TICK);
          assert.equal(leader.isLeaderLeaseValid(), true, `tick ${t} + ${late}`);
        }
        setOffset(0);
        manual.advance(TICK);
        await quiet(c);
      }
      // Ten seconds pass with no tick (a stalled event loop): not trusted.
      setOffset(10_000);
      assert.equal(leader.isLeaderLeaseValid(), false);
      assert.equal(leader.getLeaderLeaseStatus().state, 2);
      setOffset(0);
    } finally {
      await c.stopAll();
    }
  });
});
