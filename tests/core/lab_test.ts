/**
 * The classic Raft lab scenarios (elections, agreement, persistence, unreliable networks,
 * churn, snapshots) on the deterministic simulated cluster.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { Cluster } from "../sim/cluster.ts";

function leaderOf(c: Cluster, within = 2000): string {
  assert.ok(
    c.runUntil(() => c.leader() !== null && connected(c, c.leader()!), within),
    "no leader",
  );
  return c.leader()!;
}

function connected(c: Cluster, id: string): boolean {
  const reach = c.ids.filter((x) => x !== id && !c.blocked.has(`${id}>${x}`)).length;
  return reach >= c.ids.length >> 1;
}

/** Commits one write and returns its index (waits for the acknowledgement). */
function commitOne(c: Cluster, within = 3000): number {
  const before = c.acked.size;
  const ok = c.runUntil(() => {
    if (c.acked.size > before) return true;
    if (c.now % 50 === 0) c.propose();
    return false;
  }, within);
  assert.ok(ok, "write did not commit");
  return Math.max(...c.acked.keys());
}

function allApplied(c: Cluster, index: number, ids = c.ids): boolean {
  return ids.every((id) => c.node(id).fsm.length >= index);
}

describe("lab: elections", () => {
  it("initial election: one leader, and the term stays put without failures", () => {
    const c = new Cluster({ seed: 11, voters: 3 });
    leaderOf(c);
    const term = c.node(c.leader()!).core!.term();
    c.run(2000);
    assert.equal(c.node(c.leader()!).core!.term(), term, "no spurious elections");
    assert.equal(c.stats["elections"], 1);
  });

  it("re-election: a partitioned leader is replaced, and no quorum means no leader", () => {
    const c = new Cluster({ seed: 12, voters: 3 });
    const l1 = leaderOf(c);
    c.isolate(l1);
    const l2 = leaderOf(c);
    assert.notEqual(l1, l2);
    c.connect(l1);
    c.run(300);
    assert.equal(c.leader(), l2);
    assert.equal(c.node(l1).core!.role(), "follower");
    // no quorum: no leader among the connected
    c.isolate(l2);
    const other = c.ids.find((id) => id !== l2 && id !== l1)!;
    c.isolate(other);
    c.run(600);
    for (const id of c.ids) {
      assert.notEqual(
        c.node(id).core!.role(),
        "leader",
        `${id} (check-quorum steps a lonely leader down)`,
      );
    }
    c.heal();
    leaderOf(c);
  });

  it("many elections: 7 nodes, random minorities disconnected, a leader whenever a majority is up", () => {
    const c = new Cluster({ seed: 13, voters: 7 });
    leaderOf(c);
    for (let round = 0; round < 10; round++) {
      c.heal();
      const off = c.prng.shuffle([...c.ids]).slice(0, 3);
      for (const id of off) c.isolate(id);
      leaderOf(c, 3000);
    }
  });
});

describe("lab: agreement", () => {
  it("basic agreement: every node applies the same entries", () => {
    const c = new Cluster({ seed: 21, voters: 5 });
    leaderOf(c);
    let last = 0;
    for (let i = 0; i < 5; i++) last = commitOne(c);
    assert.ok(c.runUntil(() => allApplied(c, last), 500));
    c.checkAcked();
  });

  it("fail-agree: agreement continues without one follower, which catches up after rejoining", () => {
    const c = new Cluster({ seed: 22, voters: 3 });
    const l = leaderOf(c);
    const f = c.ids.find((id) => id !== l)!;
    c.isolate(f);
    let last = 0;
    for (let i = 0; i < 5; i++) last = commitOne(c);
    c.connect(f);
    assert.ok(c.runUntil(() => allApplied(c, last), 1000));
  });

  it("fail-no-agree: without a majority nothing commits; after reconnecting it does", () => {
    const c = new Cluster({ seed: 23, voters: 5 });
    const l = leaderOf(c);
    const base = commitOne(c);
    for (const id of c.ids.filter((x) => x !== l).slice(0, 3)) c.isolate(id);
    c.propose("lost?");
    c.run(300);
    assert.equal(c.node(l).core!.commitIndex(), base);
    c.heal();
    leaderOf(c);
    const after = commitOne(c);
    assert.ok(after > base);
    c.checkAcked();
  });

  it("rejoin: a partitioned leader's uncommitted entries are discarded when it rejoins", () => {
    const c = new Cluster({ seed: 24, voters: 3, core: { checkQuorum: false } });
    const l1 = leaderOf(c);
    commitOne(c);
    c.isolate(l1);
    const core1 = c.node(l1).core!;
    for (let i = 0; i < 3; i++) core1.propose(ChunkChain.from(`x${i}`));
    leaderOf(c);
    const idx = commitOne(c);
    c.connect(l1);
    assert.ok(c.runUntil(() => allApplied(c, idx), 2000));
    for (const id of c.ids) assert.ok(!c.node(id).fsm.some((k) => k.startsWith("d:x")));
    c.checkAcked();
  });

  it("backup: leaders back up quickly over long divergent logs", () => {
    const c = new Cluster({ seed: 25, voters: 5, core: { maxEntriesPerMsg: 64 } });
    const l1 = leaderOf(c);
    commitOne(c);
    const others = c.ids.filter((x) => x !== l1);
    // leader plus one follower in a minority take 50 uncommitted entries
    c.partition([l1, others[0]!]);
    for (let i = 0; i < 50; i++) c.propose(`lost${i}`);
    c.run(100);
    // the majority elects a leader and commits 50 entries
    c.partition(others.slice(1));
    leaderOf(c);
    for (let i = 0; i < 50; i++) c.propose(`ok${i}`);
    c.run(400);
    // a new majority from mixed sides
    c.heal();
    const last = commitOne(c, 4000);
    assert.ok(c.runUntil(() => allApplied(c, last), 3000));
    c.checkAcked();
  });
});

