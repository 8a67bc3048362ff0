/**
 * A follower restarted on wiped storage (braft's LeaderFail test wipes a node's data): the
 * leader must notice from a heartbeat answer that the follower lost entries it had
 * acknowledged, and replicate to it from scratch.
 */

import { it } from "node:test";
import assert from "node:assert/strict";
import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { MemoryCoreStorage } from "../../src/core/mod.ts";
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
