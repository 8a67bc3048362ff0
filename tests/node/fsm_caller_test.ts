import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { Configuration } from "../../src/conf/configuration.ts";
import { EntryType, type LogEntry } from "../../src/core/entry.ts";
import { RaftError, type RaftException, Status } from "../../src/errors/status.ts";
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

  it("an iterator left valid counts the rest as applied", async () => {
    class Lazy extends StateMachine {
      onApply(iter: Iterator): void {
        iter.next(); // reads only the first entry
      }
    }
    const caller = new FSMCaller(new Lazy());
    const { closures, results } = collector();
    caller.committed([1, 2, 3].map((i) => data(i)), closures);
    await caller.idle();
    assert.equal(caller.lastAppliedIndex, 3);
    assert.ok(results.get(2)?.ok());
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
