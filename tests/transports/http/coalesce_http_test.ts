// Coalesced heartbeats over real sockets: 20 groups on the same 3 HTTP endpoints elect, write,
// and fail over when one endpoint's transport closes.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Node } from "../../../src/node/node.ts";
import { NodeManager } from "../../../src/node/node_manager.ts";
import { MockFsm, waitFor, withDeadline } from "../../node/cluster.ts";
import { DEADLINE_MS, HttpCluster, type Member } from "./_http_cluster.ts";

const GROUPS = 20;

interface GroupNode {
  node: Node;
  fsm: MockFsm;
  member: Member;
}

describe("coalesced heartbeats over HttpTransport", () => {
  it("elect, write and fail over in 20 groups sharing 3 endpoints", async () => {
    const cluster = new HttpCluster();
    const members = [
      await cluster.serveMember(),
      await cluster.serveMember(),
      await cluster.serveMember(),
    ];
    const conf = cluster.conf();
    const groups = new Map<string, GroupNode[]>();
    try {
      for (let g = 0; g < GROUPS; g++) {
        const id = `${cluster.group}-g${g}`;
        const nodes: GroupNode[] = [];
        for (const member of members) {
          const fsm = new MockFsm();
          const node = new Node(id, member.peer);
          cluster.settle.instrument(node);
          const base = `memory://${id}/${member.peer.port}`;
          await node.init({
            fsm,
            electionTimeoutMs: 1000,
            logUri: `${base}/log`,
            raftMetaUri: `${base}/meta`,
            initialConf: conf,
          });
          nodes.push({ node, fsm, member });
        }
        groups.set(id, nodes);
      }
      const leaderOf = (g: string, closed: Member | null = null): GroupNode | undefined =>
        groups.get(g)!.find((n) =>
          n.member !== closed && n.node.isLeader() && n.fsm.leaderTerm === n.node.term()
        );
      const allLeaders = (closed: Member | null = null): Promise<GroupNode[]> =>
        waitFor(
          () => {
            const leaders = [...groups.keys()].map((g) => leaderOf(g, closed));
            return leaders.every((l) => l !== undefined) ? leaders as GroupNode[] : undefined;
          },
          DEADLINE_MS,
          "a leader in every group",
        );
      const writeAll = async (leaders: GroupNode[], prefix: string, closed: Member | null) => {
        await Promise.all(
          leaders.map((l, i) => l.node.applyAsync(new TextEncoder().encode(`${prefix}${i}`))),
        );
        await Promise.all(
          [...groups.values()].flatMap((nodes, i) =>
            nodes.filter((n) => n.member !== closed).map((n) =>
              withDeadline(
                n.node.waitApplied(leaders[i]!.node.appliedIndex()),
                DEADLINE_MS,
                `${n.node.nodeId()} applies in group ${i}`,
              )
            )
          ),
        );
      };

      const leaders = await allLeaders();
      await writeAll(leaders, "a", null);
      // Wait for a few heartbeat rounds in batch frames.
      const managers = members.map((m) => NodeManager.existing(m.service.transport!)!);
      await waitFor(
        () => managers.every((m) => m.stats.heartbeatTuplesIn >= 4 * GROUPS) || undefined,
        DEADLINE_MS,
        "heartbeat batches on every endpoint",
      );
      const frames = managers.reduce((n, m) => n + m.stats.heartbeatFramesOut, 0);
      const tuples = managers.reduce((n, m) => n + m.stats.heartbeatTuplesOut, 0);
      console.log(`HTTP: ${tuples} heartbeats and answers in ${frames} batch frames`);
      assert.ok(tuples > frames, `${tuples} tuples in ${frames} frames`);
      for (const m of managers) assert.equal(m.stats.malformed, 0);

      // Close the endpoint that leads the most groups: its groups elect elsewhere.
      const count = (m: Member) => leaders.filter((l) => l.member === m).length;
      const closed = members.reduce((a, b) => (count(b) > count(a) ? b : a));
      assert.ok(count(closed) > 0);
      await closed.service.close();
      const after = await allLeaders(closed);
      for (const l of after) assert.notEqual(l.member, closed);
      await writeAll(after, "b", closed);
    } finally {
      for (const nodes of groups.values()) {
        await Promise.all(nodes.map((n) => n.node.shutdown()));
      }
      await cluster.stopAll();
    }
  });
});
