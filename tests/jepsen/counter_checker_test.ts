/**
 * The counter checker on hand-made histories, on a 50,000-operation history, and against the
 * generic search on thousands of seeded small histories (linearizable and mutated).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Prng } from "../../src/util/prng.ts";
import { mutate, simulateCounter } from "./_counter_sim.ts";
import { checkCounter, counterModel, type CounterOp } from "./counter_checker.ts";
import { checkLinearizable } from "./linearizability.ts";

const SEEDS = Number(globalThis.process?.env?.LINZ_SEEDS ?? "") || 2000;

let nextId = 0;
/** An add; `prev` undefined means info, null means fail. */
function add(
  p: number,
  delta: number,
  call: number,
  ret: number,
  prev: number | null | undefined,
): CounterOp {
  const op: CounterOp = {
    id: nextId++,
    process: p,
    input: { f: "add", delta },
    call,
    return: prev === undefined ? null : ret,
    outcome: prev === undefined ? "info" : prev === null ? "fail" : "ok",
  };
  if (typeof prev === "number") op.output = prev;
  return op;
}
function get(p: number, call: number, ret: number, value: number): CounterOp {
  return {
    id: nextId++,
    process: p,
    input: { f: "get" },
    call,
    return: ret,
    outcome: "ok",
    output: value,
  };
}

/** Both checkers must give `expected`. */
function both(ops: CounterOp[], expected: boolean): void {
  const fast = checkCounter(ops);
  assert.equal(fast.ok, expected, `counter checker: ${JSON.stringify(fast)}`);
  assert.equal(fast.method, "counter");
  const slow = checkLinearizable(ops, counterModel());
  assert.equal(slow.ok, expected, `generic checker: ${JSON.stringify(slow)}`);
}

describe("counter checker: known histories", () => {
  it("accepts concurrent adds in any order consistent with their previous values", () => {
    both([add(1, 1, 1, 5, 1), add(2, 1, 2, 6, 0), get(3, 7, 8, 2)], true);
  });
  it("rejects a stale read", () => {
    both([add(1, 1, 1, 2, 0), get(2, 3, 4, 0)], false);
  });
  it("rejects a lost update (two adds see the same previous value)", () => {
    both([add(1, 1, 1, 4, 0), add(2, 1, 2, 3, 0)], false);
  });
  it("rejects a real-time violation", () => {
    // The add that returned 1 finished before the one that returned 0 was invoked.
    both([add(1, 1, 1, 2, 1), add(2, 1, 3, 4, 0)], false);
  });
  it("rejects a gap no operation can fill", () => {
    both([add(1, 1, 1, 2, 0), add(2, 1, 3, 4, 2)], false);
  });
  it("accepts a gap filled by an add of unknown outcome, invoked in time", () => {
    both([add(1, 1, 1, 2, 0), add(3, 1, 2, 0, undefined), add(2, 1, 3, 4, 2)], true);
  });
  it("rejects a gap whose unknown add was invoked too late", () => {
    both([add(1, 1, 1, 2, 0), add(2, 1, 3, 4, 2), add(3, 1, 5, 0, undefined)], false);
  });
  it("accepts a read of a value only an unknown add produced", () => {
    both([add(1, 1, 1, 0, undefined), get(2, 2, 3, 1), get(2, 4, 5, 1)], true);
  });
  it("accepts an unknown add that never took effect", () => {
    both([add(1, 5, 1, 0, undefined), get(2, 2, 3, 0), add(2, 1, 4, 5, 0), get(2, 6, 7, 1)], true);
  });
  it("rejects a value that only a failed add could have produced", () => {
    both([add(1, 1, 1, 2, null), get(2, 3, 4, 1)], false);
    both([add(1, 1, 1, 2, null), add(2, 1, 3, 4, 1)], false);
  });
  it("rejects a read that goes backwards", () => {
    both([add(1, 1, 1, 0, undefined), get(2, 2, 3, 1), get(2, 4, 5, 0)], false);
  });
  it("rejects a read of a value the counter never held (delta 2)", () => {
    both([add(1, 2, 1, 2, 0), get(2, 3, 4, 1)], false);
  });
  it("explains a failure", () => {
    const a = add(1, 1, 1, 2, 0);
    const stale = get(2, 3, 4, 0);
    const r = checkCounter([a, stale]);
    assert.ok(r.ok === false, JSON.stringify(r));
    assert.match(r.message, /real-time order violated/);
    // The stale get must come first, so the add cannot follow it in time.
    assert.deepEqual(r.linearized, [stale]);
    assert.deepEqual(r.unplaced, [a, stale]);
    const gap = checkCounter([a, add(2, 1, 3, 4, 5)]);
    assert.ok(gap.ok === false);
    assert.match(gap.message, /from 1 to 5/);
    assert.deepEqual(gap.linearized, [a]);
  });
  it("rejects an output that is not an integer", () => {
    const odd = { ...get(2, 3, 4, 0), output: "0" as unknown as number };
    const r = checkCounter([add(1, 1, 1, 2, 0), odd]);
    assert.ok(r.ok === false && /not an integer/.test(r.message), JSON.stringify(r));
  });
  it("falls back to the generic search for non-positive deltas", () => {
    const ops = [add(1, -1, 1, 2, 0), add(2, 0, 3, 4, -1), get(1, 5, 6, -1)];
    const r = checkCounter(ops);
    assert.deepEqual([r.ok, r.method], [true, "generic"]);
    const bad = checkCounter([...ops, get(2, 7, 8, 0)]);
    assert.deepEqual([bad.ok, bad.method], [false, "generic"]);
  });
  it("falls back when unknown adds of different deltas must fill a gap", () => {
    const ops = [add(1, 2, 1, 0, undefined), add(2, 3, 1, 0, undefined), get(3, 5, 6, 3)];
    const r = checkCounter(ops);
    assert.deepEqual([r.ok, r.method], [true, "generic"]);
  });
});

