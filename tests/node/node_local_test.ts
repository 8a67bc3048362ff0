// A subset of the braft node scenarios on local:// storage (real files in a temp directory).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { applyStatus, Cluster, peerIds } from "./cluster.ts";

describe("braft node scenarios on local:// storage", () => {
  it("TripleNode + leader failover + restart from disk", async () => {
    const peers = peerIds(3, 5200);
    const c = new Cluster("local-triple", peers, { storage: "local" });
    try {
      for (const p of peers) await c.start(p);
      let leader = await c.waitLeader();
      await c.apply(leader, 20, "a");
      const old = leader.nodeId();
      await c.stop(old);
      leader = await c.waitLeader();
      await c.apply(leader, 20, "b");
      await c.start(old); // reopens its segments, meta and snapshot from disk
      await c.ensureSame();
      assert.equal(c.fsm(old).logs.length, 40);
      assert.ok((await applyStatus(leader, "c")).ok());
    } finally {
      await c.stopAll();
    }
  });

  it("RestoreSnapshot and InstallSnapshot with files on disk", async () => {
    const peers = peerIds(3, 5210);
    const c = new Cluster("local-snap", peers, { storage: "local" });
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      await c.apply(leader, 10, "a");
      const lagger = c.followers()[0]!.nodeId();
      await c.stop(lagger);
      await c.apply(leader, 10, "b");
      await leader.snapshot();
      await c.apply(leader, 10, "c");
      await leader.snapshot();
      await c.apply(leader, 5, "d");
      await c.start(lagger);
      await c.ensureSame();
      assert.equal(c.fsm(lagger).snapshotsLoaded, 1);
      // Restart everyone from disk: snapshot + log replay rebuild the same state.
      for (const p of peers) await c.stop(p);
      for (const p of peers) await c.start(p);
      await c.ensureSame();
      for (const p of peers) assert.equal(c.fsm(p).logs.length, 35);
    } finally {
      await c.stopAll();
    }
  });
});
