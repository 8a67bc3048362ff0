// Quiescence on a clock the test moves by hand: an idle group stops ticking and sending (only
// the per-endpoint PINGs remain), wakes on writes, and notices a silent leader endpoint.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PeerId } from "../../src/conf/peer_id.ts";
import { decodeMessage } from "../../src/codec/message_codec.ts";
import { Node } from "../../src/node/node.ts";
import { MemoryNetwork } from "../../transports/memory/memory_network.ts";
import { NodeManager } from "../../src/node/node_manager.ts";
import { TickSource } from "../../src/node/tick_source.ts";
import { LeaseState } from "../../src/node/options.ts";
import { ManualClock } from "../../src/util/clock.ts";
import { applyStatus, Cluster, MockFsm, peerIds, RaftError, withDeadline } from "./cluster.ts";

const ELECTION_TIMEOUT_MS = 1000; // 20 ticks, heartbeats every 2
const TICK = ELECTION_TIMEOUT_MS / 20;

interface Setup {
  c: Cluster;
  clock: ManualClock;
  peers: ReturnType<typeof peerIds>;
}

async function setup(
  name: string,
  basePort: number,
  opts: { lease?: boolean; quiesce?: boolean } = {},
): Promise<Setup> {
  const clock = new ManualClock();
  const peers = peerIds(3, basePort);
  const c = new Cluster(name, peers, {
    electionTimeoutMs: ELECTION_TIMEOUT_MS,
    ...(opts.lease ? { enableLeaderLease: true } : {}),
  });
  for (const [i, p] of peers.entries()) {
    await c.start(p, { extra: { clock, seed: 7 * i + 3, quiesce: opts.quiesce ?? true } });
  }
  return { c, clock, peers };
}

/** Lets every message and answer of the current moment arrive (no timer fires meanwhile). */
async function settle(c: Cluster): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 1));
    await c.net.idle();
  }
}

/** Moves time a tick at a time until `probe` returns a value. */
async function until<T>(
  s: Setup,
  probe: () => T | undefined,
  what: string,
  maxTicks = 2000,
): Promise<T> {
  for (let t = 0; t < maxTicks; t++) {
    const v = probe();
    if (v !== undefined) return v;
    s.clock.advance(TICK);
    await settle(s.c);
  }
  assert.fail(`no ${what} after ${maxTicks} ticks`);
}

async function ticks(s: Setup, n: number): Promise<void> {
  for (let t = 0; t < n; t++) {
    s.clock.advance(TICK);
    await settle(s.c);
  }
}

function leaderOf(s: Setup): Node | undefined {
  for (const [key, n] of s.c.nodes) {
    if (n.isLeader() && s.c.fsms.get(key)?.leaderTerm === n.term()) return n;
  }
  return undefined;
}

function allQuiesced(s: Setup): true | undefined {
  const nodes = [...s.c.nodes.values()];
  return nodes.length > 0 && nodes.every((n) => n.quiesced) ? true : undefined;
}

/** Frames sent by the network minus PINGs sent by the nodes' managers. */
function messageFrames(s: Setup): number {
  return s.c.net.stats.sent - pings(s);
}

function pings(s: Setup): number {
  let n = 0;
  for (const p of s.peers) {
    n += NodeManager.existing(s.c.net.transport(p.endpoint))?.liveness?.pingsSent ?? 0;
  }
  return n;
}

async function write(s: Setup, leader: Node, value: string): Promise<void> {
  const done = applyStatus(leader, value);
  // replication needs no tick; the answer may need a few turns of the event loop
  for (let t = 0; t < 200; t++) {
    const st = await Promise.race([done, new Promise<null>((r) => setTimeout(() => r(null), 1))]);
    if (st !== null) {
      assert.ok(st.ok(), `write ${value}: ${st}`);
      return;
    }
    s.clock.advance(TICK);
    await settle(s.c);
  }
  assert.fail(`write ${value} never finished`);
}

