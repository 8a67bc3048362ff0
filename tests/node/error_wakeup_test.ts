// braft NodeImpl::on_error steps a leader down with wakeup_a_candidate: a leader that goes to
// ERROR wakes its most caught-up voter, so the group does not wait an election timeout.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RaftError } from "../../src/errors/status.ts";
import { NodeState } from "../../src/node/options.ts";
import { Cluster, DEADLINE_MS, peerIds, waitFor } from "./cluster.ts";

describe("a leader in ERROR wakes a candidate (braft on_error, wakeup_a_candidate)", () => {
  for (const lease of [false, true]) {
    it(`a new leader appears within one election timeout${lease ? " (leader lease on)" : ""}`, async () => {
      const peers = peerIds(3, lease ? 5660 : 5650);
      // Without the wake-up the followers wait at least one election timeout (and, with the
      // lease on, until their follower lease runs out) before anyone campaigns.
      const c = new Cluster(lease ? "errwakelease" : "errwake", peers, {
        electionTimeoutMs: 4000,
        enableLeaderLease: lease,
      });
      try {
        for (const p of peers) await c.start(p);
        const leader = await c.waitLeader();
        await c.apply(leader, 3);
        const fsm = c.fsm(leader.nodeId());
        fsm.throwOnApplyAt = leader.appliedIndex() + 1;
        const started = Date.now();
        const poisoned = await leader.applyAsync(new TextEncoder().encode("poison")).then(
          () => 0,
          (e: { code?: number }) => e.code ?? -1,
        );
        assert.equal(poisoned, RaftError.ESTATEMACHINE);
        assert.equal(leader.state(), NodeState.ERROR);
        const next = await waitFor(
          () => [...c.nodes.values()].find((n) => n !== leader && n.isLeader()),
          DEADLINE_MS,
          "a new leader",
        );
        const took = Date.now() - started;
        assert.ok(took < 4000, `a new leader took ${took} ms`);
        await c.stop(leader.nodeId());
        await c.apply(next, 3, "after");
      } finally {
        await c.stopAll();
      }
    });
  }
});
