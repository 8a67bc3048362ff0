/**
 * Three (and four) raft nodes in one process over HttpTransport on real loopback sockets:
 * election, 10,000 replicated entries, membership changes, leader transfer, and InstallSnapshot
 * of a multi-MiB snapshot by chunked file copy that survives a failure in the middle.
 */

import assert from "node:assert/strict";
import { decode } from "cbor-x";
import { describe, it } from "node:test";
import { Configuration } from "../../../src/conf/configuration.ts";
import { RaftError, RaftException } from "../../../src/errors/status.ts";
import { flags } from "../../../src/util/flags.ts";
import type { CallOptions, Transport } from "../../../transports/transport.ts";
import { waitFor } from "../../node/cluster.ts";
import { DEADLINE_MS, HttpCluster } from "./_http_cluster.ts";

describe("raft over HttpTransport (real sockets, one process)", () => {
  it("elects a leader and replicates 10,000 entries to every node", async () => {
    const c = new HttpCluster();
    try {
      for (let i = 0; i < 3; i++) await c.serveMember();
      for (const m of c.members) await c.startNode(m, c.conf());
      const leader = await c.waitLeader();
      for (let batch = 0; batch < 10; batch++) {
        const all: Promise<void>[] = [];
        for (let i = 0; i < 1000; i++) {
          all.push(leader.applyAsync(new TextEncoder().encode(`e${batch * 1000 + i}`)));
        }
        await Promise.all(all);
      }
      await c.ensureSame();
      const logs = c.memberOf(leader).fsm!.logs;
      assert.equal(logs.length, 10_000);
      assert.equal(logs[9_999], "e9999");
    } finally {
      await c.stopAll();
    }
  });

  it("adds and removes a peer, and transfers leadership", async () => {
    const c = new HttpCluster();
    try {
      for (let i = 0; i < 3; i++) await c.serveMember();
      const initial = c.conf();
      for (const m of c.members) await c.startNode(m, initial);
      let leader = await c.waitLeader();
      await leader.applyAsync(new TextEncoder().encode("before"));

      const fourth = await c.serveMember();
      await c.startNode(fourth, null);
      await leader.addPeer(fourth.peer);
      await leader.applyAsync(new TextEncoder().encode("with four"));
      await c.ensureSame();
      assert.deepEqual(fourth.fsm!.logs, ["before", "with four"]);

      const target = c.members.find((m) => m.node !== leader && m !== fourth)!;
      assert.ok(leader.transferLeadershipTo(target.peer).ok());
      await waitFor(
        () =>
          target.node!.isLeader() && target.fsm!.leaderTerm === target.node!.term() || undefined,
        DEADLINE_MS,
        "the transfer target to lead",
      );
      leader = target.node!;

      await leader.removePeer(fourth.peer);
      await fourth.node!.shutdown();
      fourth.node = null;
      await leader.applyAsync(new TextEncoder().encode("three again"));
      await c.ensureSame();
      assert.equal(
        new Configuration(leader.listPeers()).toString(),
        initial.toString(),
      );
    } finally {
      await c.stopAll();
    }
  });

  it("installs a multi-MiB snapshot by chunked copy that resumes after a failed chunk", async () => {
    const savedChunk = flags.raft_max_byte_count_per_rpc;
    flags.raft_max_byte_count_per_rpc = 64 * 1024;
    const c = new HttpCluster();
    try {
      for (let i = 0; i < 3; i++) await c.serveMember();
      const conf = c.conf();
      const lagging = c.members[2]!;
      // The lagging follower's transport loses the answer of its 5th file chunk request.
      const faulty = failNthGetFile(lagging.service.transportFor(lagging.peer.endpoint), 5);
      for (const m of c.members.slice(0, 2)) await c.startNode(m, conf);
      const leader = await c.waitLeader();
      const big = "x".repeat(100 * 1024);
      const all: Promise<void>[] = [];
      for (let i = 0; i < 40; i++) {
        all.push(leader.applyAsync(new TextEncoder().encode(`${i}${big}`)));
      }
      await Promise.all(all);
      await leader.snapshot();
      await leader.applyAsync(new TextEncoder().encode("after snapshot"));
      await leader.snapshot(); // the second snapshot drops the log before the first
      assert.ok(leader.describe().firstIndex > 40, "log compacted");
      await leader.applyAsync(new TextEncoder().encode("after second snapshot"));

      await c.startNode(lagging, conf, { transport: faulty.transport });
      await c.ensureSame();
      assert.equal(lagging.fsm!.snapshotsLoaded, 1, "caught up by InstallSnapshot");
      assert.equal(lagging.fsm!.logs.length, 42);
      assert.equal(faulty.failed, 1, "one chunk failed");
      // Resumed from the failed chunk's offset: no chunk was asked for twice except that one.
      const chunks = faulty.offsets.filter((o) => o.name === "data");
      const distinct = new Set(chunks.map((o) => o.offset));
      assert.ok(chunks.length >= 60, `many chunks (${chunks.length})`);
      assert.equal(chunks.length, distinct.size + 1, "only the failed chunk was asked again");
    } finally {
      flags.raft_max_byte_count_per_rpc = savedChunk;
      await c.stopAll();
    }
  });
});

/** Wraps a real transport so that the `n`th GetFile call fails after the request went out. */
function failNthGetFile(inner: Transport, n: number) {
  const state = { failed: 0, offsets: [] as Array<{ name: string; offset: number }> };
  let seen = 0;
  const transport: Transport = {
    endpoint: inner.endpoint,
    listen: (h) => inner.listen(h),
    send: (to, frame) => inner.send(to, frame),
    close: () => inner.close(),
    async call(to: string, request: Uint8Array, options?: CallOptions): Promise<Uint8Array> {
      const body = decode(request) as { t?: string; name?: string; offset?: number };
      if (body.t !== "get_file") return await inner.call(to, request, options);
      state.offsets.push({ name: body.name!, offset: body.offset! });
      const reply = await inner.call(to, request, options);
      if (++seen === n) {
        state.failed++;
        throw RaftException.of(RaftError.EHOSTUNREACH, "test: chunk answer lost");
      }
      return reply;
    },
  };
  return {
    transport,
    get failed() {
      return state.failed;
    },
    get offsets() {
      return state.offsets;
    },
  };
}
