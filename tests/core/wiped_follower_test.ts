/**
 * A follower restarted on wiped storage (braft's LeaderFail test wipes a node's data): the
 * leader must notice from a heartbeat answer that the follower lost entries it had
 * acknowledged, and replicate to it from scratch.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { MemoryCoreStorage } from "../../src/core/mod.ts";
import type { Message } from "../../src/core/types.ts";
import { key, ManualNet } from "./manual_net.ts";

it("a follower whose storage was wiped is replicated to again from index 1", () => {
  const net = new ManualNet(3);
  const leader = key(1);
  const victim = key(3);
  net.elect(leader);
  for (let i = 0; i < 5; i++) net.core(leader).propose(ChunkChain.from(`e${i}`));
  net.stabilize();
  const last = net.core(leader).lastIndex();
  assert.equal(net.core(victim).lastIndex(), last);
  const match = net.core(leader).followers().find((f) => f.id === victim)!.match;
  assert.equal(match, last);

  // Wipe and restart the victim: empty log, fresh hard state.
  net.storages.set(victim, new MemoryCoreStorage());
  net.restart(victim);
  assert.equal(net.core(victim).lastIndex(), 0);

  net.tick(5); // heartbeats reveal the loss
  assert.equal(net.core(victim).lastIndex(), last, "the victim got the whole log again");
  assert.deepEqual(net.terms(victim), net.terms(leader));
  assert.ok(net.core(leader).isLeader());
  assert.equal(net.core(leader).followers().find((f) => f.id === victim)!.match, last);
});

describe("InstallSnapshot answers in the wiped-follower bookkeeping", () => {
  it("a stale heartbeat answer after the snapshot answer does not cause a second snapshot", () => {
    const net = new ManualNet(3);
    const leader = net.core(key(1));
    const f = key(3);
    net.elect(key(1));
    for (let i = 0; i < 3; i++) leader.propose(ChunkChain.from(`a${i}`));
    net.stabilize();
    for (let i = 0; i < 5; i++) leader.propose(ChunkChain.from(`b${i}`));
    net.stabilize([f]);
    const snapIndex = leader.appliedIndex();
    net.storages.get(key(1))!.compact(leader.snapshotMetaAt(snapIndex));
    assert.ok(leader.firstIndex() > net.core(f).lastIndex() + 1);
    net.drop((m) => m.to === f || m.from === f);
    const isHbResp = (m: Message): boolean =>
      m.type === "AppendEntriesResp" && m.heartbeat && m.from === f;
    const isHb = (m: Message): boolean => m.type === "AppendEntries" && m.heartbeat && m.to === f;
    const snaps = (): number =>
      net.readies.get(key(1))!.flatMap((rd) => rd.messages).filter((m) =>
        m.type === "InstallSnapshot" && m.to === f
      ).length;
    // heartbeat answers (and the probes they trigger) lead the leader to InstallSnapshot
    const notSnap = (m: Message): boolean => m.type !== "InstallSnapshot";
    for (let i = 0; i < 10 && snaps() === 0; i++) {
      leader.tick();
      net.drain();
      net.deliver(notSnap);
      net.deliver(notSnap);
    }
    assert.equal(snaps(), 1);
    net.drop(notSnap);
    // a later heartbeat is answered before the install; that answer is delayed
    leader.tick();
    net.drain();
    net.deliver(isHb);
    const held = net.queue.filter(isHbResp);
    assert.equal(held.length, 1);
    net.queue = net.queue.filter((m) => !isHbResp(m));
    net.deliver((m) => m.type === "InstallSnapshot"); // installed, answered
    net.deliver((m) => m.type === "InstallSnapshotResp");
    const match = (): number => leader.followers().find((x) => x.id === f)!.match;
    assert.ok(match() >= snapIndex);
    leader.step(held[0]!); // the stale answer arrives last
    net.stabilize();
    assert.equal(snaps(), 1, "no second snapshot");
    assert.equal(match(), leader.lastIndex());
    assert.deepEqual(net.terms(f).slice(snapIndex), net.terms(key(1)).slice(snapIndex));
  });
});
