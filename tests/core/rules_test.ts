/**
 * etcd-style unit tests for Raft rules the simulator rarely exercises: each drives one core
 * (or a hand-driven network) into the corner where the rule decides, and fails if the rule
 * is broken.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { Configuration } from "../../src/conf/configuration.ts";
import { type ConfigurationPayload, EntryType, type LogEntry } from "../../src/core/entry.ts";
import { MemoryCoreStorage, RaftCore } from "../../src/core/mod.ts";
import type { AppendEntriesMessage, Message, Ready } from "../../src/core/types.ts";
import { Prng } from "../../src/util/prng.ts";
import { key, logOf, ManualNet } from "./manual_net.ts";

const three = { peers: new Configuration([key(1), key(2), key(3)]) };
const isVote = (m: Message): boolean =>
  m.type === "PreVote" || m.type === "PreVoteResp" || m.type === "RequestVote" ||
  m.type === "RequestVoteResp";

/** A follower `n2` over storage holding `terms` (entry 1 is the configuration). */
function coreWith(
  terms: number[],
  hard: { term: number; commit: number },
  conf: ConfigurationPayload = three,
): RaftCore {
  const storage = new MemoryCoreStorage();
  storage.append(logOf(terms, conf));
  storage.setHardState({ term: hard.term, vote: "", commit: hard.commit });
  return new RaftCore({ id: key(2), storage, prng: new Prng(3) });
}

function ae(term: number, prev: number, prevTerm: number, commit: number, heartbeat = false) {
  return {
    type: "AppendEntries",
    from: key(1),
    to: key(2),
    term,
    prevLogIndex: prev,
    prevLogTerm: prevTerm,
    entries: [],
    commit,
    heartbeat,
    sentTick: 1,
    readSeq: 0,
  } satisfies AppendEntriesMessage;
}

function drainAll(core: RaftCore): Ready[] {
  const out: Ready[] = [];
  while (core.hasReady()) {
    const rd = core.ready();
    out.push(rd);
    core.advance(rd);
  }
  return out;
}

function sent(rds: Ready[]): Message[] {
  return rds.flatMap((rd) => [...rd.messages, ...rd.messagesAfterPersist]);
}

describe("follower commit bound: min(leaderCommit, index of the last entry known to match)", () => {
  it("an empty AppendEntries at prev 1 with commit 4 commits 1, not the unverified 2", () => {
    const f = coreWith([1, 2], { term: 3, commit: 1 });
    f.step(ae(3, 1, 1, 4));
    assert.equal(f.commitIndex(), 1);
  });

  it("a heartbeat at prev 1 with commit 4 commits 1, not the unverified 2", () => {
    const f = coreWith([1, 2], { term: 3, commit: 1 });
    f.step(ae(3, 1, 1, 4, true));
    assert.equal(f.commitIndex(), 1);
  });
});

describe("vote check on the last log term (§5.4.1)", () => {
  const ask = (lastLogIndex: number, lastLogTerm: number): boolean => {
    const v = coreWith([1, 2, 2], { term: 2, commit: 1 }); // last entry 3 of term 2
    v.step({
      type: "RequestVote",
      from: key(1),
      to: key(2),
      term: 5,
      lastLogIndex,
      lastLogTerm,
      transfer: false,
    });
    return sent(drainAll(v)).some((m) => m.type === "RequestVoteResp" && m.granted);
  };

  it("refuses a longer log with a lower last term", () => {
    assert.equal(ask(9, 1), false);
  });

  it("refuses a shorter log with the same last term", () => {
    assert.equal(ask(2, 2), false);
  });

  it("grants a longer (or equal) log with the same last term", () => {
    assert.equal(ask(4, 2), true);
    assert.equal(ask(3, 2), true);
  });

  it("grants a shorter log with a higher last term", () => {
    assert.equal(ask(1, 3), true);
  });

  it("applies to pre-votes too", () => {
    const v = coreWith([1, 2, 2], { term: 2, commit: 1 });
    v.step({ type: "PreVote", from: key(1), to: key(2), term: 5, lastLogIndex: 9, lastLogTerm: 1 });
    assert.ok(!sent(drainAll(v)).some((m) => m.type === "PreVoteResp" && m.granted));
  });
});

