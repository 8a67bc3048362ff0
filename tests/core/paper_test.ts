/**
 * Scenarios from the Raft paper's figures, driven message by message.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Configuration } from "../../src/conf/configuration.ts";
import type { Message } from "../../src/core/types.ts";
import { key, logOf, ManualNet } from "./manual_net.ts";

const isVote = (m: Message): boolean =>
  m.type === "PreVote" || m.type === "PreVoteResp" || m.type === "RequestVote" ||
  m.type === "RequestVoteResp";

describe("Figure 7: a new leader brings every possible follower log in line", () => {
  const leader = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  const followers: Record<string, number[]> = {
    a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
    b: [1, 1, 1, 4],
    c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    e: [1, 1, 1, 4, 4, 4, 4],
    f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
  };
  const names = Object.keys(followers);
  const conf = { peers: new Configuration(Array.from({ length: 7 }, (_, i) => key(i + 1))) };
  const build = (): ManualNet =>
    new ManualNet(7, {}, (id, s) => {
      const i = Number(id.slice(1, id.indexOf(":")));
      const terms = i === 1 ? leader : followers[names[i - 2]!]!;
      s.append(logOf(terms, conf));
      s.setHardState({ term: 7, vote: "", commit: 1 });
    });

  it("elects the leader of term 8 with the votes of a, b, e and f", () => {
    const net = build();
    net.elect(key(1));
    assert.equal(net.core(key(1)).role(), "leader");
    assert.equal(net.core(key(1)).term(), 8);
  });

  it("makes all seven logs equal to the leader's, with few probes (fast backtracking)", () => {
    const net = build();
    net.core(key(1)).campaign();
    let rejects = 0;
    for (let i = 0; i < 200 && net.queue.length + (net.core(key(1)).hasReady() ? 1 : 0) > 0; i++) {
      net.drain();
      for (const m of net.queue) {
        if (m.type === "AppendEntriesResp" && !m.success && !m.heartbeat) rejects++;
      }
      net.deliver();
    }
    const want = [...leader, 8];
    for (let i = 1; i <= 7; i++) assert.deepEqual(net.terms(key(i)), want, `log of ${key(i)}`);
    for (let i = 1; i <= 7; i++) assert.equal(net.core(key(i)).commitIndex(), 11);
    // one reject per divergent follower suffices with conflict hints (b..f), a needs none
    assert.ok(rejects <= 6, `rejects ${rejects}`);
  });
});

describe("Figure 8: a leader never commits an older term's entry by counting replicas", () => {
  const conf = { peers: new Configuration(Array.from({ length: 5 }, (_, i) => key(i + 1))) };
  const logs: Record<number, number[]> = { 1: [1, 2], 2: [1, 2], 3: [1], 4: [1], 5: [1, 3] };
  const build = (): ManualNet =>
    new ManualNet(5, { maxEntriesPerMsg: 1, checkQuorum: false }, (id, s) => {
      const i = Number(id.slice(1, id.indexOf(":")));
      s.append(logOf(logs[i]!, conf));
      s.setHardState({ term: 3, vote: "", commit: 1 });
    });
  const s = (i: number): string => key(i);

  function electS1(net: ManualNet): void {
    net.core(s(1)).campaign();
    net.drain();
    while (net.deliver(isVote) > 0);
    assert.equal(net.core(s(1)).role(), "leader");
    assert.equal(net.core(s(1)).term(), 4);
  }

  it("(c) index 2 from term 2 on a majority is not committed", () => {
    const net = build();
    electS1(net);
    // S3 receives only index 2 (not the leader's term-4 entry 3); S2 gets entry 3
    for (let i = 0; i < 20; i++) {
      net.deliver((m) =>
        (m.to === s(3) &&
          (m.type !== "AppendEntries" || m.entries.every((e) => e.index <= 2) ||
            net.core(s(3)).lastIndex() < 2)) ||
        m.to === s(2) || (m.from === s(2) || m.from === s(3))
      );
    }
    assert.equal(net.core(s(3)).termAt(2), 2);
    assert.equal(net.core(s(2)).termAt(3), 4);
    assert.equal(net.core(s(3)).lastIndex(), 2);
    assert.ok(net.core(s(1)).commitIndex() < 2, "term-2 entry must not commit by counting");
    // (d) S1 crashes; S5 wins term 5 with S3 and S4 and overwrites index 2
    net.elect(s(5), [s(1)]);
    assert.equal(net.core(s(5)).role(), "leader");
    net.tick(3, [s(1)]);
    for (const i of [2, 3, 4, 5]) assert.equal(net.core(s(i)).termAt(2), 3, `S${i} index 2`);
  });

  it("(e) once a term-4 entry is on a majority, index 2 commits and S5 cannot win", () => {
    const net = build();
    electS1(net);
    net.stabilize([s(4), s(5)]);
    assert.ok(net.core(s(1)).commitIndex() >= 3);
    net.elect(s(5), [s(1)]);
    assert.notEqual(net.core(s(5)).role(), "leader");
    assert.equal(net.core(s(2)).termAt(2), 2);
  });
});