describe("quiescence", () => {
  it("an idle group stops ticking and sending, and wakes on a write", async () => {
    const s = await setup("quiesce-idle", 7100);
    try {
      const leader = await until(s, () => leaderOf(s), "leader");
      await write(s, leader, "a");
      await until(s, () => allQuiesced(s), "quiesced group", 200);
      assert.equal(TickSource.for(s.clock, TICK).size, 0, "no node subscribed to ticks");
      assert.equal(TickSource.for(s.clock, TICK).running, false, "no tick timer");
      assert.equal(leader.describe().quiesced, true);
      const frames = messageFrames(s);
      const pinged = pings(s);
      await ticks(s, 200); // 10 s idle
      assert.equal(messageFrames(s), frames, "no raft message while quiesced");
      // the leader's process pings 2 endpoints, each follower's 1: 4 per heartbeat interval
      const pingsIdle = pings(s) - pinged;
      assert.ok(pingsIdle > 0 && pingsIdle <= 4 * (200 / 2 + 1), `${pingsIdle} pings`);
      assert.ok(allQuiesced(s), "still quiesced");
      assert.ok(leader.isLeader());
      // a write wakes the leader, whose appends wake the followers
      await write(s, leader, "b");
      const index = leader.appliedIndex();
      assert.ok(!leader.quiesced);
      await until(
        s,
        () => [...s.c.nodes.values()].every((n) => n.appliedIndex() >= index) || undefined,
        "write applied everywhere",
      );
      for (const fsm of s.c.fsms.values()) assert.deepEqual(fsm.logs, ["a", "b"]);
      // and the group quiesces again
      await until(s, () => allQuiesced(s), "quiesced again", 200);
    } finally {
      await s.c.stopAll();
    }
  });

  it("without the option nothing quiesces", async () => {
    const s = await setup("quiesce-off", 7110, { quiesce: false });
    try {
      await until(s, () => leaderOf(s), "leader");
      await ticks(s, 100);
      assert.ok([...s.c.nodes.values()].every((n) => !n.quiesced));
      const frames = messageFrames(s);
      await ticks(s, 20);
      assert.ok(messageFrames(s) > frames, "heartbeats flow");
      assert.equal(TickSource.for(s.clock, TICK).size, 3, "three nodes on one shared source");
    } finally {
      await s.c.stopAll();
    }
  });

  it("followers notice a silent leader endpoint and elect; no acknowledged write is lost", async () => {
    const s = await setup("quiesce-leaderdown", 7120);
    try {
      const leader = await until(s, () => leaderOf(s), "leader");
      for (const v of ["a", "b", "c"]) await write(s, leader, v);
      await until(s, () => allQuiesced(s), "quiesced group", 200);
      const oldTerm = leader.term();
      s.c.net.isolate(leader.nodeId().endpoint);
      const next = await until(
        s,
        () => {
          const l = leaderOf(s);
          return l !== undefined && l !== leader ? l : undefined;
        },
        "new leader",
        400,
      );
      assert.ok(next.term() > oldTerm);
      // the isolated leader wakes too (no quorum heard from) and steps down
      await until(s, () => (!leader.isLeader() ? true : undefined), "old leader steps down", 400);
      await write(s, next, "d");
      s.c.net.heal();
      const index = next.appliedIndex();
      await until(
        s,
        () => [...s.c.nodes.values()].every((n) => n.appliedIndex() >= index) || undefined,
        "all caught up",
      );
      for (const fsm of s.c.fsms.values()) assert.deepEqual(fsm.logs, ["a", "b", "c", "d"]);
    } finally {
      await s.c.stopAll();
    }
  });

  it("woken by silence, followers count the ticks they missed: a new leader within 2 election timeouts", async () => {
    // Without the catch-up, a woken follower would start its randomised election timeout
    // ([T, 2T]) only when it notices the silence (after T), so the election would come after
    // 2T at the earliest. With it, the silence counts as T - 1 ticks already waited.
    const s = await setup("quiesce-catchup", 7140);
    try {
      const leader = await until(s, () => leaderOf(s), "leader");
      await write(s, leader, "a");
      await until(s, () => allQuiesced(s), "quiesced group", 200);
      const heartbeatMs = 2 * TICK;
      s.c.net.isolate(leader.nodeId().endpoint);
      const isolatedAt = s.clock.now();
      await until(
        s,
        () => {
          const l = leaderOf(s);
          return l !== undefined && l !== leader ? l : undefined;
        },
        "new leader",
        400,
      );
      const took = s.clock.now() - isolatedAt;
      assert.ok(
        took <= 2 * ELECTION_TIMEOUT_MS + heartbeatMs + 2 * TICK,
        `new leader after ${took} ms`,
      );
    } finally {
      await s.c.stopAll();
    }
  });

  it("a leader shut down while quiesced hands over", async () => {
    const s = await setup("quiesce-shutdown", 7130);
    try {
      const leader = await until(s, () => leaderOf(s), "leader");
      await write(s, leader, "a");
      await until(s, () => allQuiesced(s), "quiesced group", 200);
      const key = leader.nodeId().key();
      await s.c.stop(key);
      const next = await until(s, () => leaderOf(s), "new leader", 400);
      await write(s, next, "b");
      const index = next.appliedIndex();
      await until(
        s,
        () => [...s.c.nodes.values()].every((n) => n.appliedIndex() >= index) || undefined,
        "all caught up",
      );
      for (const [k, fsm] of s.c.fsms) if (k !== key) assert.deepEqual(fsm.logs, ["a", "b"]);
    } finally {
      await s.c.stopAll();
    }
  });

  it("a follower partitioned while quiesced catches up after healing", async () => {
    const s = await setup("quiesce-follower", 7140);
    try {
      const leader = await until(s, () => leaderOf(s), "leader");
      await write(s, leader, "a");
      await until(s, () => allQuiesced(s), "quiesced group", 200);
      const follower = s.c.followers()[0]!;
      s.c.net.isolate(follower.nodeId().endpoint);
      await ticks(s, 60); // the follower wakes (leader silent) and fails its pre-votes
      assert.ok(!follower.quiesced, "the cut-off follower woke");
      assert.ok(leader.isLeader(), "a quorum is still there: the leader leads on");
      await write(s, leader, "b");
      s.c.net.heal();
      await write(s, leader, "c");
      const index = leader.appliedIndex();
      await until(s, () => follower.appliedIndex() >= index || undefined, "follower catches up");
      assert.ok(leader.isLeader(), "the healed follower did not disrupt the leader");
      for (const fsm of s.c.fsms.values()) assert.deepEqual(fsm.logs, ["a", "b", "c"]);
      await until(s, () => allQuiesced(s), "quiesced again", 400);
    } finally {
      await s.c.stopAll();
    }
  });

  it("a quiesced leader's lease runs out in real time: reads go through ReadIndex", async () => {
    const s = await setup("quiesce-lease", 7150, { lease: true });
    try {
      const leader = await until(s, () => leaderOf(s), "leader");
      await write(s, leader, "a");
      // control: with a valid lease a cut-off leader still answers a read at once
      await until(s, () => leader.isLeaderLeaseValid() || undefined, "valid lease");
      s.c.net.isolate(leader.nodeId().endpoint);
      const lease = await withDeadline(leader.readIndex(), 10_000, "lease read");
      assert.equal(lease, leader.appliedIndex());
      s.c.net.heal();
      await until(s, () => allQuiesced(s), "quiesced group", 200);
      await ticks(s, 20); // an election timeout of real time: the lease is over
      assert.ok(leader.quiesced && leader.isLeader());
      assert.equal(leader.isLeaderLeaseValid(), false);
      assert.equal(leader.getLeaderLeaseStatus().state, LeaseState.EXPIRED);
      s.c.net.isolate(leader.nodeId().endpoint);
      let read: number | Error | null = null;
      leader.readIndex().then((i) => (read = i), (e) => (read = e as Error));
      assert.ok(!leader.quiesced, "the read woke the leader");
      await ticks(s, 5);
      assert.equal(read, null, "no lease read: it waits for a heartbeat quorum");
      s.c.net.heal();
      await until(s, () => (read !== null ? true : undefined), "the read finishes");
      assert.equal(read, leader.appliedIndex());
    } finally {
      await s.c.stopAll();
    }
  });
  it("a single-node group quiesces too", async () => {
    const clock = new ManualClock();
    const peers = peerIds(1, 7170);
    const c = new Cluster("quiesce-single", peers, { electionTimeoutMs: ELECTION_TIMEOUT_MS });
    const s: Setup = { c, clock, peers };
    try {
      await c.start(peers[0]!, { extra: { clock, seed: 5, quiesce: true } });
      const leader = await until(s, () => leaderOf(s), "leader");
      await until(s, () => allQuiesced(s), "quiesced", 200);
      assert.equal(TickSource.for(clock, TICK).running, false);
      await write(s, leader, "a");
      assert.deepEqual(c.fsm(peers[0]!).logs, ["a"]);
      await until(s, () => allQuiesced(s), "quiesced again", 200);
    } finally {
      await c.stopAll();
    }
  });

  it("a follower woken while its leader's endpoint keeps pinging counts no missed ticks (its lease holds)", async () => {
    // The catch-up on waking is bounded by the leader endpoint's silence; with PINGs arriving,
    // a woken follower must wait a whole election timeout before it campaigns, as its follower
    // lease promises.
    const s = await setup("quiesce-nocatchup", 7195, { lease: true });
    try {
      const leader = await until(s, () => leaderOf(s), "leader");
      await write(s, leader, "a");
      await until(s, () => allQuiesced(s), "quiesced group", 200);
      await ticks(s, 40); // two election timeouts of PINGs only
      assert.ok(allQuiesced(s), "PINGs keep the group quiesced");
      const follower = s.c.followers()[0]!;
      const transport = s.c.net.transport(follower.nodeId().endpoint);
      const send = transport.send.bind(transport);
      let preVoteAfter = -1;
      const wokenAt = s.clock.now();
      transport.send = (to, frame) => {
        if (frame[0] === 1 && preVoteAfter < 0) {
          try {
            if (decodeMessage(frame).message.type === "PreVote") {
              preVoteAfter = s.clock.now() - wokenAt;
            }
          } catch { /* not a message frame */ }
        }
        send(to, frame);
      };
      assert.ok(follower.resetElectionTimeoutMs(ELECTION_TIMEOUT_MS).ok());
      assert.equal(follower.quiesced, false, "the call woke the follower");
      await ticks(s, 15);
      assert.equal(preVoteAfter, -1, `pre-vote ${preVoteAfter} ms after waking`);
    } finally {
      await s.c.stopAll();
    }
  });

  it("an API call on a quiesced follower wakes it; the group settles back without an election", async () => {
    const s = await setup("quiesce-followerapi", 7175, { lease: true });
    try {
      const leader = await until(s, () => leaderOf(s), "leader");
      await write(s, leader, "a");
      await until(s, () => allQuiesced(s), "quiesced group", 200);
      const term = leader.term();
      const follower = s.c.followers()[0]!;
      const st = await applyStatus(follower, "nope");
      assert.equal(st.code, RaftError.EPERM, "not leader");
      assert.equal(follower.quiesced, false, "the call woke the follower");
      assert.ok(follower.describe().electionTimer.includes("SCHEDULING"));
      await ticks(s, 60);
      await until(s, () => allQuiesced(s), "quiesced again", 400);
      assert.ok(leader.isLeader());
      assert.equal(leader.term(), term, "no new term");
    } finally {
      await s.c.stopAll();
    }
  });

  it("many idle groups on three endpoints cost PINGs per endpoint pair, not per group", async () => {
    const clock = new ManualClock();
    const net = new MemoryNetwork({ seed: 3 });
    const peers = peerIds(3, 7180);
    const conf = peers.map(String).join(",");
    const groups = 20;
    const nodes: Node[] = [];
    const settleNet = async () => {
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setTimeout(r, 1));
        await net.idle();
      }
    };
    const managers = () =>
      peers.map((p) => NodeManager.existing(net.transport(p.endpoint))?.liveness?.pingsSent ?? 0)
        .reduce((a, b) => a + b, 0);
    try {
      for (let g = 0; g < groups; g++) {
        for (const [i, p] of peers.entries()) {
          const node = new Node(`many-${g}`, p);
          await node.init({
            fsm: new MockFsm(),
            initialConf: conf,
            logUri: `memory://quiesce-many/${g}/${i}/log`,
            raftMetaUri: `memory://quiesce-many/${g}/${i}/meta`,
            transport: net.transport(p.endpoint),
            electionTimeoutMs: ELECTION_TIMEOUT_MS,
            clock,
            seed: g * 3 + i + 1,
            quiesce: true,
          });
          nodes.push(node);
        }
      }
      for (let t = 0; t < 2000 && !nodes.every((n) => n.quiesced); t++) {
        clock.advance(TICK);
        await settleNet();
      }
      assert.ok(nodes.every((n) => n.quiesced), "every group quiesced");
      assert.equal(TickSource.for(clock, TICK).running, false);
      const sent = net.stats.sent;
      const pinged = managers();
      for (let t = 0; t < 40; t++) {
        clock.advance(TICK);
        await settleNet();
      }
      const pings = managers() - pinged;
      assert.equal(net.stats.sent - sent, pings, "only PINGs while idle");
      // 3 endpoints: at most 6 directed pairs, one PING each per heartbeat interval (2 ticks)
      assert.ok(pings > 0 && pings <= 6 * 21, `${pings} PINGs for ${groups} groups`);
    } finally {
      for (const n of nodes) await n.shutdown();
      await net.close();
    }
  });

  it("a group with a witness and a learner quiesces; adding the learner wakes it", async () => {
    const clock = new ManualClock();
    const [w, a, b, l] = peerIds(4, 7190);
    const witness = PeerId.parse(`${w!.endpoint}:0:1`);
    const voters = [witness, a!, b!];
    const c = new Cluster("quiesce-witness", voters, { electionTimeoutMs: ELECTION_TIMEOUT_MS });
    const s: Setup = { c, clock, peers: [witness, a!, b!, l!] };
    try {
      for (const [i, p] of voters.entries()) {
        await c.start(p, { extra: { clock, seed: i + 1, quiesce: true, witness: p.isWitness } });
      }
      const leader = await until(s, () => leaderOf(s), "leader");
      await write(s, leader, "a");
      await until(s, () => allQuiesced(s), "quiesced group", 200);
      await c.start(l!, { emptyPeers: true, extra: { clock, seed: 9, quiesce: true } });
      const added = leader.addLearner(l!);
      assert.equal(leader.quiesced, false, "addLearner woke the leader");
      let done = false;
      added.then(() => (done = true), () => (done = true));
      await until(s, () => (done ? true : undefined), "learner added");
      await added;
      await write(s, leader, "b");
      await until(s, () => allQuiesced(s), "quiesced with the learner", 400);
      assert.deepEqual(c.fsm(l!).logs, ["a", "b"]);
      assert.deepEqual(c.fsm(witness).logs, []);
    } finally {
      await c.stopAll();
    }
  });

  for (const [lease, quiesced] of [[false, true], [true, true], [true, false]] as const) {
    const what = `${quiesced ? "a quiesced" : "an active"} follower${lease ? " (lease on)" : ""}`;
    it(`vote() on ${what} moves leadership to it`, async () => {
      const port = 7160 + (lease ? 4 : 0) + (quiesced ? 0 : 2);
      const s = await setup(`quiesce-vote-${port}`, port, { lease });
      try {
        const leader = await until(s, () => leaderOf(s), "leader");
        await write(s, leader, "a");
        if (quiesced) await until(s, () => allQuiesced(s), "quiesced group", 200);
        const follower = s.c.followers()[0]!;
        assert.ok(follower.vote(ELECTION_TIMEOUT_MS).ok());
        // a heartbeat round later the leader's next quiesce heartbeat must not put it to sleep
        const next = await until(
          s,
          () => {
            const l = leaderOf(s);
            return l !== undefined && l !== leader ? l : undefined;
          },
          "new leader",
          400,
        );
        assert.ok(next.nodeId().equals(follower.nodeId()), `${next.nodeId()} leads`);
        await write(s, next, "b");
      } finally {
        await s.c.stopAll();
      }
    });
  }
});
