import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { Configuration } from "../../src/conf/configuration.ts";
import { EntryType, type LogEntry } from "../../src/core/entry.ts";
import { RaftError, RaftException, Status } from "../../src/errors/status.ts";
import { type Closure, closure } from "../../src/node/closure.ts";
import { FSMCaller } from "../../src/node/fsm_caller.ts";
import type { Iterator } from "../../src/node/iterator.ts";
import { type LeaderChangeContext, StateMachine } from "../../src/node/state_machine.ts";

const data = (index: number, term = 1): LogEntry => ({
  index,
  term,
  type: EntryType.DATA,
  data: ChunkChain.from(`e${index}`),
});
const conf = (index: number, peers: string, oldPeers = ""): LogEntry => ({
  index,
  term: 1,
  type: EntryType.CONFIGURATION,
  data: new ChunkChain(),
  conf: { peers: Configuration.parse(peers), oldPeers: Configuration.parse(oldPeers) },
});

class Recorder extends StateMachine {
  events: string[] = [];
  batches: number[][] = [];
  applied: string[] = [];
  failAt = -1;
  rollbackAt = -1;
  errors: RaftException[] = [];
  async onApply(iter: Iterator): Promise<void> {
    const batch: number[] = [];
    for (; iter.valid(); iter.next()) {
      if (iter.index() === this.failAt) throw new Error("boom");
      if (iter.index() === this.rollbackAt) {
        iter.setErrorAndRollback(1, new Status(RaftError.EIO, "disk full"));
        break;
      }
      await Promise.resolve();
      batch.push(iter.index());
      this.applied.push(iter.data().text());
      iter.done()?.run(Status.OK());
    }
    this.batches.push(batch);
  }
  override onConfigurationCommitted(c: Configuration, index: number): void {
    this.events.push(`conf ${index} ${c}`);
  }
  override onLeaderStart(term: number): void {
    this.events.push(`leaderStart ${term}`);
  }
  override onLeaderStop(status: Status): void {
    this.events.push(`leaderStop ${status.code}`);
  }
  override onStartFollowing(ctx: LeaderChangeContext): void {
    this.events.push(`startFollowing ${ctx.term}`);
  }
  override onError(e: RaftException): void {
    this.errors.push(e);
  }
  override onShutdown(): void {
    this.events.push("shutdown");
  }
}

function collector(): { closures: Closure[]; results: Map<number, Status> } {
  const results = new Map<number, Status>();
  const closures = Array.from({ length: 20 }, (_, i) => closure((s) => results.set(i + 1, s)));
  return { closures, results };
}