describe("joint consensus needs a majority of the old AND of the new voters", () => {
  // C_old = {1,2,3}, C_new = {1,4,5}; the log holds C_old then the joint configuration.
  const cOld = new Configuration([key(1), key(2), key(3)]);
  const cNew = new Configuration([key(1), key(4), key(5)]);
  const conf = (index: number, c: ConfigurationPayload): LogEntry => ({
    index,
    term: 1,
    type: EntryType.CONFIGURATION,
    data: new ChunkChain(),
    conf: c,
  });
  const build = (): ManualNet =>
    new ManualNet(5, {}, (_id, s) => {
      s.append([conf(1, { peers: cOld }), conf(2, { peers: cNew, oldPeers: cOld })]);
      s.setHardState({ term: 1, vote: "", commit: 2 });
    });
  const among = (ids: number[]) => (m: Message): boolean =>
    ids.map(key).includes(m.to) && ids.map(key).includes(m.from);

  it("an election needs both majorities", () => {
    const net = build();
    net.core(key(1)).campaign();
    net.stabilize([key(2), key(3)]); // only C_new's majority answers
    assert.notEqual(net.core(key(1)).role(), "leader");
    net.core(key(1)).campaign();
    net.stabilize([key(3)]); // and now 2 from C_old too
    assert.equal(net.core(key(1)).role(), "leader");
  });

  it("commit does not advance with only the new majority", () => {
    const net = build();
    const l = net.core(key(1));
    l.campaign();
    net.drain();
    while (net.deliver(isVote) > 0);
    assert.equal(l.role(), "leader");
    assert.ok(l.isJoint());
    const first = l.lastIndex(); // the leader's first entry of its term
    for (let i = 0; i < 10; i++) {
      net.drop((m) => !among([1, 4, 5])(m));
      net.deliver(among([1, 4, 5]));
    }
    assert.equal(net.core(key(4)).lastIndex(), first, "C_new's majority holds the entry");
    assert.equal(l.commitIndex(), 2, "…but C_old's does not");
    l.tick(); // a heartbeat makes 2 ask for the entry
    net.drain();
    for (let i = 0; i < 10; i++) net.deliver(among([1, 2, 4, 5]));
    assert.ok(l.commitIndex() >= first);
  });
});

describe("learners are never counted", () => {
  // voters {1, 2} and learner 3: counted as a voter, the learner would make leader + learner
  // a majority of three
  const withLearner = {
    peers: new Configuration([key(1), key(2)]),
    learners: new Configuration([key(3)]),
  };
  const build = (): ManualNet =>
    new ManualNet(3, {}, (_id, s) => {
      s.append(logOf([1], withLearner));
      s.setHardState({ term: 1, vote: "", commit: 1 });
    });

  it("in commit", () => {
    const net = build();
    const l = net.core(key(1));
    l.campaign();
    net.drain();
    while (net.deliver(isVote) > 0);
    assert.equal(l.role(), "leader");
    const first = l.lastIndex();
    const with3 = (m: Message): boolean =>
      (m.to === key(3) || m.from === key(3)) && (m.to === key(1) || m.from === key(1));
    for (let i = 0; i < 10; i++) {
      net.drop((m) => !with3(m));
      net.deliver(with3);
    }
    assert.equal(net.core(key(3)).lastIndex(), first, "the learner holds the entry");
    assert.equal(l.commitIndex(), 1, "leader + learner are no majority of two voters");
  });

  it("in votes", () => {
    const net = build();
    const c = net.core(key(1));
    c.campaign();
    net.drain();
    assert.ok(!net.queue.some((m) => m.to === key(3)), "learners are not asked");
    net.drop();
    c.step({ type: "PreVoteResp", from: key(3), to: key(1), term: 2, granted: true });
    assert.equal(c.role(), "precandidate", "a learner's pre-vote does not count");
    c.step({ type: "PreVoteResp", from: key(2), to: key(1), term: 2, granted: true });
    assert.equal(c.role(), "candidate");
    net.drain();
    net.drop();
    c.step({ type: "RequestVoteResp", from: key(3), to: key(1), term: 2, granted: true });
    assert.equal(c.role(), "candidate", "a learner's vote does not count");
    c.step({ type: "RequestVoteResp", from: key(2), to: key(1), term: 2, granted: true });
    assert.equal(c.role(), "leader");
  });
});

describe("no truncation when the entries already match", () => {
  it("a stale AppendEntries carrying a prefix of the log keeps the entries after it", () => {
    const f = coreWith([1, 1, 2, 2, 2], { term: 2, commit: 1 });
    const entry = (index: number, term: number): LogEntry => ({
      index,
      term,
      type: EntryType.DATA,
      data: ChunkChain.from(`${index}@${term}`),
    });
    f.step({ ...ae(2, 1, 1, 1), entries: [entry(2, 1), entry(3, 2)] });
    assert.equal(f.lastIndex(), 5);
    assert.deepEqual([1, 2, 3, 4, 5].map((i) => f.termAt(i)), [1, 1, 2, 2, 2]);
    assert.ok(!f.hasReady() || f.ready().entries.length === 0, "nothing to rewrite");
  });
});

