/**
 * The follower lease of a node that cannot campaign ends for good one election timeout after
 * its leader's last message (sim seed 25203: two new voters of an uncommitted joint
 * configuration, outside their own configuration view, kept the leader of an old term and
 * refused the only electable candidate's vote in most ticks, forever).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Configuration } from "../../src/conf/configuration.ts";
import { MemoryCoreStorage, RaftCore, type RaftCoreOptions } from "../../src/core/mod.ts";
import type { Message } from "../../src/core/types.ts";
import { Prng } from "../../src/util/prng.ts";
import { key, logOf } from "./manual_net.ts";

const T = 10;
const LEADER = key(1);
const CANDIDATE = key(2);
const F = key(4);

/** `F` at term 1 with a committed log of 7 entries whose membership is `peers`. */
function follower(peers: string[], opts: Partial<RaftCoreOptions>): RaftCore {
  const storage = new MemoryCoreStorage();
  storage.append(logOf([1, 1, 1, 1, 1, 1, 1], { peers: new Configuration(peers) }));
  storage.setHardState({ term: 1, vote: "", commit: 7 });
  return new RaftCore({ id: F, storage, prng: new Prng(4), electionTick: T, ...opts });
}

/** Hands out and advances the Ready; whether it answers a (pre-)vote with a grant. */
function granted(core: RaftCore): boolean {
  if (!core.hasReady()) return false;
  const rd = core.ready();
  core.advance(rd);
  return [...rd.messages, ...rd.messagesAfterPersist].some((m) =>
    (m.type === "PreVoteResp" || m.type === "RequestVoteResp") && m.granted
  );
}

function ask(core: RaftCore, type: "PreVote" | "RequestVote", term: number): boolean {
  const m: Message = type === "PreVote"
    ? { type, from: CANDIDATE, to: F, term, lastLogIndex: 9, lastLogTerm: 2 }
    : { type, from: CANDIDATE, to: F, term, lastLogIndex: 9, lastLogTerm: 2, transfer: false };
  core.step(m);
  return granted(core);
}

const cases: { name: string; peers: string[]; opts: Partial<RaftCoreOptions> }[] = [
  {
    name: "not a voter in its own configuration view",
    peers: [1, 2, 3].map(key),
    opts: { leaseEnabled: true, checkQuorum: true },
  },
  {
    name: "not a voter in its own configuration view, check-quorum stickiness only",
    peers: [1, 2, 3].map(key),
    opts: { checkQuorum: true },
  },
  { name: "priority 0", peers: [1, 2, 3, 4].map(key), opts: { leaseEnabled: true, priority: 0 } },
  { name: "witness", peers: [1, 2, 3, 4].map(key), opts: { leaseEnabled: true, witness: true } },
];

describe("follower lease of a node that cannot campaign", () => {
  for (const c of cases) {
    it(`${c.name}: refuses votes for T ticks after the leader, then grants in every later tick`, () => {
      const core = follower(c.peers, c.opts);
      core.step({
        type: "AppendEntries",
        from: LEADER,
        to: F,
        term: 2,
        prevLogIndex: 7,
        prevLogTerm: 1,
        entries: [],
        commit: 7,
        heartbeat: true,
        sentTick: 0,
        readSeq: 0,
      });
      granted(core);
      assert.equal(core.leader(), LEADER);
      for (let i = 1; i < T; i++) {
        core.tick();
        assert.ok(!ask(core, "PreVote", 3), `pre-vote refused ${i} ticks after the leader`);
      }
      // several election timer rounds: none of them may re-arm the lease
      for (let i = T; i <= 8 * T; i++) {
        core.tick();
        assert.ok(ask(core, "PreVote", 3), `pre-vote granted ${i} ticks after the leader`);
      }
      assert.equal(core.leader(), "", "the leader is forgotten at the election timeout");
      assert.equal(core.role(), "follower", "it did not campaign");
      assert.equal(core.term(), 2);
      assert.ok(ask(core, "RequestVote", 3), "vote granted");
      assert.equal(core.term(), 3);
      assert.equal(core.votedFor(), CANDIDATE);
    });
  }
});
