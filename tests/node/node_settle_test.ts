// Completion rules of the node API: every closure runs exactly once (the caller's own object
// reaches onApply) and every Promise settles, on success, step-down, error and shutdown;
// a storage error puts the node into ERROR at once.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RaftError, type RaftException, Status } from "../../src/errors/status.ts";
import type { Closure } from "../../src/node/closure.ts";
import type { Iterator } from "../../src/node/iterator.ts";
import type { Node } from "../../src/node/node.ts";
import { NodeState } from "../../src/node/options.ts";
import { faultFs, setDiskDelay } from "./_faults.ts";
import {
  applyStatus,
  Cluster,
  DEADLINE_MS,
  MockFsm,
  peerIds,
  rejectsWith,
  waitFor,
  withDeadline,
} from "./cluster.ts";

/** How long a correct node may take to react; only bounds a hang. */
const PROMPT_MS = 10_000;

/** A MockFsm whose onApply waits at `gateAt` until `open()`, and that logs its callbacks. */
class GatedFsm extends MockFsm {
  events: string[] = [];
  gateAt = -1;
  #release: () => void = () => {};
  #gate: Promise<void> = new Promise((r) => (this.#release = r));
  reachedGate = false;

  open(): void {
    this.#release();
  }

  override async onApply(iter: Iterator): Promise<void> {
    for (; iter.valid(); iter.next()) {
      this.events.push(`apply ${iter.data().text()}`);
      if (iter.index() === this.gateAt) {
        this.reachedGate = true;
        await this.#gate;
      }
      this.logs.push(iter.data().text());
      this.appliedIndex = iter.index();
      iter.done()?.run(Status.OK());
    }
  }

  override onError(e: RaftException): void {
    this.events.push(`error ${e.code}`);
    super.onError(e);
  }
}

/** braft's counter: fetch_add answers with the old value through the caller's own closure. */
class FetchAddClosure implements Closure {
  old = -1;
  statuses: Status[] = [];
  run(status: Status): void {
    this.statuses.push(status);
  }
}

class CounterFsm extends MockFsm {
  value = 0;
  handed: unknown[] = [];
  override onApply(iter: Iterator): void {
    for (; iter.valid(); iter.next()) {
      const delta = Number(iter.data().text());
      const done = iter.done();
      this.handed.push(done);
      if (done instanceof FetchAddClosure) done.old = this.value;
      this.value += delta;
      done?.run(Status.OK());
    }
  }
}

async function singleNode(name: string, fsm: MockFsm): Promise<{ c: Cluster; node: Node }> {
  const [p] = peerIds(1, 6400);
  const c = new Cluster(name, [p!], { storage: "faultmem" });
  const node = await c.start(p!, { fsm });
  await c.waitLeader();
  return { c, node };
}

