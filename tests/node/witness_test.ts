// Witness nodes (braft NodeOptions.witness): the state machine of a witness is given no DATA
// entries, its snapshots hold only the meta (onSnapshotSave/onSnapshotLoad are not called), and
// an InstallSnapshot to a witness copies no file.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PeerId } from "../../src/conf/peer_id.ts";
import { RaftError } from "../../src/errors/status.ts";
import { Cluster, DEADLINE_MS, MockFsm, peerIds, rejectsWith, waitFor } from "./cluster.ts";
import { Node } from "../../src/node/node.ts";
import { MemoryNetwork } from "../../transports/memory/memory_network.ts";

function witnessPeers(basePort: number): PeerId[] {
  const [w, a, b] = peerIds(3, basePort);
  return [PeerId.parse(`${w!.endpoint}:0:1`), a!, b!];
}

async function startGroup(c: Cluster, peers: PeerId[]): Promise<void> {
  for (const p of peers) await c.start(p, { extra: { witness: p.isWitness } });
}

async function caughtUp(c: Cluster, node: Node): Promise<void> {
  const leader = await c.waitLeader();
  await waitFor(
    () => (node.appliedIndex() >= leader.appliedIndex() ? true : undefined),
    DEADLINE_MS,
    `${node.nodeId()} to apply`,
  );
}

describe("witness node", () => {
  it("applies no DATA entry and snapshots only the meta; a restart loads no data", async () => {
    const peers = witnessPeers(7900);
    const witness = peers[0]!;
    const c = new Cluster("wsnap", peers);
    try {
      await startGroup(c, peers);
      const leader = await c.waitLeader();
      assert.ok(!leader.nodeId().equals(witness));
      await c.apply(leader, 10);
      const w = c.nodes.get(witness.key())!;
      await caughtUp(c, w);
      assert.deepEqual(c.fsm(witness).logs, []);
      await w.snapshot();
      assert.ok(w.describe().lastSnapshotIndex >= 10, "the witness took a snapshot");
      assert.equal(c.fsm(witness).snapshotsSaved, 0, "onSnapshotSave is not called on a witness");
      await c.stop(witness);
      const again = await c.start(witness, { extra: { witness: true } });
      await caughtUp(c, again);
      assert.equal(c.fsm(witness).snapshotsLoaded, 0, "onSnapshotLoad is not called either");
      assert.ok(again.appliedIndex() >= 10);
      assert.deepEqual(c.fsm(witness).logs, []);
    } finally {
      await c.stopAll();
    }
  });

  it("a witness behind the leader's compacted log installs the snapshot's meta only", async () => {
    const peers = witnessPeers(7910);
    const witness = peers[0]!;
    const c = new Cluster("winstall", peers);
    try {
      await startGroup(c, peers);
      const leader = await c.waitLeader();
      await c.apply(leader, 5, "a");
      await c.stop(witness);
      await c.apply(leader, 10, "b");
      await leader.snapshot();
      await c.apply(leader, 10, "c");
      await leader.snapshot();
      assert.ok(leader.describe().firstIndex > 8, "log compacted");
      await c.apply(leader, 3, "d");
      const w = await c.start(witness, { extra: { witness: true } });
      await caughtUp(c, w);
      assert.ok(w.describe().lastSnapshotIndex > 0, "the witness installed a snapshot");
      assert.equal(c.fsm(witness).snapshotsLoaded, 0);
      assert.deepEqual(c.fsm(witness).logs, []);
      // the group still works with the witness's vote: stop the other replica and write
      const other = c.followers().find((n) => !n.nodeId().equals(witness))!;
      await c.stop(other.nodeId());
      await c.apply(leader, 2, "e");
    } finally {
      await c.stopAll();
    }
  });

  it("init rejects a witness option that is not a boolean", async () => {
    const net = new MemoryNetwork();
    const [p] = peerIds(1, 7920);
    const node = new Node("wopt", p!);
    try {
      await rejectsWith(
        node.init({
          fsm: new MockFsm(),
          logUri: "memory://wopt/log",
          raftMetaUri: "memory://wopt/meta",
          transport: net.transport(p!.endpoint),
          witness: "yes" as unknown as boolean,
        }),
        RaftError.EINVAL,
      );
    } finally {
      await node.shutdown();
      await net.close();
    }
  });
});
