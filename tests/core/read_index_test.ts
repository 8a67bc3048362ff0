/**
 * ReadIndex liveness across membership changes.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
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
});