describe("a snapshot at or below the commit index is ignored", () => {
  it("an older InstallSnapshot does not reset a log that starts from a newer snapshot", () => {
    const storage = new MemoryCoreStorage({ index: 4, term: 1, conf: three });
    storage.append(logOf([1, 1, 1, 1, 1, 1], three).slice(4)); // entries 5 and 6
    storage.setHardState({ term: 2, vote: "", commit: 6 });
    const f = new RaftCore({ id: key(2), storage, prng: new Prng(1) });
    assert.equal(f.commitIndex(), 6);
    for (const index of [3, 6]) {
      f.step({
        type: "InstallSnapshot",
        from: key(1),
        to: key(2),
        term: 2,
        meta: { index, term: 1, conf: three },
      });
      const rds = drainAll(f);
      assert.ok(rds.every((rd) => rd.snapshot === undefined), `snapshot ${index} ignored`);
      assert.equal(f.firstIndex(), 5);
      assert.equal(f.lastIndex(), 6);
      assert.ok(sent(rds).some((m) => m.type === "InstallSnapshotResp" && m.success));
    }
  });
});

describe("terms in messages", () => {
  it("a leader ignores an append answer from an older term", () => {
    const net = new ManualNet(3);
    net.elect(key(1));
    const l = net.core(key(1));
    const match = l.followers().find((f) => f.id === key(2))!.match;
    l.step({
      type: "AppendEntriesResp",
      from: key(2),
      to: key(1),
      term: l.term() - 1,
      success: true,
      heartbeat: false,
      index: match + 5,
      hintIndex: 0,
      hintTerm: 0,
      lastLogIndex: match + 5,
      readonly: false,
      sentTick: 0,
      readSeq: 0,
      priority: 1,
    });
    assert.equal(l.followers().find((f) => f.id === key(2))!.match, match);
    assert.ok(l.isLeader());
  });

  it("a candidate ignores vote grants from an older term", () => {
    const net = new ManualNet(3);
    const c = net.core(key(1));
    c.campaign();
    net.drain();
    while (net.deliver((m) => m.type === "PreVote" || m.type === "PreVoteResp") > 0);
    assert.equal(c.role(), "candidate");
    net.drop();
    for (const from of [key(2), key(3)]) {
      c.step({ type: "RequestVoteResp", from, to: key(1), term: c.term() - 1, granted: true });
    }
    assert.equal(c.role(), "candidate");
  });

  it("a leader steps down on an answer with a higher term", () => {
    const net = new ManualNet(3);
    net.elect(key(1));
    const l = net.core(key(1));
    const t = l.term();
    l.step({
      type: "AppendEntriesResp",
      from: key(2),
      to: key(1),
      term: t + 1,
      success: false,
      heartbeat: true,
      index: 0,
      hintIndex: 0,
      hintTerm: 0,
      lastLogIndex: 0,
      readonly: false,
      sentTick: 0,
      readSeq: 0,
      priority: 1,
    });
    assert.equal(l.role(), "follower");
    assert.equal(l.term(), t + 1);
  });
});

describe("pre-vote changes no stored term or vote", () => {
  it("at the voter, granted or not", () => {
    const v = coreWith([1, 1], { term: 3, commit: 1 });
    for (const lastLogTerm of [1, 0]) {
      v.step({
        type: "PreVote",
        from: key(1),
        to: key(2),
        term: 7,
        lastLogIndex: 2,
        lastLogTerm,
      });
      const rds = drainAll(v);
      assert.equal(v.term(), 3);
      assert.equal(v.votedFor(), "");
      assert.ok(rds.every((rd) => rd.hardState === undefined), "nothing to persist");
      const resp = sent(rds).find((m) => m.type === "PreVoteResp");
      assert.ok(resp !== undefined && resp.type === "PreVoteResp");
      assert.equal(resp.granted, lastLogTerm === 1);
    }
  });

  it("at the pre-candidate, until it wins the pre-vote", () => {
    const five = { peers: new Configuration([1, 2, 3, 4, 5].map(key)) };
    const storage = new MemoryCoreStorage();
    storage.append(logOf([1, 1], five));
    storage.setHardState({ term: 3, vote: "", commit: 1 });
    const c = new RaftCore({ id: key(1), storage, prng: new Prng(2) });
    c.campaign();
    assert.equal(c.role(), "precandidate");
    c.step({ type: "PreVoteResp", from: key(2), to: key(1), term: 4, granted: true });
    assert.equal(c.role(), "precandidate");
    const rds = drainAll(c);
    assert.equal(c.term(), 3);
    assert.equal(c.votedFor(), "");
    assert.ok(rds.every((rd) => rd.hardState === undefined), "nothing to persist");
    assert.ok(sent(rds).every((m) => m.type !== "PreVote" || m.term === 4));
  });
});
