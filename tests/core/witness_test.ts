/**
 * Witness replicas (braft `NodeOptions.witness`, PeerId role `:1`): a witness votes and counts
 * in quorums, gets DATA entries without their payload, is never picked by ANY_PEER, and
 * without `witnessToLeader` never campaigns. With it, it campaigns after twice the election
 * timeout and, once leader, steps down at its next step-down check (ETRANSFERLEADERSHIP),
 * waking the most caught-up replica.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { Configuration } from "../../src/conf/configuration.ts";
import { EntryType, type LogEntry } from "../../src/core/entry.ts";
import { MemoryCoreStorage, RaftCore } from "../../src/core/mod.ts";
import type { Message, SoftState } from "../../src/core/types.ts";
import { RaftError } from "../../src/errors/status.ts";
import { Prng } from "../../src/util/prng.ts";

const A = "n1:1:0";
const B = "n2:1:0";
const W = "n3:1:0"; // the witness (its PeerId carries role 1 in the configuration)
const CONF = Configuration.parse("n1:1:0,n2:1:0,n3:1:0:1");

/** Three cores (n3 a witness), every Ready persisted at once, messages delivered by hand. */
class WitnessNet {
  readonly cores = new Map<string, RaftCore>();
  readonly storages = new Map<string, MemoryCoreStorage>();
  readonly soft = new Map<string, SoftState[]>();
  queue: Message[] = [];
  sent: Message[] = [];
  readonly #toLeader: boolean;

  constructor(witnessToLeader: boolean) {
    this.#toLeader = witnessToLeader;
    for (const id of [A, B, W]) {
      this.storages.set(id, new MemoryCoreStorage());
      this.soft.set(id, []);
      this.start(id);
    }
  }

  start(id: string): void {
    this.cores.set(
      id,
      new RaftCore({
        id,
        storage: this.storages.get(id)!,
        prng: new Prng(7 + [A, B, W].indexOf(id)),
        electionTick: 10,
        heartbeatTick: 1,
        witness: id === W,
        witnessToLeader: this.#toLeader,
        initialConf: { peers: CONF.clone() },
      }),
    );
  }

  core(id: string): RaftCore {
    return this.cores.get(id)!;
  }

  drain(): void {
    let again = true;
    while (again) {
      again = false;
      for (const [id, c] of this.cores) {
        while (c.hasReady()) {
          again = true;
          const rd = c.ready();
          const s = this.storages.get(id)!;
          if (rd.softState !== undefined) this.soft.get(id)!.push(rd.softState);
          this.queue.push(...rd.messages);
          if (rd.snapshot !== undefined) s.applySnapshot(rd.snapshot);
          s.append(rd.entries);
          if (rd.hardState !== undefined) s.setHardState(rd.hardState);
          this.queue.push(...rd.messagesAfterPersist);
          c.advance(rd);
        }
      }
    }
  }

  /** Delivers until quiet; messages to or from `down` are lost. */
  stabilize(down: readonly string[] = []): void {
    this.drain();
    for (let i = 0; i < 1000 && this.queue.length > 0; i++) {
      const now = this.queue;
      this.queue = [];
      for (const m of now) {
        if (down.includes(m.to) || down.includes(m.from)) continue;
        this.sent.push(m);
        this.core(m.to).step(m);
      }
      this.drain();
    }
  }

  tick(n: number, down: readonly string[] = []): void {
    for (let i = 0; i < n; i++) {
      for (const [id, c] of this.cores) if (!down.includes(id)) c.tick();
      this.stabilize(down);
    }
  }

  elect(id: string, down: readonly string[] = []): void {
    this.core(id).campaign();
    this.stabilize(down);
    assert.ok(this.core(id).isLeader(), `${id} was elected`);
  }

  propose(id: string, text: string, down: readonly string[] = []): number {
    const r = this.core(id).propose(ChunkChain.from(text));
    assert.ok(r.status.ok(), r.status.toString());
    this.stabilize(down);
    return r.index;
  }

  stored(id: string): LogEntry[] {
    const s = this.storages.get(id)!;
    return s.entries(s.firstIndex(), s.lastIndex() + 1, Infinity);
  }
}

const dataOf = (entries: readonly LogEntry[]): string[] =>
  entries.filter((e) => e.type === EntryType.DATA).map((e) => e.data.text());

