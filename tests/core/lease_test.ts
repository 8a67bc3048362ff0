/**
 * Leases: the follower lease after a restart, and the leader lease after an abandoned
 * leadership transfer.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Configuration } from "../../src/conf/configuration.ts";
import { MemoryCoreStorage, RaftCore } from "../../src/core/mod.ts";
import type { Message } from "../../src/core/types.ts";
import { Prng } from "../../src/util/prng.ts";
import { key, logOf, ManualNet } from "./manual_net.ts";

const five = { peers: new Configuration([1, 2, 3, 4, 5].map(key)) };
const L2 = key(2);
const F = key(3);

describe("follower lease after a restart", () => {
  const vote = (
    type: "PreVote" | "RequestVote",
    term: number,
    transfer = false,
    disruptedTerm = 0,
  ): Message =>
    type === "PreVote"
      ? { type, from: L2, to: F, term, lastLogIndex: 7, lastLogTerm: 1 }
      : { type, from: L2, to: F, term, lastLogIndex: 7, lastLogTerm: 1, transfer, disruptedTerm };

  /** A restarted follower that had reached term 2 (it may have acknowledged a leader). */
  function restarted(leaseEnabled = true): RaftCore {
    const storage = new MemoryCoreStorage();
    storage.append(logOf([1, 1, 1, 1, 1, 1, 1], five));
    storage.setHardState({ term: 2, vote: "", commit: 5 });
    return new RaftCore({ id: F, storage, prng: new Prng(6), leaseEnabled, electionTick: 10 });
  }

  function granted(core: RaftCore): boolean {
    if (!core.hasReady()) return false;
    const rd = core.ready();
    core.advance(rd);
    return [...rd.messages, ...rd.messagesAfterPersist].some((m) =>
      (m.type === "PreVoteResp" || m.type === "RequestVoteResp") && m.granted
    );
  }

  it("refuses pre-votes and votes for one election timeout after start", () => {
    const core = restarted();
    assert.equal(core.term(), 2);
    core.step(vote("PreVote", 3));
    assert.ok(!granted(core), "pre-vote refused right after restart");
    core.step(vote("RequestVote", 3));
    assert.ok(!granted(core), "vote refused right after restart");
    assert.equal(core.term(), 2, "a refused vote does not raise the term");
    for (let i = 0; i < 9; i++) core.tick();
    core.step(vote("PreVote", 3));
    assert.ok(!granted(core), "still within the lease after T - 1 ticks");
    core.tick();
    core.step(vote("PreVote", 3));
    assert.ok(granted(core), "granted once T ticks passed");
  });

  it("a transfer's vote waits too, unless the leader of the node's term stepped down", () => {
    const core = restarted();
    core.step(vote("RequestVote", 3, true));
    assert.ok(!granted(core), "the leader it acknowledged before the restart may still lead");
    core.step(vote("RequestVote", 3, true, 1));
    assert.ok(!granted(core), "a disrupted term other than its own proves nothing");
    core.step(vote("RequestVote", 3, true, 2));
    assert.ok(granted(core), "the leader of term 2 stepped down");
    assert.equal(core.term(), 3);
  });

  it("without the lease, and on a node that never saw a leader's term, votes are granted at once", () => {
    const core = restarted(false);
    core.step(vote("RequestVote", 3));
    assert.ok(granted(core));
    const fresh = new RaftCore({
      id: F,
      storage: new MemoryCoreStorage(),
      prng: new Prng(1),
      leaseEnabled: true,
      initialConf: five,
    });
    fresh.step({
      type: "RequestVote",
      from: L2,
      to: F,
      term: 2,
      lastLogIndex: 0,
      lastLogTerm: 0,
      transfer: false,
    });
    assert.ok(granted(fresh), "term 1 on disk: no leader can count on this node");
  });
});

describe("leader lease after an abandoned transfer", () => {
  it("acks of messages sent before the transfer ended do not revive the lease", () => {
    const net = new ManualNet(3, { leaseEnabled: true });
    const leader = net.core(key(1));
    net.elect(key(1));
    net.tick(2);
    assert.ok(leader.isLeaderLeaseValid());
    const target = key(2);
    const down = [target];
    assert.ok(leader.transferLeader(target).ok());
    assert.ok(!leader.isLeaderLeaseValid(), "no lease while transferring");
    // n3 keeps acknowledging heartbeats while the target is cut off; acks of heartbeats sent
    // during the transfer must not count once it is abandoned (braft on_leader_start).
    for (let i = 0; i < 30 && leader.transferee() !== ""; i++) {
      leader.tick();
      if (leader.transferee() === "") break;
      net.core(key(3)).tick();
      net.stabilize(down);
    }
    assert.equal(leader.transferee(), "", "transfer abandoned");
    assert.ok(leader.isLeader());
    assert.ok(!leader.isLeaderLeaseValid(), "the lease restarts when the transfer is abandoned");
    leader.readIndex("r");
    net.drain();
    assert.equal(net.reads.get(key(1))!.length, 0, "not served from the lease");
    net.stabilize(down); // heartbeats sent after the abandonment are acknowledged
    assert.deepEqual(net.reads.get(key(1))!.map((r) => r.ctx), ["r"]);
    assert.ok(leader.isLeaderLeaseValid(), "a fresh quorum of acks renews it");
  });
});
