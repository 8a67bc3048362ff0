// Follower reads: `readIndex()` on a follower or learner asks the leader for its read index
// (a "read_index" call) and waits for the node's own state machine; witnesses refuse; the call
// handler refuses what it cannot serve without crashing the node.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decode, encode } from "cbor-x";
import { PeerId } from "../../src/conf/peer_id.ts";
import { RaftError, RaftException, Status } from "../../src/errors/status.ts";
import type { Iterator } from "../../src/node/iterator.ts";
import type { Node } from "../../src/node/node.ts";
import {
  Cluster,
  DEADLINE_MS,
  MockFsm,
  peerIds,
  rejectsWith,
  sleep,
  waitFor,
  withDeadline,
} from "./cluster.ts";

/** How long a correct node may take to answer or refuse; only bounds a hang. */
const PROMPT_MS = 10_000;

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A MockFsm whose onApply stops at `gateAt` until `open()`. */
class GatedFsm extends MockFsm {
  gateAt = -1;
  reachedGate = false;
  #gate = Promise.withResolvers<void>();

  /** Stops the next apply of `index` until `open()`. */
  closeAt(index: number): void {
    this.gateAt = index;
    this.reachedGate = false;
    this.#gate = Promise.withResolvers<void>();
  }

  open(): void {
    this.#gate.resolve();
  }

  override async onApply(iter: Iterator): Promise<void> {
    for (; iter.valid(); iter.next()) {
      if (iter.index() === this.gateAt) {
        this.reachedGate = true;
        await this.#gate.promise;
      }
      this.logs.push(iter.data().text());
      this.appliedIndex = iter.index();
      iter.done()?.run(Status.OK());
    }
  }
}

/** Whether `p` is still pending after the current turn and a short wait. */
async function pending(p: Promise<unknown>, ms = 300): Promise<boolean> {
  let settled = false;
  p.then(() => (settled = true), () => (settled = true));
  await sleep(ms);
  return !settled;
}

/** Reads until a read succeeds (as a client retries); rethrows the last error at the deadline. */
async function readRetrying(node: Node, deadlineMs = DEADLINE_MS): Promise<number> {
  const end = Date.now() + deadlineMs;
  while (true) {
    try {
      return await node.readIndex();
    } catch (e) {
      if (Date.now() > end) throw e;
      await sleep(20);
    }
  }
}

async function startAll(c: Cluster, peers: PeerId[]): Promise<Node> {
  for (const p of peers) await c.start(p);
  return await c.waitLeader();
}

