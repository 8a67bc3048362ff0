/**
 * The partitioning proxy of the fault tests, on three in-process nodes over real sockets (each
 * node's PeerId port is the proxy's, its service listens on another): cutting the leader off
 * makes the other two elect a new leader while the old one cannot commit; a non-peer request
 * still passes; healing brings the old leader back as a follower of the new one; cutting one
 * pair only leaves the group with its leader.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { Hono } from "hono";
import { Configuration } from "../../src/conf/configuration.ts";
import { PeerId } from "../../src/conf/peer_id.ts";
import { Node } from "../../src/node/node.ts";
import { addService, type RaftService } from "../../transports/http/service.ts";
import { serve, type ServeHandle } from "../../transports/http/serve.ts";
import { MockFsm, waitFor } from "../node/cluster.ts";
import { freePorts } from "../examples/_counter_cluster.ts";
import { PartitionProxy } from "./_partition_proxy.ts";
import { rawRequest } from "./_raw_http.ts";

const DEADLINE_MS = 60_000;

interface Member {
  service: RaftService;
  server: ServeHandle;
  node: Node;
  publicPort: number;
}

test("PartitionProxy cuts peers apart and heals them; other clients pass", async () => {
  const group = `proxy-${Math.floor(Math.random() * 1e9)}`;
  const ports = await freePorts(6);
  const proxy = await PartitionProxy.start(
    [0, 1, 2].map((i) => ({ publicPort: ports[i]!, privatePort: ports[3 + i]! })),
  );
  const members: Member[] = [];
  try {
    const peers = [0, 1, 2].map((i) => PeerId.parse(`127.0.0.1:${ports[i]}:0`));
    for (let i = 0; i < 3; i++) {
      const app = new Hono();
      const service = addService(app, `127.0.0.1:${ports[i]}`);
      const server = await serve(app, { hostname: "127.0.0.1", port: ports[3 + i]! });
      const node = new Node(group, peers[i]!);
      members.push({ service, server, node, publicPort: ports[i]! });
      const base = `memory://${group}/${i}`;
      await node.init({
        fsm: new MockFsm(),
        initialConf: new Configuration(peers),
        electionTimeoutMs: 400,
        snapshotIntervalS: 0,
        logUri: `${base}/log`,
        raftMetaUri: `${base}/meta`,
        snapshotUri: `${base}/snapshot`,
      });
    }
    const leaderOf = (among: Member[]) =>
      waitFor(() => among.find((m) => m.node.isLeader()), DEADLINE_MS, "a leader");
    const old = await leaderOf(members);
    const others = members.filter((m) => m !== old);

    for (const m of others) proxy.cut(old.publicPort, m.publicPort);
    assert.ok(proxy.resets > 0, "the leader's open connections were not reset");
    const fresh = await leaderOf(others);
    assert.ok(fresh.node.term() > old.node.term() || !old.node.isLeader());
    // The old leader cannot commit anything while cut off (it may still think it leads).
    const stuck = old.node.isLeader()
      ? await Promise.race([
        old.node.readIndex().then(() => "confirmed", () => "refused"),
        new Promise((r) => setTimeout(r, 1500, "no quorum")),
      ])
      : "not leader";
    assert.notEqual(stuck, "confirmed", "a cut-off leader confirmed a read");
    // A request that is not from a peer passes the cut.
    const stat = await rawRequest(old.publicPort, "GET", "/flags?format=json", null, 10_000);
    assert.equal(stat.kind, "answer", JSON.stringify(stat));

    proxy.heal();
    await waitFor(
      () => old.node.leaderId()?.equals(fresh.node.nodeId()) ? true : undefined,
      DEADLINE_MS,
      "the old leader to follow the new one",
    );
    assert.equal(old.node.isLeader(), false);

    // One cut pair: the group keeps a leader that a majority confirms. Usually that is
    // `fresh`, confirmed by the third node; but on a loaded machine the cut follower may win
    // an election once the third node's lease lapses, so the read is retried on whichever
    // node leads (a cut that split everything would make every attempt fail).
    const follower = members.find((m) => m !== fresh)!;
    proxy.cut(fresh.publicPort, follower.publicPort);
    await readOnSomeLeader(members);
    proxy.heal();
  } finally {
    for (const m of members) await m.node.shutdown();
    for (const m of members) await m.server.shutdown();
    for (const m of members) await m.service.close();
    await proxy.close();
  }
});

/** Confirms a read on the current leader, retrying while leadership moves; fails at the deadline. */
async function readOnSomeLeader(members: Member[]): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  let last: unknown = "no leader";
  while (Date.now() < deadline) {
    const leader = await waitFor(
      () => members.find((m) => m.node.isLeader()),
      DEADLINE_MS,
      "a leader with one pair cut",
    );
    try {
      await leader.node.readIndex();
      return;
    } catch (e) {
      last = e; // the leader stepped down under it: ask the next one
    }
  }
  assert.fail(`no leader confirmed a read with one pair cut: ${last}`);
}