describe("node completion rules", () => {
  it("iter.done() is the closure given to apply(): fetch_add returns the old value through it", async () => {
    const peers = peerIds(3, 6410);
    const c = new Cluster("fetchadd", peers);
    try {
      const fsms = peers.map(() => new CounterFsm());
      for (const [i, p] of peers.entries()) await c.start(p, { fsm: fsms[i]! });
      const leader = await c.waitLeader();
      const fsm = c.fsm(leader.nodeId()) as CounterFsm;
      const mine = [5, 7, 11].map(() => new FetchAddClosure());
      for (const [i, delta] of [5, 7, 11].entries()) {
        leader.apply({ data: new TextEncoder().encode(String(delta)), done: mine[i]! });
      }
      await waitFor(() => mine.every((m) => m.statuses.length > 0) || undefined, DEADLINE_MS, "3");
      assert.ok(fsm.handed.includes(mine[0]), "onApply got the very object");
      assert.equal(fsm.handed.filter((d) => d === mine[1]).length, 1);
      assert.deepEqual(mine.map((m) => m.old), [0, 5, 12]);
      for (const m of mine) {
        assert.equal(m.statuses.length, 1);
        assert.ok(m.statuses[0]!.ok());
      }
      // Followers apply the same entries without a closure.
      await c.ensureSame();
      for (const f of c.followers()) {
        assert.ok((c.fsm(f.nodeId()) as CounterFsm).handed.every((d) => d === null));
      }
    } finally {
      await c.stopAll();
    }
  });

  it("a leader whose disk fails mid-stream runs every closure (400 writes)", async () => {
    const peers = peerIds(3, 6420);
    const c = new Cluster("diskfail", peers, { storage: "faultmem" });
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      // A slow leader disk: acknowledgements arrive while an append is under way, so the next
      // Ready carries both new entries and newly committed ones.
      setDiskDelay(c.diskPath(leader.nodeId()), 3);
      const statuses: Promise<Status>[] = [];
      for (let i = 0; i < 400; i++) {
        statuses.push(applyStatus(leader, `w${i}`));
        if (i % 20 === 0) await new Promise((r) => setTimeout(r, 1));
        // Mid-stream, while Readys carry both new entries and newly committed ones.
        if (i === 200) {
          faultFs.injectFault({
            op: "write",
            path: c.diskPath(leader.nodeId()),
            after: 1,
            count: Infinity,
          });
        }
      }
      const all = await withDeadline(Promise.all(statuses), PROMPT_MS, "every closure runs");
      assert.equal(leader.state(), NodeState.ERROR);
      const failed = all.filter((s) => !s.ok());
      assert.ok(failed.length > 0, "the disk failure failed some writes");
      for (const s of failed) {
        assert.ok(
          [RaftError.EBADNODE, RaftError.EPERM, RaftError.EIO].includes(s.code as never),
          `unexpected ${s}`,
        );
      }
    } finally {
      for (const p of peers) setDiskDelay(c.diskPath(p), 0);
      await c.stopAll();
    }
  });

  it("a storage error is immediate: ERROR, no more writes, onError before further batches", async () => {
    const fsm = new GatedFsm();
    const { c, node } = await singleNode("urgent", fsm);
    try {
      const first = node.appliedIndex() + 1;
      fsm.gateAt = first;
      const a = [applyStatus(node, "a1")];
      await waitFor(() => fsm.reachedGate || undefined, DEADLINE_MS, "onApply at the gate");
      a.push(applyStatus(node, "a2"), applyStatus(node, "a3"));
      await waitFor(
        () => node.describe().lastCommittedIndex >= first + 2 || undefined,
        DEADLINE_MS,
        "a2 and a3 committed",
      );
      faultFs.injectFault({ op: "write", path: c.diskPath(node.nodeId()), count: Infinity });
      const b = applyStatus(node, "b");
      // The state machine is still blocked at a1, yet the node is in ERROR at once.
      await waitFor(() => node.state() === NodeState.ERROR || undefined, PROMPT_MS, "ERROR");
      assert.equal(node.isLeader(), false);
      assert.equal((await b).code, RaftError.EPERM);
      assert.equal((await applyStatus(node, "c")).code, RaftError.EPERM);
      fsm.open();
      const [a1, a2, a3] = await withDeadline(Promise.all(a), PROMPT_MS, "a1..a3 complete");
      assert.ok(a1!.ok(), "a1 was being applied");
      assert.equal(a2!.ok(), false);
      assert.equal(a3!.ok(), false);
      await waitFor(() => fsm.errors.length > 0 || undefined, PROMPT_MS, "onError");
      assert.deepEqual(fsm.events.filter((e) => !e.startsWith("apply hello")), [
        "apply a1",
        `error ${RaftError.EIO}`,
      ]);
    } finally {
      fsm.open();
      await c.stopAll();
    }
  });

  it("an onSnapshotLoad failure during InstallSnapshot is ESTATEMACHINE, not a disk error", async () => {
    const peers = peerIds(3, 6440);
    const c = new Cluster("loadfail", peers);
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      await c.apply(leader, 5, "a");
      const lagger = c.followers()[0]!.nodeId();
      await c.stop(lagger);
      await c.apply(leader, 5, "b");
      await leader.snapshot();
      await c.apply(leader, 5, "c");
      await leader.snapshot(); // drops the log the lagger would need
      const fsm = new MockFsm();
      fsm.failLoad = true;
      const node = await c.start(lagger, { fsm });
      await waitFor(() => fsm.errors[0], DEADLINE_MS, "onError on the lagging follower");
      assert.equal(fsm.errors[0]!.code, RaftError.ESTATEMACHINE, fsm.errors[0]!.message);
      assert.match(fsm.errors[0]!.message, /mock load failure/);
      assert.equal(node.state(), NodeState.ERROR);
    } finally {
      await c.stopAll();
    }
  });

  it("waitApplied, waitLeader and a confirmed readIndex reject on shutdown", async () => {
    const fsm = new GatedFsm();
    const { c, node } = await singleNode("shutwait", fsm);
    const peers = peerIds(3, 6430);
    const d = new Cluster("shutwait-follower", peers);
    try {
      fsm.gateAt = node.appliedIndex() + 1;
      const write = applyStatus(node, "x");
      await waitFor(() => fsm.reachedGate || undefined, DEADLINE_MS, "onApply at the gate");
      const read = node.readIndex(); // confirmed at once (one voter), waits for the apply
      const far = node.waitApplied(1_000_000);
      const follower = await d.start(peers[0]!); // alone: never leads
      const lead = follower.waitLeader();
      const stopped = node.shutdown();
      await rejectsWith(withDeadline(read, PROMPT_MS, "readIndex"), RaftError.EPERM);
      await rejectsWith(withDeadline(far, PROMPT_MS, "waitApplied"), RaftError.EPERM);
      await d.stop(peers[0]!);
      await rejectsWith(withDeadline(lead, PROMPT_MS, "waitLeader"), RaftError.EPERM);
      await rejectsWith(node.waitApplied(1_000_000), RaftError.EPERM);
      fsm.open();
      await stopped;
      await write;
    } finally {
      fsm.open();
      await c.stopAll();
      await d.stopAll();
    }
  });

  it("waitApplied and a confirmed readIndex reject when the node goes to ERROR", async () => {
    const fsm = new GatedFsm();
    const { c, node } = await singleNode("errwait", fsm);
    try {
      fsm.gateAt = node.appliedIndex() + 1;
      const write = applyStatus(node, "x");
      await waitFor(() => fsm.reachedGate || undefined, DEADLINE_MS, "onApply at the gate");
      const read = node.readIndex();
      const far = node.waitApplied(1_000_000);
      faultFs.injectFault({ op: "write", path: c.diskPath(node.nodeId()), count: Infinity });
      const failing = applyStatus(node, "boom");
      await rejectsWith(withDeadline(read, PROMPT_MS, "readIndex"), RaftError.EPERM);
      await rejectsWith(withDeadline(far, PROMPT_MS, "waitApplied"), RaftError.EPERM);
      await rejectsWith(node.waitLeader(), RaftError.EPERM);
      assert.equal((await failing).code, RaftError.EPERM);
      fsm.open();
      await write;
    } finally {
      fsm.open();
      await c.stopAll();
    }
  });
});