describe("follower reads", () => {
  it("a follower read sees every write acknowledged before it began (concurrent writers)", async () => {
    const peers = peerIds(3, 8700);
    const c = new Cluster("freads-lin", peers);
    try {
      const leader = await startAll(c, peers);
      const followers = c.followers();
      const acked: string[] = [];
      let onAck: Array<() => void> = [];
      let writing = true;
      const writer = async (w: number): Promise<void> => {
        for (let i = 0; writing; i++) {
          const v = `w${w}-${i}`;
          const current = [...c.nodes.values()].find((n) => n.isLeader()) ?? leader;
          try {
            await current.applyAsync(text(v));
          } catch {
            await sleep(10); // a loaded machine may elect another leader: not acknowledged
            continue;
          }
          acked.push(v);
          const wake = onAck;
          onAck = [];
          for (const r of wake) r();
        }
      };
      const writers = [0, 1, 2].map(writer);
      let reads = 0;
      let failed = 0;
      const reader = async (f: Node): Promise<void> => {
        const fsm = c.fsm(f.nodeId());
        for (let done = 0; done < 100;) {
          // Read right after an acknowledgement, when the followers may not know it committed.
          await new Promise<void>((r) => onAck.push(r));
          const before = acked.length; // acked only grows: these were acknowledged before
          let index: number;
          try {
            index = await withDeadline(f.readIndex(), PROMPT_MS, "a follower read");
          } catch (e) {
            if (!(e instanceof RaftException)) throw e;
            failed++; // a timeout or a leader change on a loaded machine: a client retries
            continue;
          }
          done++;
          assert.ok(f.appliedIndex() >= index, "resolved before applying the read index");
          const seen = new Set(fsm.logs);
          for (const v of acked.slice(0, before)) {
            assert.ok(seen.has(v), `${f.nodeId()} read without ${v}, acknowledged before`);
          }
          reads++;
        }
      };
      try {
        await Promise.all(followers.flatMap((f) => [reader(f), reader(f)]));
      } finally {
        writing = false;
        await Promise.all(writers);
      }
      assert.equal(reads, 400);
      assert.ok(failed < 100, `${failed} reads failed`);
      assert.ok(acked.length > 50, `only ${acked.length} writes ran alongside the reads`);
    } finally {
      await c.stopAll();
    }
  });

  it("a follower cut off from the leader fails within a bounded time", async () => {
    const peers = peerIds(3, 8710);
    const c = new Cluster("freads-cut", peers);
    try {
      const leader = await startAll(c, peers);
      await c.apply(leader, 3);
      const f = c.followers()[0]!;
      await f.readIndex();
      c.net.isolate(f.nodeId().endpoint);
      await c.apply(leader, 3, "after"); // the other follower acknowledges these
      const e = await rejectsWith(
        withDeadline(f.readIndex(), PROMPT_MS, "a cut-off follower read"),
        RaftError.EHOSTUNREACH,
      );
      assert.match(e.message, new RegExp(leader.peerKey), "the message names the leader asked");
      // Once its election timeout passes it knows no leader any more.
      await waitFor(() => f.leaderId() === null || undefined, DEADLINE_MS, "the leader lost");
      const e2 = await rejectsWith(f.readIndex(), RaftError.EPERM);
      assert.match(e2.message, /leader is unknown/);
      c.net.heal();
      await c.ensureSame();
      assert.ok(c.fsm(f.nodeId()).logs.includes("after2"));
    } finally {
      c.net.heal();
      await c.stopAll();
    }
  });

  it("a follower left with a deposed leader never answers stale", async () => {
    const peers = peerIds(5, 8720);
    const c = new Cluster("freads-minority", peers);
    try {
      const old = await startAll(c, peers);
      await c.apply(old, 2);
      const f = c.followers()[0]!;
      await f.readIndex();
      const minority = [old.nodeId().endpoint, f.nodeId().endpoint];
      const majority = peers.map((p) => p.endpoint).filter((e) => !minority.includes(e));
      c.net.partition(minority, majority);
      // The majority elects a new leader and acknowledges a write the minority never sees.
      const fresh = await waitFor(
        () => [...c.nodes.values()].find((n) => n !== old && n.isLeader()),
        DEADLINE_MS,
        "a leader in the majority",
      );
      await fresh.applyAsync(text("fresh"));
      const started = Date.now();
      const results = await Promise.allSettled(
        Array.from({ length: 5 }, () => withDeadline(f.readIndex(), PROMPT_MS, "a minority read")),
      );
      for (const r of results) {
        assert.equal(r.status, "rejected", "a read in the minority must not resolve");
        const e = (r as PromiseRejectedResult).reason;
        assert.ok(e instanceof RaftException, `expected a RaftException, got ${String(e)}`);
        assert.ok(
          ([RaftError.EPERM, RaftError.ETIMEDOUT] as number[]).includes(e.code),
          `unexpected ${e.message}`,
        );
      }
      assert.ok(Date.now() - started < PROMPT_MS);
      assert.ok(!c.fsm(f.nodeId()).logs.includes("fresh"));
      await waitFor(() => !old.isLeader() || undefined, DEADLINE_MS, "the old leader to step down");
      c.net.heal();
      // The first reads may still ask a node that lost its leadership: a client retries.
      const index = await readRetrying(f);
      assert.ok(f.appliedIndex() >= index);
      assert.ok(c.fsm(f.nodeId()).logs.includes("fresh"));
      await c.ensureSame();
    } finally {
      c.net.heal();
      await c.stopAll();
    }
  });

  it("a follower whose state machine lags waits for it; shutdown rejects the wait", async () => {
    const peers = peerIds(3, 8730);
    const c = new Cluster("freads-lag", peers);
    const gated = new GatedFsm();
    try {
      await c.start(peers[0]!, { fsm: gated, extra: { electionPriority: 0 } });
      await c.start(peers[1]!);
      await c.start(peers[2]!);
      const leader = await c.waitLeader();
      const f = c.nodes.get(peers[0]!.key())!;
      assert.ok(!f.isLeader());
      gated.closeAt(leader.appliedIndex() + 1);
      await leader.applyAsync(text("gated"));
      await waitFor(() => gated.reachedGate || undefined, DEADLINE_MS, "the follower's gate");
      const read = f.readIndex();
      assert.ok(await pending(read), "the read waits for the follower's own apply");
      gated.open();
      const index = await withDeadline(read, PROMPT_MS, "the read after the gate opened");
      assert.ok(index >= gated.gateAt && f.appliedIndex() >= index);
      assert.ok(gated.logs.includes("gated"));

      // Blocked again: a shutdown rejects the waiting read with EPERM.
      gated.closeAt(leader.appliedIndex() + 1);
      await leader.applyAsync(text("gated again"));
      await waitFor(() => gated.reachedGate || undefined, DEADLINE_MS, "the second gate");
      const waiting = f.readIndex();
      assert.ok(await pending(waiting));
      const stopped = f.shutdown();
      await rejectsWith(withDeadline(waiting, PROMPT_MS, "the waiting read"), RaftError.EPERM);
      gated.open();
      await stopped;
    } finally {
      gated.open();
      await c.stopAll();
    }
  });

  it("a leader that does not answer: ETIMEDOUT after the election timeout plus the drift", async () => {
    const peers = peerIds(3, 8770);
    const c = new Cluster("freads-timeout", peers);
    try {
      const leader = await startAll(c, peers);
      const f = c.followers()[0]!;
      await f.readIndex();
      c.net.setDelay(60_000); // the call's request sits in the network
      const started = Date.now();
      const e = await rejectsWith(
        withDeadline(f.readIndex(), PROMPT_MS, "an unanswered read"),
        RaftError.ETIMEDOUT,
      );
      assert.ok(Date.now() - started >= 300 + 1000 - 50, "gave up before its timeout");
      assert.match(e.message, new RegExp(`leader ${leader.peerKey}`));
    } finally {
      c.net.setDelay(0);
      await c.stopAll();
    }
  });

  it("shutdown rejects a read still waiting for the leader's answer", async () => {
    const peers = peerIds(3, 8740);
    const c = new Cluster("freads-shut", peers);
    try {
      const leader = await startAll(c, peers);
      await c.apply(leader, 2);
      const f = c.followers()[0]!;
      c.net.setDelay(60_000); // the call's request sits in the network
      const read = f.readIndex();
      assert.ok(await pending(read, 100));
      const started = Date.now();
      await f.shutdown();
      await rejectsWith(withDeadline(read, PROMPT_MS, "the read"), RaftError.EPERM);
      assert.ok(Date.now() - started < PROMPT_MS);
      c.net.setDelay(0);
    } finally {
      c.net.setDelay(0);
      await c.stopAll();
    }
  });

  it("a learner can read; a witness cannot", async () => {
    const [a, b, w0, l] = peerIds(4, 8750);
    const witness = PeerId.parse(`${w0!.endpoint}:0:1`);
    const voters = [a!, b!, witness];
    const c = new Cluster("freads-roles", voters);
    try {
      await c.start(a!);
      await c.start(b!);
      await c.start(witness, { extra: { witness: true } });
      const leader = await c.waitLeader();
      assert.ok(!leader.nodeId().equals(witness));
      const learner = await c.start(l!, { emptyPeers: true });
      await leader.addLearner(l!);
      await leader.applyAsync(text("for the learner"));
      const index = await withDeadline(learner.readIndex(), PROMPT_MS, "a learner read");
      assert.ok(learner.appliedIndex() >= index);
      assert.ok(c.fsm(l!).logs.includes("for the learner"));
      const w = c.nodes.get(witness.key())!;
      const e = await rejectsWith(w.readIndex(), RaftError.EPERM);
      assert.match(e.message, /witness/);
    } finally {
      await c.stopAll();
    }
  });

  it("the read_index call refuses malformed and misrouted requests; the node carries on", async () => {
    const peers = peerIds(3, 8760);
    const c = new Cluster("freads-call", peers);
    try {
      const leader = await startAll(c, peers);
      const follower = c.followers()[0]!;
      const probe = c.net.transport("127.0.0.1:8799");
      const to = leader.nodeId().endpoint;
      const call = (body: unknown): Promise<Uint8Array> =>
        probe.call(to, encode(body) as Uint8Array, { timeoutMs: PROMPT_MS });
      const ok = { t: "read_index", g: c.name, peer: leader.peerKey, term: leader.term() };
      await rejectsWith(probe.call(to, new Uint8Array([0xff, 0x00])), RaftError.EINVAL);
      for (
        const bad of [
          { t: "read_index" },
          { ...ok, g: 7 },
          { ...ok, g: "" },
          { ...ok, peer: undefined },
          { ...ok, peer: ["x"] },
          { ...ok, peer: "not a peer" },
          { ...ok, term: -1 },
          { ...ok, term: 1.5 },
          { ...ok, term: "1" },
          { ...ok, term: 2 ** 60 },
        ]
      ) {
        await rejectsWith(call(bad), RaftError.EINVAL);
      }
      const noGroup = await rejectsWith(call({ ...ok, g: "no-such-group" }), RaftError.ENOENT);
      assert.match(noGroup.message, /no-such-group/);
      await rejectsWith(call({ ...ok, peer: "127.0.0.1:8799:0" }), RaftError.ENOENT);
      // the follower's endpoint answers: it is not the leader
      await rejectsWith(
        probe.call(
          follower.nodeId().endpoint,
          encode({ ...ok, peer: follower.peerKey }) as Uint8Array,
        ),
        RaftError.EPERM,
      );
      await rejectsWith(call({ ...ok, term: leader.term() + 1 }), RaftError.EPERM);
      const answer = decode(await call(ok)) as { index: number; term: number };
      assert.equal(answer.term, leader.term());
      assert.ok(answer.index >= 1);
      await leader.applyAsync(text("still fine"));
      assert.ok((await follower.readIndex()) > answer.index);
      await probe.close();
    } finally {
      await c.stopAll();
    }
  });
});