describe("counter checker: scale", () => {
  it("checks a 50,000-operation history quickly", () => {
    const rnd = new Prng(12);
    const ops = simulateCounter(rnd, {
      processes: 32,
      ops: 50_000,
      delta: () => 1,
      faultRatio: 0.02,
    });
    const started = performance.now();
    const r = checkCounter(ops);
    const ms = performance.now() - started;
    console.log(`counter checker: ${ops.length} ops in ${ms.toFixed(0)} ms`);
    assert.deepEqual(r, { ok: true, method: "counter" });
    assert.ok(ms < 60_000);
    // And it still catches one corrupted output among them.
    const okOps = ops.filter((o) => o.outcome === "ok" && o.input.f === "get");
    const victim = okOps[okOps.length >> 1]!;
    victim.output = victim.output! + 1_000_000;
    assert.equal(checkCounter(ops).ok, false);
  });
});

describe("counter checker agrees with the generic search", () => {
  it(`on ${SEEDS} seeded small histories`, () => {
    const tally = { fast: 0, linearizable: 0, not: 0 };
    for (let seed = 1; seed <= SEEDS; seed++) {
      const rnd = new Prng(seed);
      const scheme = rnd.int(3);
      let ops = simulateCounter(rnd, {
        processes: 2 + rnd.int(5),
        ops: 3 + rnd.int(12),
        delta: scheme === 0 ? () => 1 : scheme === 1 ? () => 2 : (r) => 1 + r.int(3),
        faultRatio: rnd.next() * 0.3,
        getRatio: rnd.next() * 0.6,
      });
      // Half stay as executed (linearizable); the rest get one or two corruptions.
      const corruptions = rnd.chance(0.5) ? 0 : 1 + rnd.int(2);
      for (let i = 0; i < corruptions; i++) ops = mutate(rnd, ops);
      const fast = checkCounter(ops);
      const slow = checkLinearizable(ops, counterModel());
      assert.notEqual(slow.ok, "unknown", `seed ${seed}: generic search gave up`);
      assert.equal(
        fast.ok,
        slow.ok,
        `seed ${seed}: counter checker says ${fast.ok}, generic says ${slow.ok}\n` +
          JSON.stringify(ops),
      );
      if (fast.method === "counter") tally.fast++;
      if (slow.ok === true) tally.linearizable++;
      else tally.not++;
    }
    console.log(`agreement: ${JSON.stringify(tally)}`);
    // The histories exercise both verdicts, mostly through the fast path.
    assert.ok(
      tally.fast > SEEDS * 0.8 && tally.linearizable > SEEDS * 0.3 && tally.not > SEEDS * 0.1,
    );
  });
});