describe("FSMCaller", () => {
  it("applies in order, in batches of applyBatch, never synchronously", async () => {
    const fsm = new Recorder();
    const applied: number[] = [];
    const caller = new FSMCaller(fsm, { applyBatch: 3, onApplied: (i) => applied.push(i) });
    const { closures, results } = collector();
    caller.committed([1, 2, 3, 4, 5, 6, 7].map((i) => data(i)), closures);
    assert.equal(fsm.batches.length, 0, "not called inside committed()");
    await caller.idle();
    assert.deepEqual(fsm.batches, [[1, 2, 3], [4, 5, 6], [7]]);
    assert.deepEqual(applied, [3, 6, 7]);
    assert.equal(caller.lastAppliedIndex, 7);
    for (let i = 1; i <= 7; i++) assert.ok(results.get(i)?.ok(), `closure ${i}`);
  });

  it("handles configuration entries: closure ok, callback only when not joint", async () => {
    const fsm = new Recorder();
    const caller = new FSMCaller(fsm);
    const { closures, results } = collector();
    caller.committed(
      [conf(1, "a:1,b:1", "a:1"), conf(2, "a:1,b:1"), data(3)],
      closures,
    );
    await caller.idle();
    assert.deepEqual(fsm.events, ["conf 2 a:1:0,b:1:0"]);
    assert.ok(results.get(1)?.ok());
    assert.ok(results.get(2)?.ok());
    assert.deepEqual(fsm.batches, [[3]]);
  });

  it("serialises callbacks with applies in queue order", async () => {
    const fsm = new Recorder();
    const caller = new FSMCaller(fsm);
    caller.committed([data(1)]);
    caller.leaderStart(2);
    caller.committed([data(2)]);
    caller.leaderStop(new Status(RaftError.ETRANSFERLEADERSHIP, "x"));
    caller.startFollowing({ leaderId: null, term: 3, status: Status.OK() });
    await caller.shutdown();
    assert.deepEqual(fsm.events, [
      "leaderStart 2",
      "leaderStop 10013",
      "startFollowing 3",
      "shutdown",
    ]);
    assert.deepEqual(fsm.batches, [[1], [2]]);
    caller.committed([data(3)]);
    await caller.idle();
    assert.deepEqual(fsm.batches, [[1], [2]], "nothing after shutdown");
  });

  it("skips entries already applied", async () => {
    const fsm = new Recorder();
    const caller = new FSMCaller(fsm);
    caller.resetApplied(5, 1);
    caller.committed([4, 5, 6].map((i) => data(i)));
    await caller.idle();
    assert.deepEqual(fsm.batches, [[6]]);
  });

  it("a throwing onApply puts the caller in error and fails later closures", async () => {
    const fsm = new Recorder();
    fsm.failAt = 3;
    let fatal: RaftException | null = null;
    const caller = new FSMCaller(fsm, { applyBatch: 10, onFatal: (e) => (fatal = e) });
    const { closures, results } = collector();
    caller.committed([1, 2, 3, 4].map((i) => data(i)), closures);
    caller.committed([data(5)], [closures[4]]);
    caller.leaderStart(9);
    await caller.idle();
    assert.equal(fsm.errors.length, 1);
    assert.equal(fsm.errors[0]!.code, RaftError.ESTATEMACHINE);
    assert.match(fsm.errors[0]!.message, /boom/);
    assert.ok(fatal !== null);
    assert.ok(results.get(1)?.ok() && results.get(2)?.ok());
    for (const i of [3, 4, 5]) assert.equal(results.get(i)?.ok(), false, `closure ${i} fails`);
    assert.deepEqual(fsm.events, [], "no callbacks after the error");
    assert.equal(caller.lastAppliedIndex, 2);
  });

  it("onLeaderStop and onStopFollowing still run once the caller is in error (braft on_error step-down)", async () => {
    class Following extends Recorder {
      override onStopFollowing(ctx: LeaderChangeContext): void {
        this.events.push(`stopFollowing ${ctx.status.code}`);
      }
    }
    const fsm = new Following();
    fsm.failAt = 1;
    const caller = new FSMCaller(fsm, { applyBatch: 10 });
    caller.committed([data(1)]);
    await caller.idle();
    assert.ok(caller.error !== null);
    const bad = new Status(RaftError.EBADNODE, "in error");
    caller.leaderStart(3); // skipped: nothing starts on a failed state machine
    caller.startFollowing({ leaderId: null, term: 3, status: Status.OK() });
    caller.leaderStop(bad);
    caller.stopFollowing({ leaderId: null, term: 3, status: bad });
    await caller.idle();
    assert.deepEqual(fsm.events, [
      `leaderStop ${RaftError.EBADNODE}`,
      `stopFollowing ${RaftError.EBADNODE}`,
    ]);
  });

  it("setErrorAndRollback stops applying and reports ESTATEMACHINE", async () => {
    const fsm = new Recorder();
    fsm.rollbackAt = 2;
    const caller = new FSMCaller(fsm, { applyBatch: 10 });
    const { closures, results } = collector();
    caller.committed([1, 2, 3].map((i) => data(i)), closures);
    await caller.idle();
    assert.equal(caller.lastAppliedIndex, 1);
    assert.equal(fsm.errors[0]?.code, RaftError.ESTATEMACHINE);
    assert.equal(results.get(2)?.code, RaftError.EIO);
    assert.equal(results.get(3)?.code, RaftError.EIO);
    assert.ok(caller.error !== null);
  });

  it("an onApply that returns early skips the current entry and is called again for the rest (braft)", async () => {
    // braft do_committed: "Iterator is still valid, did you return before iterator reached the
    // end?", then iter.next() and on_apply again. No entry is acknowledged unseen.
    const seen: number[][] = [];
    class OnePerCall extends StateMachine {
      onApply(iter: Iterator): void {
        const call = [iter.index()];
        seen.push(call);
        if (iter.index() === 2) iter.done()?.run(Status.OK()); // takes entry 2's closure
        if (iter.index() === 4) {
          iter.next(); // handles 4 fully, stops on 5
          call.push(iter.index());
        }
      }
    }
    const applied: number[] = [];
    const caller = new FSMCaller(new OnePerCall(), { onApplied: (i) => applied.push(i) });
    const { closures, results } = collector();
    caller.committed([1, 2, 3, 4, 5, 6].map((i) => data(i)), closures);
    await caller.idle();
    assert.deepEqual(seen, [[1], [2], [3], [4, 5], [6]], "every entry is handed to onApply");
    assert.equal(caller.lastAppliedIndex, 6);
    assert.deepEqual(applied, [1, 2, 3, 5, 6]);
    assert.equal(results.get(2)?.ok(), true, "the state machine ran it");
    assert.equal(results.get(4)?.ok(), true, "moved past without fetching: OK");
    for (const i of [1, 3, 5, 6]) {
      assert.equal(results.get(i)?.code, RaftError.ESTATEMACHINE, `skipped entry ${i}`);
    }
    assert.equal(caller.error, null, "an early return is not an error");
  });

  it("iter.done() is the caller's own closure object, and every closure runs exactly once", async () => {
    class FetchAddClosure {
      old = -1;
      runs: Status[] = [];
      run(s: Status): void {
        this.runs.push(s);
      }
    }
    let value = 0;
    const handed: unknown[] = [];
    class Counter extends StateMachine {
      onApply(iter: Iterator): void {
        for (; iter.valid(); iter.next()) {
          if (iter.index() % 2 === 0) continue; // never fetches the even entries' closures
          const done = iter.done();
          handed.push(done);
          if (done instanceof FetchAddClosure) done.old = value;
          value += 10;
          done?.run(Status.OK());
        }
      }
    }
    const caller = new FSMCaller(new Counter());
    const mine = [1, 2, 3, 4].map(() => new FetchAddClosure());
    caller.committed([1, 2, 3, 4].map((i) => data(i)), mine);
    await caller.idle();
    assert.equal(handed[0], mine[0]);
    assert.equal(handed[1], mine[2]);
    assert.deepEqual(mine.map((c) => c.old), [0, -1, 10, -1]);
    for (const [i, c] of mine.entries()) {
      assert.equal(c.runs.length, 1, `closure ${i + 1} ran ${c.runs.length} times`);
      assert.ok(c.runs[0]!.ok());
    }
  });

  it("setErrorAndRollback(n) fails the rolled-back entries' closures too (braft)", async () => {
    const ran: number[] = [];
    class Buffering extends StateMachine {
      onApply(iter: Iterator): void {
        for (; iter.valid(); iter.next()) {
          const done = iter.done();
          if (iter.index() === 3) {
            iter.setErrorAndRollback(2, new Status(RaftError.EIO, "flush failed"));
            return;
          }
          ran.push(iter.index());
          if (iter.index() === 1) done?.run(Status.OK());
          // entry 2 is buffered: its closure would run once the flush succeeds
        }
      }
    }
    const caller = new FSMCaller(new Buffering(), { applyBatch: 10 });
    const results = new Map<number, Status[]>();
    const closures = [1, 2, 3, 4].map((i) =>
      closure((s) => results.set(i, [...(results.get(i) ?? []), s]))
    );
    caller.committed([1, 2, 3, 4].map((i) => data(i)), closures);
    await caller.idle();
    assert.equal(caller.lastAppliedIndex, 1);
    assert.equal(results.get(1)?.length, 1);
    assert.ok(results.get(1)![0]!.ok());
    for (const i of [2, 3, 4]) {
      assert.equal(results.get(i)?.length, 1, `closure ${i} runs once`);
      assert.equal(results.get(i)![0]!.code, RaftError.EIO, `closure ${i}`);
    }
    assert.equal(caller.error?.code, RaftError.ESTATEMACHINE);
  });

  it("reportError is urgent: onError runs before any further onApply batch", async () => {
    const events: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    class Slow extends StateMachine {
      async onApply(iter: Iterator): Promise<void> {
        for (; iter.valid(); iter.next()) {
          events.push(`apply ${iter.index()}`);
          if (iter.index() === 1) await gate;
          iter.done()?.run(Status.OK());
        }
      }
      override onError(e: RaftException): void {
        events.push(`error ${e.code}`);
      }
    }
    let fatal: RaftException | null = null;
    const caller = new FSMCaller(new Slow(), { applyBatch: 2, onFatal: (e) => (fatal = e) });
    const { closures, results } = collector();
    caller.committed([1, 2, 3].map((i) => data(i)), closures); // batches [1,2] and [3]
    caller.committed([data(4)], [closures[3]]);
    caller.leaderStart(2);
    await new Promise((r) => setTimeout(r, 0));
    while (events.length === 0) await new Promise((r) => setTimeout(r, 1));
    caller.reportError(new RaftException(new Status(RaftError.EIO, "disk gone")));
    release();
    await caller.idle();
    assert.deepEqual(events, ["apply 1", "apply 2", `error ${RaftError.EIO}`]);
    assert.ok(fatal !== null);
    assert.ok(results.get(1)?.ok() && results.get(2)?.ok(), "the running batch completes");
    for (const i of [3, 4]) assert.equal(results.get(i)?.code, RaftError.EIO, `closure ${i}`);
  });

  it("closures committed after shutdown run with EPERM Node is down (braft)", async () => {
    const caller = new FSMCaller(new Recorder());
    await caller.shutdown();
    const { closures, results } = collector();
    caller.committed([data(1)], closures);
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(results.get(1)?.code, RaftError.EPERM);
  });

  it("run() executes work between callbacks and propagates its result", async () => {
    const fsm = new Recorder();
    const caller = new FSMCaller(fsm);
    caller.committed([data(1)]);
    const seen = await caller.run("Saving snapshot", () => caller.lastAppliedIndex);
    assert.equal(seen, 1);
    await assert.rejects(caller.run("x", () => Promise.reject(new Error("nope"))), /nope/);
  });
});
