/**
 * braft `vote()` (`_vote_triggered`): a follower's triggered campaign wins under a live leader,
 * with and without leases, and the lease invariant still holds (the other voters wait for the
 * leader to vote before skipping their lease).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { key, ManualNet } from "./manual_net.ts";

for (const leaseEnabled of [false, true]) {
  for (const n of [3, 5]) {
    describe(`triggered vote, ${n} voters${leaseEnabled ? ", leases on" : ""}`, () => {
      it("the follower becomes leader; the old leader stepped down for its request", () => {
        const net = new ManualNet(n, { leaseEnabled });
        const L = key(1);
        const F = key(2);
        net.elect(L);
        net.tick(3);
        const term = net.core(L).term();
        assert.equal(net.core(F).triggerVote(), true);
        assert.equal(net.core(L).triggerVote(), false, "only a follower");
        for (let i = 0; i < 100 && !net.core(F).isLeader(); i++) {
          net.tick(1);
          // the lease invariant: never two leaders while the old one trusts its lease
          assert.ok(!(net.core(F).isLeader() && net.core(L).isLeaderLeaseValid()));
        }
        assert.ok(net.core(F).isLeader(), `${F} leads (role ${net.core(F).role()})`);
        assert.equal(net.core(F).term(), term + 1);
        assert.ok(!net.core(L).isLeader());
      });

      it("an untriggered campaign under a live leader still gets nowhere", () => {
        const net = new ManualNet(n, { leaseEnabled });
        const L = key(1);
        const F = key(2);
        net.elect(L);
        net.tick(3);
        const term = net.core(L).term();
        net.core(F).campaign();
        net.tick(3);
        assert.ok(net.core(L).isLeader());
        assert.equal(net.core(L).term(), term);
      });
    });
  }
}
