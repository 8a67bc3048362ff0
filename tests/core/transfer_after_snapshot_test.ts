/**
 * braft test_node `transfer_should_work_after_install_snapshot`: a transfer to a peer whose
 * only missing piece was a snapshot sends TimeoutNow once the install is acknowledged (no
 * later append acknowledgement moves its match).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { key, ManualNet } from "./manual_net.ts";

describe("transfer after InstallSnapshot", () => {
  it("the install's acknowledgement sends TimeoutNow when it brings the target up to date", () => {
    const net = new ManualNet(3);
    const L = key(1);
    const F = key(2);
    net.elect(L);
    const leader = net.core(L);
    for (let i = 0; i < 5; i++) {
      assert.ok(leader.propose(ChunkChain.from(`x${i}`)).status.ok());
      net.stabilize([F]);
    }
    const meta = leader.snapshotMetaAt(leader.commitIndex());
    net.storages.get(L)!.compact(meta);
    assert.ok(leader.firstIndex() > net.core(F).lastIndex() + 1, "F needs the snapshot");
    // F answers a heartbeat; the leader sends InstallSnapshot; F installs it; hold its answer
    const isResp = (m: { type: string }): boolean => m.type === "InstallSnapshotResp";
    for (let i = 0; i < 10 && !net.queue.some(isResp); i++) {
      leader.tick();
      net.drain();
      net.deliver((m) => !isResp(m));
    }
    assert.ok(net.queue.some(isResp), "the install was acknowledged");
    assert.equal(net.core(F).lastIndex(), leader.lastIndex(), "the snapshot was all F lacked");
    assert.ok(leader.transferLeader(F).ok());
    net.drain();
    assert.ok(!net.queue.some((m) => m.type === "TimeoutNow"), "not caught up as far as L knows");
    net.deliver(isResp);
    assert.ok(
      net.queue.some((m) => m.type === "TimeoutNow" && m.to === F),
      "TimeoutNow once the install is acknowledged",
    );
    net.stabilize();
    assert.ok(net.core(F).isLeader());
  });
});
