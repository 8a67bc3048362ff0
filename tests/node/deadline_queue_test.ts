// The shared deadline queue (the snapshot interval timers of many groups on one clock timer),
// checked against a plain model on seeded random workloads, and the snapshot executor's use of it.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { type Deadline, DeadlineQueue } from "../../src/node/deadline_queue.ts";
import { ManualClock, systemClock } from "../../src/util/clock.ts";
import { Prng } from "../../src/util/prng.ts";
import { Cluster, peerIds, waitFor } from "./cluster.ts";

describe("DeadlineQueue", () => {
  it("is one queue per clock, with one clock timer armed exactly while a deadline is", () => {
    const clock = new ManualClock();
    const q = DeadlineQueue.for(clock);
    assert.equal(DeadlineQueue.for(clock), q);
    assert.notEqual(DeadlineQueue.for(new ManualClock()), q);
    assert.equal(q.running, false);
    const fired: number[] = [];
    const a = q.add(50, { onDeadline: () => fired.push(50) });
    q.add(20, { onDeadline: () => fired.push(20) });
    assert.equal(q.running, true);
    assert.equal(q.size, 2);
    clock.advance(19);
    assert.deepEqual(fired, []);
    clock.advance(1);
    assert.deepEqual(fired, [20]);
    q.cancel(a);
    q.cancel(a); // twice: nothing
    assert.equal(q.running, false);
    clock.advance(100);
    assert.deepEqual(fired, [20]);
  });

  it("fires equal deadlines in the order they were armed, and keeps going past a target that throws", () => {
    const clock = new ManualClock();
    const q = DeadlineQueue.for(clock);
    const fired: string[] = [];
    q.add(10, { onDeadline: () => fired.push("a") });
    q.add(10, {
      onDeadline: () => {
        throw new Error("boom");
      },
    });
    q.add(10, { onDeadline: () => fired.push("c") });
    clock.advance(10);
    assert.deepEqual(fired, ["a", "c"]);
    assert.equal(q.errors, 1);
  });

  it("lets a target re-arm itself from its callback (the snapshot interval does)", () => {
    const clock = new ManualClock();
    const q = DeadlineQueue.for(clock);
    let fired = 0;
    const target = {
      onDeadline: () => {
        fired++;
        if (fired < 3) q.add(10, target);
      },
    };
    q.add(10, target);
    clock.advance(10);
    clock.advance(10);
    clock.advance(10);
    clock.advance(10);
    assert.equal(fired, 3);
    assert.equal(q.running, false);
  });

  it("fires exactly the uncancelled deadlines, in deadline order, on random workloads", () => {
    const seeds = Number(process.env.DEADLINE_SEEDS ?? 50);
    for (let seed = 1; seed <= seeds; seed++) {
      const rng = new Prng(seed);
      const clock = new ManualClock();
      const q = DeadlineQueue.for(clock);
      const live = new Map<number, { at: number; deadline: Deadline }>();
      const fired: Array<{ id: number; at: number; now: number }> = [];
      let next = 0;
      for (let step = 0; step < 400; step++) {
        const r = rng.next();
        if (r < 0.5) {
          const id = next++;
          const delay = Math.floor(rng.next() * 200);
          const deadline = q.add(delay, {
            onDeadline: () => {
              fired.push({ id, at: live.get(id)!.at, now: clock.now() });
              live.delete(id);
            },
          });
          live.set(id, { at: clock.now() + delay, deadline });
        } else if (r < 0.7 && live.size > 0) {
          const ids = [...live.keys()];
          const id = ids[Math.floor(rng.next() * ids.length)]!;
          q.cancel(live.get(id)!.deadline);
          live.delete(id);
        } else {
          clock.advance(Math.floor(rng.next() * 60));
          // whatever was due has fired
          for (const { at } of live.values()) {
            assert.ok(at > clock.now(), `overdue: seed ${seed} step ${step}`);
          }
        }
        const msg = `seed ${seed} step ${step} (replay: DEADLINE_SEEDS=${seed})`;
        assert.equal(q.size, live.size, msg);
        assert.equal(q.running, live.size > 0, msg);
      }
      for (let i = 0; i < fired.length; i++) {
        const f = fired[i]!;
        assert.ok(f.now >= f.at, `seed ${seed}: fired early`);
        if (i > 0 && fired[i - 1]!.now === f.now) {
          assert.ok(fired[i - 1]!.at <= f.at, `seed ${seed}: out of order`);
        }
      }
    }
  });
});

describe("snapshot interval on the shared deadline queue", () => {
  it("every node of a group snapshots on its interval, and shutdown disarms it", async () => {
    const peers = peerIds(3, 5760);
    const c = new Cluster("deadlinesnap", peers, { snapshotIntervalS: 1 });
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      // The first deadline of each node saves a snapshot; the re-armed one saves the next
      // (a deadline with nothing applied since the last snapshot saves nothing, as in braft).
      for (let round = 1; round <= 2; round++) {
        await c.apply(leader, 5);
        await c.ensureSame();
        for (const [key, fsm] of c.fsms) {
          const applied = fsm.appliedIndex;
          await waitFor(
            () => (fsm.snapshotsSaved >= round && fsm.snapshotIndex >= applied ? true : undefined),
            60_000,
            `snapshot ${round} on ${key} (applied ${applied})`,
          );
        }
      }
      const queue = DeadlineQueue.for(systemClock);
      for (const n of c.nodes.values()) {
        assert.ok(n.describe().snapshotTimer.includes("SCHEDULING"));
      }
      const before = queue.size;
      assert.ok(before >= 3, `${before} deadlines armed`);
      await c.stop(peers[0]!);
      assert.equal(queue.size, before - 1, "shutdown cancels the node's deadline");
    } finally {
      await c.stopAll();
    }
  });
});
