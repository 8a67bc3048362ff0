/**
 * ReadIndex liveness (and the commit index) across membership changes.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { Configuration } from "../../src/conf/configuration.ts";
import { key, ManualNet } from "./manual_net.ts";

describe("ReadIndex across a configuration change", () => {
  it("a read queued before the voter set shrinks is answered", () => {
    const net = new ManualNet(2);
    const leader = net.core(key(1));
    net.elect(key(1));
    assert.ok(leader.isLeader());
    const down = [key(2)];
    const commit = leader.commitIndex();
    assert.ok(leader.readIndex("r").ok());
    net.stabilize(down);
    assert.equal(net.reads.get(key(1))!.length, 0, "the other voter is down");
    assert.ok(leader.proposeConfChange({ peers: new Configuration([key(1)]) }).ok());
    net.stabilize(down);
    const r = net.reads.get(key(1))!;
    assert.deepEqual(r.map((x) => [x.ctx, x.index, x.status.ok()]), [["r", commit, true]]);
    assert.ok(leader.commitIndex() > commit, "the removal commits with the new majority");
  });

  it("entries waiting for the removed voter commit as soon as the smaller set is in effect", () => {
    const net = new ManualNet(2);
    const leader = net.core(key(1));
    net.elect(key(1));
    const down = [key(2)];
    const x = leader.propose(ChunkChain.from("x")).index;
    net.stabilize(down); // durable on the leader, not committed without n2
    assert.ok(leader.commitIndex() < x);
    assert.ok(leader.proposeConfChange({ peers: new Configuration([key(1)]) }).ok());
    const rd = leader.ready(); // carries the new configuration entry, not yet durable
    assert.ok(leader.commitIndex() >= x, "committed by the new majority before advance()");
    net.storages.get(key(1))!.append(rd.entries);
    leader.advance(rd);
  });
});