describe("witness replicas", () => {
  it("a witness never campaigns without raft_enable_witness_to_leader", () => {
    const net = new WitnessNet(false);
    const w = net.core(W);
    // cut off from everyone for many election timeouts
    net.tick(100, [A, B]);
    assert.equal(w.role(), "follower");
    assert.equal(w.term(), 1);
    assert.ok(!net.sent.some((m) => m.from === W), "the witness sent no (pre-)vote request");
    w.campaign();
    net.drain();
    assert.equal(w.role(), "follower", "campaign() does nothing on a witness");
    // nor does a TimeoutNow (braft: it has no vote timer)
    w.step({ type: "TimeoutNow", from: A, to: W, term: 1 });
    net.drain();
    assert.equal(w.role(), "follower");
    const resp = net.queue.find((m) => m.type === "TimeoutNowResp");
    assert.ok(resp?.type === "TimeoutNowResp" && !resp.success);
    // a replica in the same place does campaign
    net.queue = [];
    net.tick(30, [B, W]);
    assert.notEqual(net.core(A).role(), "follower");
  });

  it("the witness's vote and ack count: two of three commit while a replica is down", () => {
    const net = new WitnessNet(false);
    net.elect(A, [B]);
    const idx = net.propose(A, "x", [B]);
    assert.equal(net.core(A).commitIndex(), idx, "committed by the leader and the witness");
    assert.equal(net.core(W).lastIndex(), idx);
  });

  it("AppendEntries to a witness carry DATA entries without their payload", () => {
    const net = new WitnessNet(false);
    net.elect(A);
    net.propose(A, "hello");
    net.propose(A, "world");
    const toW = net.sent.filter((m) => m.type === "AppendEntries" && m.to === W);
    const toB = net.sent.filter((m) => m.type === "AppendEntries" && m.to === B);
    const sentData = (ms: Message[]) =>
      dataOf(ms.flatMap((m) => m.type === "AppendEntries" ? m.entries : []));
    assert.deepEqual(sentData(toB), ["hello", "world"]);
    assert.deepEqual(sentData(toW), ["", ""]);
    // log matching is intact: same indexes, terms and types everywhere
    const shape = (es: LogEntry[]) => es.map((e) => [e.index, e.term, e.type]);
    assert.deepEqual(shape(net.stored(W)), shape(net.stored(B)));
    assert.deepEqual(dataOf(net.stored(W)), ["", ""]);
    assert.deepEqual(dataOf(net.stored(B)), ["hello", "world"]);
    assert.equal(net.core(W).commitIndex(), net.core(A).commitIndex());
  });

  it("with raft_enable_witness_to_leader the witness gets the payload", () => {
    const net = new WitnessNet(true);
    net.elect(A);
    net.propose(A, "hello");
    assert.deepEqual(dataOf(net.stored(W)), ["hello"]);
  });

  it("ANY_PEER transfer never picks the witness", () => {
    const net = new WitnessNet(false);
    net.elect(A);
    // B is down and falls behind; W is the most caught-up follower
    net.propose(A, "x", [B]);
    net.tick(10, [B]);
    const st = net.core(A).transferLeader("");
    assert.equal(st.code, -1, `no reachable replica: ${st}`);
    assert.equal(net.core(A).transferee(), "");
    // with B back it is the target, although W is ahead of it
    net.tick(2);
    assert.ok(net.core(A).transferLeader("").ok());
    net.stabilize();
    net.tick(3);
    assert.ok(net.core(B).isLeader(), "B took over");
  });

  it("with the flag, a witness waits twice the election timeout before campaigning", () => {
    const net = new WitnessNet(true);
    const w = net.core(W);
    let first = 0;
    for (let t = 1; t <= 40 && first === 0; t++) {
      net.tick(1, [A, B]);
      if (w.role() !== "follower") first = t;
    }
    // a replica campaigns within [T, 2T] ticks (max delay T); the witness within [2T, 3T]
    assert.ok(first >= 20 && first <= 31, `the witness first campaigned at tick ${first}`);
  });

  it("a witness leader steps down at its next step-down check and wakes a replica", () => {
    const net = new WitnessNet(true);
    net.elect(A);
    // B falls behind; then the leader crashes: only W has the latest entries
    net.propose(A, "1", [B]);
    net.propose(A, "2", [B]);
    const last = net.core(A).lastIndex();
    // B cannot win (its log is behind); W campaigns after 2T and wins with B's vote
    for (let i = 0; i < 60 && !net.core(W).isLeader(); i++) net.tick(1, [A]);
    assert.ok(net.core(W).isLeader(), "the witness became leader");
    const wTerm = net.core(W).term();
    // it replicates to B, then at its step-down check hands over
    for (let i = 0; i < 40 && !net.core(B).isLeader(); i++) net.tick(1, [A]);
    assert.ok(net.core(B).isLeader(), "the replica took over");
    assert.ok(!net.core(W).isLeader());
    const reasons = net.soft.get(W)!.map((s) => s.reason?.code);
    assert.ok(reasons.includes(RaftError.ETRANSFERLEADERSHIP), `reasons: ${reasons}`);
    assert.ok(
      net.sent.some((m) =>
        m.type === "TimeoutNow" && m.from === W && m.to === B &&
        m.term === wTerm
      ),
      "the witness woke B with TimeoutNow",
    );
    assert.ok(net.core(B).lastIndex() >= last);
    assert.deepEqual(dataOf(net.stored(B)).slice(0, 2), ["1", "2"]);
  });

  it("a witness leader never sends InstallSnapshot (its snapshot may lack the data)", () => {
    const net = new WitnessNet(true);
    net.elect(A);
    net.propose(A, "1", [B]);
    net.propose(A, "2", [B]);
    const w = net.core(W);
    // the witness compacts its log past everything B has, then A crashes
    net.storages.get(W)!.compact(w.snapshotMetaAt(w.commitIndex()));
    assert.ok(w.firstIndex() > net.core(B).lastIndex() + 1, "B needs a snapshot");
    for (let i = 0; i < 60 && !w.isLeader(); i++) net.tick(1, [A]);
    assert.ok(w.isLeader(), "the witness became leader");
    for (let i = 0; i < 30 && w.isLeader(); i++) net.tick(1, [A]);
    assert.ok(
      !net.sent.some((m) => m.type === "InstallSnapshot" && m.from === W),
      "no InstallSnapshot from the witness",
    );
  });
});