describe("lab: persistence", () => {
  it("persist/crash: a full restart keeps every acknowledged write and keeps going", () => {
    const c = new Cluster({ seed: 31, voters: 3 });
    leaderOf(c);
    for (let i = 0; i < 5; i++) commitOne(c);
    for (const id of c.ids) c.crash(id);
    for (const id of c.ids) c.restart(id);
    leaderOf(c);
    const last = commitOne(c);
    assert.ok(c.runUntil(() => allApplied(c, last), 2000));
    c.checkAcked();
  });

  it("crashing the leader repeatedly loses no acknowledged write", () => {
    const c = new Cluster({ seed: 32, voters: 5 });
    for (let i = 0; i < 6; i++) {
      const l = leaderOf(c);
      commitOne(c);
      c.crash(l);
      c.run(50);
      c.restart(l);
    }
    c.checkAcked();
  });

  it("Figure 8 (unreliable): crashes, drops and reordering never lose a committed entry", () => {
    for (let seed = 40; seed < 45; seed++) {
      const c = new Cluster({ seed, voters: 5, delay: [1, 30] });
      for (let i = 0; i < 1500; i++) {
        if (c.prng.chance(0.1)) c.propose();
        if (c.prng.chance(0.01)) c.crash(c.prng.pick(c.ids));
        if (c.prng.chance(0.02)) c.restart(c.prng.pick(c.ids));
        c.dropRate = 0.1;
        c.dupRate = 0.05;
        c.step();
      }
      c.heal();
      for (const id of c.ids) c.restart(id);
      commitOne(c, 5000);
      c.checkAcked();
    }
  });

  it("churn: random crash/restart/isolate with concurrent writes converges", () => {
    const c = new Cluster({ seed: 50, voters: 5 });
    for (let i = 0; i < 3000; i++) {
      if (c.prng.chance(0.2)) c.propose();
      if (c.prng.chance(0.005)) c.crash(c.prng.pick(c.ids));
      if (c.prng.chance(0.01)) c.restart(c.prng.pick(c.ids));
      if (c.prng.chance(0.004)) c.isolate(c.prng.pick(c.ids));
      if (c.prng.chance(0.006)) c.heal();
      c.step();
    }
    c.heal();
    for (const id of c.ids) c.restart(id);
    const last = commitOne(c, 5000);
    assert.ok(c.runUntil(() => allApplied(c, last), 3000));
    c.checkAcked();
    assert.ok(c.acked.size > 50);
  });
});

describe("lab: snapshots", () => {
  it("snapshot install: a follower behind the leader's first index catches up by InstallSnapshot", () => {
    const c = new Cluster({ seed: 61, voters: 3 });
    const l = leaderOf(c);
    const f = c.ids.find((id) => id !== l)!;
    c.isolate(f);
    let last = 0;
    for (let i = 0; i < 20; i++) last = commitOne(c);
    c.run(50);
    for (const id of c.ids) if (id !== f) c.snapshot(id);
    assert.ok(c.node(l).core!.firstIndex() > c.node(f).core!.lastIndex() + 1);
    c.connect(f);
    assert.ok(c.runUntil(() => allApplied(c, last), 2000));
    assert.ok((c.stats["snapshotInstalls"] ?? 0) >= 1);
    // the follower restarts from its installed snapshot
    c.crash(f);
    c.restart(f);
    assert.ok(c.node(f).core!.firstIndex() > 1);
    const more = commitOne(c);
    assert.ok(c.runUntil(() => allApplied(c, more), 2000));
    c.checkAcked();
  });

  it("a restarted leader restores from its snapshot and its log", () => {
    const c = new Cluster({ seed: 62, voters: 3 });
    const l = leaderOf(c);
    for (let i = 0; i < 10; i++) commitOne(c);
    c.snapshot(l, 3);
    for (let i = 0; i < 3; i++) commitOne(c);
    for (const id of c.ids) c.crash(id);
    for (const id of c.ids) c.restart(id);
    const snapIndex = c.node(l).storage.snapshotMeta().index;
    assert.ok(snapIndex > 0);
    assert.equal(c.node(l).core!.appliedIndex(), snapIndex);
    const last = commitOne(c);
    assert.ok(c.runUntil(() => allApplied(c, last), 2000));
    c.checkAcked();
  });
});
