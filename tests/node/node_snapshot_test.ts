// braft test_node.cpp scenarios, part 2: snapshots, install snapshot, bootstrap.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Configuration } from "../../src/conf/configuration.ts";
import { RaftError } from "../../src/errors/status.ts";
import { bootstrap } from "../../src/node/bootstrap.ts";
import { Cluster, DEADLINE_MS, MockFsm, peerIds, rejectsWith, waitFor } from "./cluster.ts";
import { flags } from "../../src/util/flags.ts";

describe("braft node scenarios: snapshots", () => {
  it("RestoreSnapshot: a restarted leader restores from its snapshot plus the log", async () => {
    const [p] = peerIds(1);
    const c = new Cluster("restore", [p!]);
    try {
      let node = await c.start(p!);
      await c.waitLeader();
      await c.apply(node, 10, "a");
      await node.snapshot();
      assert.equal(c.fsm(p!).snapshotsSaved, 1);
      await c.apply(node, 5, "b");
      await c.stop(p!);
      node = await c.start(p!);
      const fsm = c.fsm(p!);
      assert.equal(fsm.snapshotsLoaded, 1, "loaded the snapshot at init");
      await c.waitLeader();
      await node.waitApplied(node.describe().lastLogId.index);
      assert.deepEqual(fsm.logs, [
        ...Array.from({ length: 10 }, (_, i) => `a${i}`),
        ...Array.from({ length: 5 }, (_, i) => `b${i}`),
      ]);
      assert.ok(node.describe().lastSnapshotIndex > 0);
    } finally {
      await c.stopAll();
    }
  });

  it("InstallSnapshot: a follower behind the compacted log catches up by snapshot copy", async () => {
    const peers = peerIds(3);
    const c = new Cluster("install", peers);
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      await c.apply(leader, 10, "a");
      const lagger = c.followers()[0]!.nodeId();
      await c.stop(lagger);
      await c.apply(leader, 10, "b");
      await leader.snapshot();
      await c.apply(leader, 10, "c");
      await leader.snapshot(); // the second snapshot drops the log before the first
      assert.ok(
        leader.describe().firstIndex > 12,
        `log compacted: ${JSON.stringify(leader.describe())}`,
      );
      await c.apply(leader, 10, "d");
      await c.start(lagger);
      await c.ensureSame();
      const fsm = c.fsm(lagger);
      assert.equal(fsm.snapshotsLoaded, 1, "the lagging follower installed a snapshot");
      assert.equal(fsm.logs.length, 40);
    } finally {
      await c.stopAll();
    }
  });

  it("NoSnapshot: without snapshotUri snapshot() fails with EINVAL and shutdown is clean", async () => {
    const [p] = peerIds(1);
    const c = new Cluster("nosnap", [p!], { withSnapshots: false });
    try {
      const node = await c.start(p!);
      await c.waitLeader();
      await rejectsWith(node.snapshot(), RaftError.EINVAL);
    } finally {
      await c.stopAll();
    }
  });

  it("AutoSnapshot: snapshotIntervalS takes snapshots by itself", async () => {
    const [p] = peerIds(1);
    const c = new Cluster("auto", [p!], { snapshotIntervalS: 1 });
    try {
      const node = await c.start(p!);
      await c.waitLeader();
      await c.apply(node, 10);
      await waitFor(
        () => (c.fsm(p!).snapshotsSaved > 0 ? true : undefined),
        10_000,
        "an automatic snapshot",
      );
      assert.ok(c.fsm(p!).snapshotIndex > 0);
    } finally {
      await c.stopAll();
    }
  });

  it("RecoverFollower: a follower down while the leader writes and compacts recovers", async () => {
    const peers = peerIds(3);
    const c = new Cluster("recover", peers);
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      await c.apply(leader, 10, "a");
      const f = c.followers()[0]!.nodeId();
      await c.stop(f);
      await c.apply(leader, 30, "b");
      await leader.snapshot();
      await c.apply(leader, 10, "c");
      await leader.snapshot();
      await c.start(f);
      await c.ensureSame();
      assert.equal(c.fsm(f).logs.length, 50);
    } finally {
      await c.stopAll();
    }
  });

  it("shutdown_and_join_work_after_init_fails: a failing onSnapshotLoad fails init cleanly", async () => {
    const [p] = peerIds(1);
    const c = new Cluster("initfail", [p!]);
    try {
      const node = await c.start(p!);
      await c.waitLeader();
      await c.apply(node, 10);
      await node.snapshot();
      await c.stop(p!);
      const failing = new MockFsm();
      failing.failLoad = true;
      await assert.rejects(c.start(p!, { fsm: failing }), /mock load failure/);
      // The failed node released its (group, peer): a good one can start in its place.
      const again = await c.start(p!);
      await c.waitLeader();
      assert.equal(c.fsm(p!).logs.length, 10);
      await again.shutdown();
      await again.join();
    } finally {
      await c.stopAll();
    }
  });

  it("bootstrap without snapshot: the node starts from the bootstrapped configuration", async () => {
    const [p] = peerIds(1);
    const c = new Cluster("boot", [p!], { withSnapshots: false });
    try {
      const name = `boot-${Math.random()}`;
      await bootstrap({
        groupConf: new Configuration([p!]),
        logUri: `memory://${name}/log`,
        raftMetaUri: `memory://${name}/meta`,
      });
      await rejectsWith(
        bootstrap({
          groupConf: new Configuration([p!]),
          logUri: `memory://${name}/log`,
          raftMetaUri: `memory://${name}/meta`,
        }),
        RaftError.EEXIST,
      );
      const node = await c.start(p!, {
        emptyPeers: true,
        extra: { logUri: `memory://${name}/log`, raftMetaUri: `memory://${name}/meta` },
      });
      await c.waitLeader();
      await c.apply(node, 3);
      assert.equal(c.fsm(p!).logs.length, 3);
    } finally {
      await c.stopAll();
    }
  });

  it("bootstrap with snapshot: existing data at lastLogIndex is restored, then the node leads", async () => {
    const [p] = peerIds(1);
    const c = new Cluster("bootsnap", [p!]);
    try {
      const name = `bootsnap-${Math.random()}`;
      const seed = new MockFsm();
      seed.logs = Array.from({ length: 26 }, (_, i) => `old${i}`);
      seed.appliedIndex = 26;
      const uris = {
        logUri: `memory://${name}/log`,
        raftMetaUri: `memory://${name}/meta`,
        snapshotUri: `memory://${name}/snap`,
      };
      await bootstrap({ groupConf: new Configuration([p!]), lastLogIndex: 26, fsm: seed, ...uris });
      const node = await c.start(p!, { emptyPeers: true, extra: uris });
      const fsm = c.fsm(p!);
      assert.equal(fsm.snapshotsLoaded, 1);
      assert.equal(fsm.logs.length, 26);
      await c.waitLeader();
      await c.apply(node, 2, "new");
      assert.equal(fsm.logs.length, 28);
      assert.ok(node.describe().lastLogId.index >= 29);
    } finally {
      await c.stopAll();
    }
  });

  it("read_committed_user_log: skips configuration entries, reports ENOMOREUSERLOG, EINVAL, ELOGDELETED", async () => {
    const [p] = peerIds(1);
    const c = new Cluster("readlog", [p!]);
    try {
      const node = await c.start(p!);
      await c.waitLeader();
      await c.apply(node, 10);
      // Index 1 is the leader's CONFIGURATION entry: the first user entry follows it.
      const first = await node.readCommittedUserLog(1);
      assert.equal(first.data.text(), "hello0");
      assert.ok(first.index > 1);
      const fifth = await node.readCommittedUserLog(first.index + 4);
      assert.equal(fifth.data.text(), "hello4");
      await rejectsWith(node.readCommittedUserLog(0), RaftError.EINVAL);
      await rejectsWith(
        node.readCommittedUserLog(node.appliedIndex() + 1),
        RaftError.ENOMOREUSERLOG,
      );
      await node.snapshot();
      await c.apply(node, 10, "x");
      await node.snapshot(); // drops the log before the first snapshot
      await rejectsWith(node.readCommittedUserLog(1), RaftError.ELOGDELETED);
    } finally {
      await c.stopAll();
    }
  });

  it("Leader_step_down_during_install_snapshot: the copy source dies mid-install; the follower still catches up", async () => {
    const saved = flags.raft_max_byte_count_per_rpc;
    flags.raft_max_byte_count_per_rpc = 1024; // many small copy calls
    const peers = peerIds(3, 5600);
    const c = new Cluster("installdie", peers);
    try {
      for (const p of peers) await c.start(p);
      let leader = await c.waitLeader();
      const lagger = c.followers()[0]!.nodeId();
      await c.stop(lagger);
      await c.apply(leader, 200, "x".repeat(200)); // ~40 KB of state
      await leader.snapshot();
      await c.apply(leader, 5, "b");
      await leader.snapshot();
      c.net.setDelay(2, 4); // slow the copy down
      await c.start(lagger);
      const node = c.nodes.get(lagger.key())!;
      await waitFor(
        () => node.describe().snapshotStatus === "DOWNLOADING" ? true : undefined,
        DEADLINE_MS,
        "download to start",
      );
      const old = leader.nodeId();
      await c.stop(old); // the copy source goes away mid-download
      c.net.setDelay(0, 0);
      leader = await c.waitLeader();
      await c.apply(leader, 5, "c");
      await leader.snapshot();
      await c.start(old);
      await c.ensureSame();
      assert.equal(c.fsm(lagger).logs.length, 210);
    } finally {
      flags.raft_max_byte_count_per_rpc = saved;
      await c.stopAll();
    }
  });
});
