/**
 * Core features: durability ordering of the Ready contract, timers, membership (catch-up,
 * joint, single step, removal of the leader), transfer, learners, ReadIndex and lease,
 * readonly mode, priority, resetPeers.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { Configuration } from "../../src/conf/configuration.ts";
import { type ConfigurationPayload, EntryType, type LogEntry } from "../../src/core/entry.ts";
import { MemoryCoreStorage, RaftCore } from "../../src/core/mod.ts";
import { RaftError } from "../../src/errors/status.ts";
import { Prng } from "../../src/util/prng.ts";
import { Cluster } from "../sim/cluster.ts";
import { key, ManualNet } from "./manual_net.ts";

function leaderOf(c: Cluster, within = 3000): string {
  assert.ok(c.runUntil(() => c.leader() !== null, within), "no leader");
  return c.leader()!;
}

function commitOne(c: Cluster, within = 3000): number {
  const before = c.acked.size;
  assert.ok(
    c.runUntil(() => {
      if (c.acked.size > before) return true;
      if (c.now % 50 === 0) c.propose();
      return false;
    }, within),
    "write did not commit",
  );
  return Math.max(...c.acked.keys());
}

describe("Ready contract: no acknowledgement before the state it depends on is durable", () => {
  it("starts at term 1 and the leader's first entry is a CONFIGURATION entry", () => {
    const net = new ManualNet(3);
    assert.equal(net.core(key(1)).term(), 1);
    net.elect(key(1));
    const e = net.core(key(1)).entries(1, 2)![0]!;
    assert.equal(e.type, EntryType.CONFIGURATION);
    assert.equal(e.term, net.core(key(1)).term());
    assert.equal(e.conf!.peers.size, 3);
  });

  it("vote grants and append acks only leave after persistence; leader appends leave at once", () => {
    const net = new ManualNet(3);
    net.core(key(1)).campaign();
    net.drain();
    net.deliver(); // pre-votes
    net.deliver(); // pre-vote answers → RequestVote
    for (const rd of net.readies.get(key(1))!) {
      assert.ok(!rd.messages.some((m) => m.type === "RequestVote"));
    }
    net.deliver(); // RequestVote → grants
    const rd2 = net.readies.get(key(2))!.at(-1)!;
    assert.equal(rd2.hardState?.vote, key(1), "the vote is persisted in the same Ready");
    assert.ok(rd2.messagesAfterPersist.some((m) => m.type === "RequestVoteResp" && m.granted));
    assert.ok(!rd2.messages.some((m) => m.type === "RequestVoteResp"));
    net.stabilize();
    const before = net.readies.get(key(1))!.length;
    net.core(key(1)).propose(ChunkChain.from("x"));
    net.drain();
    const rdL = net.readies.get(key(1))![before]!;
    assert.equal(rdL.entries.length, 1, "the leader persists its entry…");
    assert.ok(
      rdL.messages.some((m) => m.type === "AppendEntries" && m.entries.length === 1),
      "…and replicates in parallel",
    );
    net.deliver((m) => m.type === "AppendEntries");
    const rdF = net.readies.get(key(2))!.at(-1)!;
    assert.equal(rdF.entries.length, 1);
    assert.ok(rdF.messagesAfterPersist.some((m) => m.type === "AppendEntriesResp" && m.success));
    assert.ok(!rdF.messages.some((m) => m.type === "AppendEntriesResp"));
  });

  it("a candidate's own vote counts only after advance()", () => {
    const storage = new MemoryCoreStorage();
    const core = new RaftCore({
      id: "a:1:0",
      storage,
      prng: new Prng(1),
      initialConf: { peers: Configuration.parse("a:1:0") },
    });
    core.campaign();
    assert.equal(core.role(), "candidate");
    const rd = core.ready();
    assert.equal(rd.hardState?.vote, "a:1:0");
    assert.equal(core.role(), "candidate");
    storage.setHardState(rd.hardState!);
    core.advance(rd);
    assert.equal(core.role(), "leader");
  });

  it("the leader's own log write counts toward commit only after advance()", () => {
    const storage = new MemoryCoreStorage();
    const core = new RaftCore({
      id: "a:1:0",
      storage,
      prng: new Prng(2),
      initialConf: { peers: Configuration.parse("a:1:0") },
    });
    core.campaign();
    let rd = core.ready();
    storage.setHardState(rd.hardState!);
    core.advance(rd);
    rd = core.ready();
    assert.equal(rd.entries.length, 1);
    assert.equal(core.commitIndex(), 0);
    storage.append(rd.entries);
    core.advance(rd);
    assert.equal(core.commitIndex(), 1);
  });
});

describe("timers", () => {
  it("randomizes the election timeout in [T, T + min(T, maxElectionDelayTicks)]", () => {
    for (const delay of [3, 10, 50]) {
      const seen = new Set<number>();
      for (let seed = 0; seed < 200; seed++) {
        const core = new RaftCore({
          id: "a:1:0",
          storage: new MemoryCoreStorage(),
          prng: new Prng(seed),
          electionTick: 10,
          maxElectionDelayTicks: delay,
          initialConf: { peers: Configuration.parse("a:1:0,b:1:0,c:1:0") },
        });
        let t = 0;
        while (core.role() === "follower") {
          core.tick();
          t++;
        }
        seen.add(t);
      }
      const max = 10 + Math.min(10, delay);
      assert.equal(Math.min(...seen), 10);
      assert.equal(Math.max(...seen), max);
    }
  });

  it("check-quorum: a leader that hears from no majority within T steps down", () => {
    const net = new ManualNet(3);
    net.elect(key(1));
    assert.ok(net.core(key(1)).isLeader());
    for (let i = 0; i < 25; i++) {
      net.core(key(1)).tick();
      net.drain();
      net.drop();
    }
    assert.equal(net.core(key(1)).role(), "follower");
  });

  it("pre-vote: a partitioned node rejoining does not disturb the leader's term", () => {
    const c = new Cluster({ seed: 3, voters: 3 });
    const l = leaderOf(c);
    const f = c.ids.find((id) => id !== l)!;
    const term = c.node(l).core!.term();
    c.isolate(f);
    c.run(1000);
    assert.equal(c.node(f).core!.term(), term, "pre-vote never raises the term");
    c.connect(f);
    c.run(300);
    assert.equal(c.leader(), l);
    assert.equal(c.node(l).core!.term(), term);
  });
});

describe("membership", () => {
  it("adds one peer in a single step after it catches up", () => {
    const c = new Cluster({ seed: 71, voters: 3, spares: 1 });
    const l = leaderOf(c);
    for (let i = 0; i < 5; i++) commitOne(c);
    const st = c.node(l).core!.proposeConfChange({ peers: new Configuration(c.ids) });
    assert.ok(st.ok(), st.toString());
    assert.ok(c.runUntil(() => (c.stats["confChangesDone"] ?? 0) === 1, 2000));
    const newcomer = c.node(c.ids[3]!).core!;
    assert.equal(newcomer.configuration().peers.size, 4);
    assert.ok(!newcomer.isJoint());
    const joint = c.node(l).core!.entries(1, c.node(l).core!.lastIndex() + 1)!.filter((e) =>
      e.conf?.oldPeers !== undefined
    );
    assert.equal(joint.length, 0, "a single change needs no joint configuration");
    const last = commitOne(c);
    assert.ok(c.runUntil(() => c.node(c.ids[3]!).fsm.length >= last, 1000));
  });

  it("uses joint consensus when more than one peer changes; one change at a time (EBUSY)", () => {
    const c = new Cluster({ seed: 72, voters: 3, spares: 2 });
    const l = leaderOf(c);
    commitOne(c);
    const core = c.node(l).core!;
    const target = new Configuration([l, c.ids[3]!, c.ids[4]!]);
    assert.ok(core.proposeConfChange({ peers: target }).ok());
    assert.equal(core.proposeConfChange({ peers: target }).code, RaftError.EBUSY);
    assert.ok(c.runUntil(() => (c.stats["confChangesDone"] ?? 0) === 1, 3000));
    const nl = leaderOf(c);
    const log = c.node(nl).core!.entries(1, c.node(nl).core!.lastIndex() + 1)!;
    const confs = log.filter((e) => e.type === EntryType.CONFIGURATION);
    assert.ok(confs.some((e) => e.conf!.oldPeers !== undefined && e.conf!.oldPeers.size === 3));
    assert.ok(c.node(nl).core!.configuration().peers.equals(target));
    commitOne(c);
  });

  it("fails with ECATCHUP when a new peer does not catch up", () => {
    const c = new Cluster({ seed: 73, voters: 3, spares: 1 });
    const l = leaderOf(c);
    commitOne(c);
    c.crash(c.ids[3]!);
    assert.ok(c.node(l).core!.proposeConfChange({ peers: new Configuration(c.ids) }).ok());
    assert.ok(c.runUntil(() => (c.stats["confChange_ECATCHUP"] ?? 0) === 1, 2000));
    assert.equal(c.node(l).core!.configuration().peers.size, 3);
    assert.ok(!c.node(l).core!.isChangingConf());
  });

  it("a removed leader steps down and wakes a successor with TimeoutNow", () => {
    const c = new Cluster({ seed: 74, voters: 3 });
    const l = leaderOf(c);
    commitOne(c);
    const rest = c.ids.filter((id) => id !== l);
    assert.ok(c.node(l).core!.proposeConfChange({ peers: new Configuration(rest) }).ok());
    assert.ok(c.runUntil(() => c.leader() !== null && c.leader() !== l, 200), "new leader fast");
    assert.ok(c.runUntil(() => (c.stats["confChangesDone"] ?? 0) === 1, 10));
    assert.equal(c.node(l).core!.role(), "follower");
    c.run(1000);
    assert.ok(rest.includes(c.leader()!));
    assert.notEqual(c.node(l).core!.role(), "leader", "a removed node never campaigns");
  });

  it("learners receive the log but never vote or count for commit", () => {
    const c = new Cluster({ seed: 75, voters: 3, spares: 1 });
    const l = leaderOf(c);
    commitOne(c);
    const learner = c.ids[3]!;
    const voters = new Configuration(c.ids.slice(0, 3));
    const st = c.node(l).core!.proposeConfChange({
      peers: voters,
      learners: new Configuration([learner]),
    });
    assert.ok(st.ok());
    const idx = commitOne(c);
    assert.ok(c.runUntil(() => c.node(learner).fsm.length >= idx, 1000));
    // with two voters down, the leader plus the learner cannot commit
    for (const id of c.ids.slice(0, 3)) if (id !== l) c.crash(id);
    const before = c.node(l).core!.commitIndex();
    c.propose();
    c.run(300);
    assert.equal(c.node(l).core!.commitIndex(), before);
    assert.notEqual(c.node(learner).core!.role(), "leader");
  });
});

describe("leadership transfer", () => {
  it("hands leadership to the target", () => {
    const c = new Cluster({ seed: 81, voters: 3 });
    const l = leaderOf(c);
    commitOne(c);
    const target = c.ids.find((id) => id !== l)!;
    assert.ok(c.node(l).core!.transferLeader(target).ok());
    assert.equal(c.node(l).core!.propose(ChunkChain.from("x")).status.code, RaftError.EBUSY);
    assert.ok(c.runUntil(() => c.leader() === target, 300));
    commitOne(c);
  });

  it("aborts after T when the target is down, and writes resume", () => {
    const c = new Cluster({ seed: 82, voters: 3 });
    const l = leaderOf(c);
    commitOne(c);
    const target = c.ids.find((id) => id !== l)!;
    c.crash(target);
    const core = c.node(l).core!;
    assert.ok(core.transferLeader(target).ok());
    assert.equal(core.transferLeader(target).code, RaftError.EBUSY);
    assert.ok(c.runUntil(() => core.transferee() === "", 200));
    assert.ok(core.isLeader());
    commitOne(c);
  });

  it("ANY_PEER picks a caught-up voter; non-voters are refused", () => {
    const c = new Cluster({ seed: 83, voters: 3, spares: 1 });
    const l = leaderOf(c);
    commitOne(c);
    assert.equal(c.node(l).core!.transferLeader(c.ids[3]!).code, RaftError.EINVAL);
    assert.ok(c.node(l).core!.transferLeader("").ok());
    assert.ok(c.runUntil(() => c.leader() !== l && c.leader() !== null, 300));
  });
});

describe("reads and modes", () => {
  it("ReadIndex is confirmed by a heartbeat quorum and returns the commit index", () => {
    const net = new ManualNet(3);
    net.elect(key(1));
    const core = net.core(key(1));
    assert.ok(core.readIndex("r1").ok());
    net.drain();
    assert.equal(net.reads.get(key(1))!.length, 0, "not before the quorum answers");
    net.stabilize();
    const r = net.reads.get(key(1))!;
    assert.equal(r.length, 1);
    assert.equal(r[0]!.ctx, "r1");
    assert.equal(r[0]!.index, core.commitIndex());
    assert.equal(net.core(key(2)).readIndex("x").code, RaftError.EPERM);
  });

  it("ReadIndex fails when the leader cannot reach a quorum and steps down", () => {
    const net = new ManualNet(3);
    net.elect(key(1));
    net.core(key(1)).readIndex("r");
    for (let i = 0; i < 25; i++) {
      net.core(key(1)).tick();
      net.drain();
      net.drop();
    }
    const r = net.reads.get(key(1))!;
    assert.equal(r.length, 1);
    assert.equal(r[0]!.status.code, RaftError.EPERM);
  });

  it("with the leader lease, reads are served without a heartbeat round", () => {
    const net = new ManualNet(3, { leaseEnabled: true });
    net.elect(key(1));
    net.tick(2);
    const core = net.core(key(1));
    assert.ok(core.isLeaderLeaseValid());
    core.readIndex("fast");
    net.drain();
    assert.equal(net.reads.get(key(1))!.length, 1);
    for (let i = 0; i < 15; i++) {
      core.tick();
      net.drain();
      net.drop();
    }
    assert.ok(!core.isLeaderLeaseValid(), "the lease expires without acknowledgements");
  });

  it("readIndex(ctx, false) ignores a valid lease and confirms with a heartbeat round", () => {
    const net = new ManualNet(3, { leaseEnabled: true });
    net.elect(key(1));
    net.tick(2);
    const core = net.core(key(1));
    assert.ok(core.isLeaderLeaseValid());
    core.readIndex("confirmed", false);
    net.drain();
    assert.equal(net.reads.get(key(1))!.length, 0, "not answered from the lease");
    net.stabilize();
    assert.deepEqual(net.reads.get(key(1))!.map((r) => r.ctx), ["confirmed"]);
  });

  it("readonly mode refuses writes with EREADONLY, also when a majority is readonly", () => {
    const net = new ManualNet(3);
    net.elect(key(1));
    const core = net.core(key(1));
    core.setReadonly(true);
    assert.equal(core.propose(ChunkChain.from("x")).status.code, RaftError.EREADONLY);
    core.setReadonly(false);
    assert.ok(core.propose(ChunkChain.from("x")).status.ok());
    net.core(key(2)).setReadonly(true);
    net.tick(2);
    assert.ok(core.propose(ChunkChain.from("y")).status.ok(), "one readonly follower is fine");
    net.core(key(3)).setReadonly(true);
    net.tick(2);
    assert.equal(core.propose(ChunkChain.from("z")).status.code, RaftError.EREADONLY);
    net.core(key(3)).setReadonly(false);
    net.tick(2);
    assert.ok(core.propose(ChunkChain.from("w")).status.ok());
  });

  it("rejects writes on followers (EPERM) and on a term mismatch (EPERM)", () => {
    const net = new ManualNet(3);
    net.elect(key(1));
    assert.equal(net.core(key(2)).propose(ChunkChain.from("x")).status.code, RaftError.EPERM);
    const t = net.core(key(1)).term();
    assert.equal(
      net.core(key(1)).propose(ChunkChain.from("x"), t + 1).status.code,
      RaftError.EPERM,
    );
    assert.ok(net.core(key(1)).propose(ChunkChain.from("x"), t).status.ok());
  });
});

describe("priority and resetPeers", () => {
  it("priority 0 never campaigns on its own timer", () => {
    const c = new Cluster({
      seed: 91,
      voters: 3,
      nodeCore: (id) => ({ priority: id === "n3:1:0" ? 1 : 0 }),
    });
    assert.equal(leaderOf(c), "n3:1:0");
  });

  it("a leader hands over to a caught-up voter of higher priority", () => {
    const c = new Cluster({
      seed: 92,
      voters: 3,
      nodeCore: (id) => ({ priority: id === "n2:1:0" ? 5 : 1 }),
    });
    leaderOf(c);
    for (const n of c.nodes.values()) n.core!.setPeerPriority("n2:1:0", 5);
    assert.ok(c.runUntil(() => c.leader() === "n2:1:0", 1000));
  });

  it("resetPeers restores service after a majority is lost", () => {
    const c = new Cluster({ seed: 93, voters: 3 });
    const l = leaderOf(c);
    commitOne(c);
    const survivor = c.ids.find((id) => id !== l)!;
    for (const id of c.ids) if (id !== survivor) c.crash(id);
    c.run(200);
    assert.equal(c.leader(), null);
    assert.equal(c.node(survivor).core!.resetPeers(new Configuration()).code, RaftError.EINVAL);
    assert.ok(c.node(survivor).core!.resetPeers(new Configuration([survivor])).ok());
    assert.equal(leaderOf(c), survivor);
    commitOne(c);
  });
});

describe("replication details", () => {
  it("respects the in-flight window and the per-message entry and byte limits", () => {
    const net = new ManualNet(3, { maxEntriesPerMsg: 3, maxInflightMsgs: 2, maxBodyBytes: 250 });
    net.elect(key(1));
    net.tick(1);
    const core = net.core(key(1));
    for (let i = 0; i < 20; i++) core.propose(ChunkChain.from("x".repeat(i < 10 ? 10 : 100)));
    net.drain();
    const toB = net.queue.filter((m) =>
      m.type === "AppendEntries" && m.to === key(2) && !m.heartbeat
    );
    assert.equal(toB.length, 2, "window of two messages");
    for (const m of toB) {
      if (m.type !== "AppendEntries") continue;
      assert.ok(m.entries.length <= 3);
      const bytes = m.entries.reduce((n, e) => n + e.data.length, 0);
      assert.ok(m.entries.length === 1 || bytes <= 250);
    }
    net.stabilize();
    assert.equal(net.core(key(2)).lastIndex(), core.lastIndex());
  });

  it("a follower commits min(leaderCommit, last new entry) and never truncates on a shorter resend", () => {
    const net = new ManualNet(3);
    net.elect(key(1));
    const f = net.core(key(2));
    const t = net.core(key(1)).term();
    const e = (index: number) => ({
      index,
      term: t,
      type: EntryType.DATA,
      data: ChunkChain.from(`e${index}`),
    });
    const last = f.lastIndex();
    const base = {
      type: "AppendEntries" as const,
      from: key(1),
      to: key(2),
      term: t,
      heartbeat: false,
      sentTick: 0,
      readSeq: 0,
    };
    f.step({
      ...base,
      prevLogIndex: last,
      prevLogTerm: t,
      entries: [e(last + 1), e(last + 2)],
      commit: last + 100,
    });
    assert.equal(f.commitIndex(), last + 2);
    // a delayed, shorter copy of an earlier message must not cut the log
    f.step({
      ...base,
      prevLogIndex: last,
      prevLogTerm: t,
      entries: [e(last + 1)],
      commit: last + 1,
    });
    assert.equal(f.lastIndex(), last + 2);
  });
});

describe("membership corner cases", () => {
  it("a node left out of an uncommitted configuration still campaigns (thesis §4.2.2)", () => {
    // C_old = {1,2,3} → joint → C_new = {3,4,5}; C_new (index 3) reached only 1 and 2, which
    // are not in it; 1 is down. 3, 4, 5 (joint) need 2 of {1,2,3}, but 2's log is longer, so
    // only 2 can be elected (by C_new's voters) to commit C_new and hand over.
    const cOld = new Configuration([key(1), key(2), key(3)]);
    const cNew = new Configuration([key(3), key(4), key(5)]);
    const conf = (index: number, c: ConfigurationPayload): LogEntry => ({
      index,
      term: 1,
      type: EntryType.CONFIGURATION,
      data: new ChunkChain(),
      conf: c,
    });
    const net = new ManualNet(5, {}, (id, s) => {
      const log = [conf(1, { peers: cOld }), conf(2, { peers: cNew, oldPeers: cOld })];
      if (id === key(1) || id === key(2)) log.push(conf(3, { peers: cNew }));
      s.append(log);
      s.setHardState({ term: 1, vote: "", commit: 2 });
    });
    const down = [key(1)];
    for (let i = 0; i < 80; i++) net.tick(1, down);
    const leaders = [3, 4, 5].filter((i) => net.core(key(i)).isLeader());
    assert.equal(leaders.length, 1, "a member of the new configuration leads");
    assert.ok(!net.core(key(2)).isLeader(), "the removed node handed over");
    assert.ok(net.core(key(3)).configuration().peers.equals(cNew));
    assert.ok(!net.core(key(3)).isJoint());
    assert.ok(net.core(key(3)).commitIndex() >= 3);
  });
});
