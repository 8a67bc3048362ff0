/**
 * Leadership transfer with leases (braft's disrupted-leader handshake): a transfer's vote
 * request skips a voter's follower lease only once the leader that lease was granted to has
 * stepped down, and a candidate counts its own vote only when its own follower lease ran out
 * or its old leader stepped down.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Configuration } from "../../src/conf/configuration.ts";
import type { Message } from "../../src/core/types.ts";
import { key, ManualNet } from "./manual_net.ts";

const L = key(1);
const T = key(2);
const F = key(3);

const between = (a: string, b: string) => (m: Message): boolean =>
  (m.from === a && m.to === b) || (m.from === b && m.to === a);

/**
 * A lease-enabled 3-node group led by n1 that started a transfer to n2, held back the
 * TimeoutNow, abandoned the transfer after T ticks and renewed its lease.
 *
 * @returns The network and the held TimeoutNow.
 */
function abandonedTransfer(): { net: ManualNet; timeoutNow: Message } {
  const net = new ManualNet(3, { leaseEnabled: true });
  const leader = net.core(L);
  net.elect(L);
  net.tick(2);
  assert.ok(leader.isLeaderLeaseValid());
  assert.ok(leader.transferLeader(T).ok());
  net.drain();
  const timeoutNow = net.queue.find((m) => m.type === "TimeoutNow");
  assert.ok(timeoutNow !== undefined, "the target is caught up: TimeoutNow goes out at once");
  net.drop((m) => m === timeoutNow);
  for (let i = 0; i < 30 && leader.transferee() !== ""; i++) net.tick(1);
  assert.equal(leader.transferee(), "", "transfer abandoned");
  net.tick(2);
  assert.ok(leader.isLeader());
  assert.ok(leader.isLeaderLeaseValid(), "the lease was renewed after the abandonment");
  return { net, timeoutNow };
}

describe("leadership transfer and the follower lease", () => {
  it("a late TimeoutNow does not let the target win with votes the old leader's lease counts on", () => {
    const { net, timeoutNow } = abandonedTransfer();
    const leader = net.core(L);
    const target = net.core(T);
    // The late TimeoutNow arrives; the old leader never hears from the target afterwards.
    target.step(timeoutNow);
    net.drain();
    assert.equal(target.role(), "candidate");
    for (let i = 0; i < 5 && leader.isLeaderLeaseValid(); i++) {
      net.drop(between(L, T));
      net.deliver();
      assert.ok(
        !(target.isLeader() && leader.isLeaderLeaseValid()),
        "the target won while the old leader still serves lease reads",
      );
      leader.tick();
      net.core(F).tick();
      net.drop(between(L, T));
      net.deliver();
    }
    assert.ok(!target.isLeader());
  });

  it("a candidate does not count its own vote while its follower lease for a leader runs", () => {
    const { net, timeoutNow } = abandonedTransfer();
    const leader = net.core(L);
    const target = net.core(T);
    const f = net.core(F);
    // n3 loses the old leader for more than T ticks: its follower lease runs out, so it may
    // vote. The old leader keeps its lease with the target's acknowledgements.
    for (let i = 0; i < 12; i++) {
      leader.tick();
      target.tick();
      f.tick();
      net.drop(between(L, F));
      net.deliver();
      net.drop(between(L, F));
    }
    assert.ok(leader.isLeader());
    assert.ok(leader.isLeaderLeaseValid(), "lease held with the target's acks");
    assert.equal(f.role(), "follower");
    target.step(timeoutNow);
    net.drain();
    let won = false;
    for (let i = 0; i < 40 && !won; i++) {
      net.drop(between(L, T));
      net.drop(between(L, F));
      net.deliver();
      assert.ok(
        !(target.isLeader() && leader.isLeaderLeaseValid()),
        "the target counted its own vote while the lease it granted the old leader ran",
      );
      won = target.isLeader();
      leader.tick();
      target.tick();
      f.tick();
    }
    assert.ok(won, "the target wins once its own follower lease ran out");
  });

  it("a normal transfer completes without waiting: voters skip the lease of the leader that stepped down", () => {
    const net = new ManualNet(5, { leaseEnabled: true });
    const leader = net.core(L);
    net.elect(L);
    net.tick(2);
    assert.ok(leader.transferLeader(T).ok());
    net.drain();
    net.deliver((m) => m.type === "TimeoutNow");
    assert.equal(net.core(T).role(), "candidate");
    // Vote requests reach the followers first: they still follow n1, whose lease counts on
    // them, so they do not grant yet.
    net.deliver((m) => m.type === "RequestVote" && m.to !== L);
    assert.ok(
      ![key(3), key(4), key(5)].some((id) => net.core(id).votedFor() === T),
      "a follower voted while the leader it acknowledged had not stepped down",
    );
    assert.ok(!net.core(T).isLeader());
    // The old leader gets the request, steps down and votes; the target asks again naming
    // the disrupted leader's term, and the followers skip their lease. No tick is needed.
    net.stabilize();
    assert.ok(net.core(T).isLeader());
    assert.ok(!leader.isLeader());
    assert.ok(
      [key(3), key(4), key(5)].every((id) => net.core(id).leader() === T),
      "everyone follows the new leader",
    );
  });

  it("a removed leader's TimeoutNow says it stepped down, so the target wins at once", () => {
    const net = new ManualNet(4, { leaseEnabled: true });
    const leader = net.core(L);
    net.elect(L);
    net.tick(2);
    assert.ok(leader.proposeConfChange({ peers: new Configuration([T, F, key(4)]) }).ok());
    net.stabilize();
    assert.ok(!leader.isLeader(), "the removed leader stepped down");
    assert.ok(
      [T, F, key(4)].some((id) => net.core(id).isLeader()),
      "a new leader without any tick",
    );
  });

  it("a leader that steps down and wakes a candidate (shutdown) lets it win at once", () => {
    const net = new ManualNet(5, { leaseEnabled: true });
    const leader = net.core(L);
    net.elect(L);
    net.tick(2);
    assert.ok(leader.isLeaderLeaseValid());
    assert.ok(leader.stepDownAndWakeCandidate().ok());
    assert.ok(!leader.isLeader() && !leader.isLeaderLeaseValid());
    net.drain();
    const wake = net.queue.filter((m) => m.type === "TimeoutNow");
    assert.equal(wake.length, 1);
    assert.ok(wake[0]!.type === "TimeoutNow" && wake[0]!.leaderSteppedDown === true);
    net.deliver((m) => m.type === "TimeoutNow");
    net.stabilize([L]); // the old leader is gone (shut down): no vote from it
    assert.ok(net.core(wake[0]!.to).isLeader(), "elected without any tick");
    assert.ok(!net.core(L).stepDownAndWakeCandidate().ok(), "not leader any more");
  });
});
