/**
 * The `cli` library over its default caller (HTTP POST to `/raft/call`) against a group served
 * with `addService` and a shared secret: leader lookup, membership change, transfer, snapshot,
 * and EACCES without the secret.
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as cli from "../../../src/cli/mod.ts";
import { RaftError } from "../../../src/errors/status.ts";
import { rejectsWith, waitFor } from "../../node/cluster.ts";
import { DEADLINE_MS, HttpCluster } from "./_http_cluster.ts";

const secret = "cli-http-secret";

describe("cli over HTTP", () => {
  it("finds the leader, changes membership, transfers and snapshots; no secret is EACCES", async () => {
    const c = new HttpCluster({ secret });
    try {
      for (let i = 0; i < 3; i++) await c.serveMember();
      const conf = c.conf();
      for (const m of c.members) await c.startNode(m, conf);
      const leader = await c.waitLeader();
      const opts = { secret, timeoutMs: DEADLINE_MS };

      assert.equal(
        (await cli.getLeader(c.group, conf, opts)).toString(),
        leader.nodeId().toString(),
      );
      await rejectsWith(cli.getLeader(c.group, conf, { timeoutMs: DEADLINE_MS }), RaftError.EACCES);
      await rejectsWith(
        cli.getLeader(c.group, conf, { secret: "wrong", timeoutMs: DEADLINE_MS }),
        RaftError.EACCES,
      );

      const fourth = await c.serveMember();
      await c.startNode(fourth, null);
      const change = await cli.addPeer(c.group, conf, fourth.peer, opts);
      assert.equal(change.oldPeers.toString(), conf.toString());
      assert.ok(change.newPeers.contains(fourth.peer));
      await cli.removePeer(c.group, change.newPeers, fourth.peer, opts);

      const target = c.members.find((m) => m.node !== leader && m !== fourth)!;
      await cli.transferLeader(c.group, conf, target.peer, opts);
      await waitFor(() => target.node!.isLeader() || undefined, DEADLINE_MS, "the transfer");
      await cli.snapshot(c.group, target.peer, opts);
      assert.ok(target.node!.describe().lastSnapshotIndex > 0);
    } finally {
      await c.stopAll();
    }
  });
});
