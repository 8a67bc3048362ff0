/**
 * The generic checker on register and counter histories: known verdicts, unknown outcomes,
 * explanations, and bounded time on hundreds of concurrent operations.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Prng } from "../../src/util/prng.ts";
import type { Operation } from "./history.ts";
import { checkLinearizable, type Model } from "./linearizability.ts";
import { checkCounter, counterModel } from "./counter_checker.ts";
import { mutate, simulateCounter } from "./_counter_sim.ts";

const SEEDS = Number(globalThis.process?.env?.LINZ_SEEDS ?? "") || 2000;

/** A register: `{ w: v }` writes v (output ignored), `{ r: true }` reads. */
type RegIn = { w: number } | { r: true };
const register: Model<number, RegIn, number> = {
  init: () => 0,
  step: (s, input, output) =>
    "w" in input ? [true, input.w] : [output === undefined || output === s, s],
  hash: (s) => String(s),
  readOnly: (input) => "r" in input,
};
/** The same register without the read-only hint (no forced moves in the search). */
const { readOnly: _, ...plainRegister } = register;

let nextId = 0;
function w(p: number, v: number, call: number, ret: number | null): Operation<RegIn, number> {
  return {
    id: nextId++,
    process: p,
    input: { w: v },
    call,
    return: ret,
    outcome: ret === null ? "info" : "ok",
    output: 0,
  };
}
function r(p: number, v: number, call: number, ret: number): Operation<RegIn, number> {
  return {
    id: nextId++,
    process: p,
    input: { r: true },
    call,
    return: ret,
    outcome: "ok",
    output: v,
  };
}

describe("generic checker: register", () => {
  it("accepts an empty history and a sequential one", () => {
    assert.deepEqual(checkLinearizable([], register), { ok: true });
    assert.deepEqual(checkLinearizable([w(1, 1, 1, 2), r(1, 1, 3, 4)], register), { ok: true });
  });
  it("accepts a read concurrent with a write seeing either value", () => {
    assert.equal(checkLinearizable([w(1, 1, 1, 4), r(2, 0, 2, 3)], register).ok, true);
    assert.equal(checkLinearizable([w(1, 1, 1, 4), r(2, 1, 2, 3)], register).ok, true);
  });
  it("rejects a stale read", () => {
    const res = checkLinearizable([w(1, 1, 1, 2), r(2, 0, 3, 4)], register);
    assert.equal(res.ok, false);
    assert.ok(res.ok === false && res.unplaced[0]?.input && "r" in res.unplaced[0].input);
    assert.ok(res.ok === false && /Not linearizable/.test(res.message));
  });
  it("rejects two reads that disagree on the order of concurrent writes", () => {
    // Writes of 1 and 2 overlap; p3 sees 1 then 2, p4 sees 2 then 1, all after both writes.
    const ops = [
      w(1, 1, 1, 10),
      w(2, 2, 1, 10),
      r(3, 1, 2, 3),
      r(3, 2, 4, 5),
      r(4, 2, 2, 3),
      r(4, 1, 4, 5),
    ];
    assert.equal(checkLinearizable(ops, register).ok, false);
    // Without p4's second read it is fine.
    assert.equal(checkLinearizable(ops.slice(0, 5), register).ok, true);
  });
  it("accepts a read explained by a write of unknown outcome, and one ignoring it", () => {
    assert.equal(checkLinearizable([w(1, 7, 1, null), r(2, 7, 5, 6)], register).ok, true);
    assert.equal(checkLinearizable([w(1, 7, 1, null), r(2, 0, 5, 6)], register).ok, true);
  });
  it("rejects a read of a write of unknown outcome invoked after the read returned", () => {
    assert.equal(checkLinearizable([r(2, 7, 1, 2), w(1, 7, 3, null)], register).ok, false);
  });
  it("ignores failed operations", () => {
    const failed: Operation<RegIn, number> = { ...w(1, 9, 1, 2), outcome: "fail" };
    assert.equal(checkLinearizable([failed, r(2, 0, 3, 4)], register).ok, true);
    assert.equal(checkLinearizable([failed, r(2, 9, 3, 4)], register).ok, false);
  });
  it("rejects a history with a return before its call", () => {
    assert.throws(() => checkLinearizable([w(1, 1, 5, 4)], register), /returns before its call/);
  });
});

const m = counterModel();

describe("generic checker: counter", () => {
  it("rejects a lost update and accepts its repair", () => {
    const a = {
      id: 0,
      process: 1,
      input: { f: "add", delta: 1 },
      call: 1,
      return: 4,
      outcome: "ok",
      output: 0,
    } as const;
    const b = { ...a, id: 1, process: 2, call: 2, return: 3 };
    assert.equal(checkLinearizable([a, b], m).ok, false);
    assert.equal(checkLinearizable([a, { ...b, output: 1 }], m).ok, true);
  });
  it("checks hundreds of concurrent operations with unknown outcomes", () => {
    const ops = simulateCounter(new Prng(5), {
      processes: 20,
      ops: 400,
      delta: () => 1,
      faultRatio: 0.05,
    });
    const started = performance.now();
    const res = checkLinearizable(ops, m, { timeoutMs: 30_000 });
    console.log(
      `generic checker: ${ops.length} ops, 20 processes: ${res.ok} in ${
        (performance.now() - started).toFixed(0)
      } ms`,
    );
    assert.equal(res.ok, true);
  });
  it("proves thousands of operations, and stays within budget refuting them", () => {
    const ops = simulateCounter(new Prng(5), {
      processes: 100,
      ops: 2000,
      delta: () => 1,
      faultRatio: 0.05,
    });
    let started = performance.now();
    const res = checkLinearizable(ops, m);
    console.log(
      `generic checker: ${ops.length} ops, 100 processes: ${res.ok} in ${
        (performance.now() - started).toFixed(0)
      } ms`,
    );
    assert.equal(res.ok, true);
    // One stale read in the middle: refuting needs an exhaustive search, which may give up.
    const gets = ops.filter((o) => o.outcome === "ok" && o.input.f === "get" && o.output! > 500);
    const victim = gets[gets.length >> 1]!;
    victim.output = victim.output! - 400;
    assert.equal(checkCounter(ops).ok, false);
    started = performance.now();
    const bad = checkLinearizable(ops, m, { maxSteps: 300_000, timeoutMs: 10_000 });
    const ms = performance.now() - started;
    console.log(`generic checker: the same with a stale read: ${bad.ok} in ${ms.toFixed(0)} ms`);
    assert.notEqual(bad.ok, true);
    assert.ok(ms < 60_000);
  });
  it("gives up with unknown when the budget runs out", () => {
    // Many concurrent blind writes and one impossible read: the search must explore them all.
    const ops: Operation<RegIn, number>[] = [];
    for (let i = 0; i < 60; i++) ops.push(w(i, i + 1, 1, 100));
    ops.push(r(99, 1000, 101, 102));
    const res = checkLinearizable(ops, register, { maxSteps: 10_000 });
    assert.equal(res.ok, "unknown");
    assert.ok(res.ok === "unknown" && /Gave up after 10000 steps/.test(res.message));
  });
});

/** Exhaustive oracle: tries every order of the ok operations and any subset of the info ones. */
function bruteForce<S, I, O>(ops: Operation<I, O>[], model: Model<S, I, O>): boolean {
  const live = ops.filter((o) => o.outcome !== "fail");
  const used = live.map(() => false);
  const go = (state: S, okLeft: number): boolean => {
    if (okLeft === 0) return true;
    for (let i = 0; i < live.length; i++) {
      if (used[i]) continue;
      const op = live[i]!;
      // Every remaining op that returned before this call must come first.
      if (live.some((o, j) => !used[j] && o.return !== null && o.return < op.call)) continue;
      const [fits, next] = model.step(state, op.input, op.outcome === "ok" ? op.output : undefined);
      if (!fits) continue;
      used[i] = true;
      const found = go(next, okLeft - (op.outcome === "ok" ? 1 : 0));
      used[i] = false;
      if (found) return true;
    }
    return false;
  };
  return go(model.init(), live.filter((o) => o.outcome === "ok").length);
}

describe("generic checker agrees with an exhaustive search", () => {
  it("on seeded tiny register and counter histories", () => {
    const seeds = SEEDS;
    let disagreements = 0;
    const verdicts = { true: 0, false: 0 };
    for (let seed = 1; seed <= seeds; seed++) {
      const rnd = new Prng(seed);
      // Counter histories from the simulator (maybe corrupted).
      let ops = simulateCounter(rnd, {
        processes: 2 + rnd.int(3),
        ops: 2 + rnd.int(6),
        delta: (r) => 1 + r.int(2),
        faultRatio: 0.2,
      });
      if (rnd.chance(0.5)) ops = mutate(rnd, ops);
      const c = checkLinearizable(ops, m);
      const { readOnly: _, ...plainCounter } = m;
      const expectedCounter = bruteForce(ops, m);
      assert.equal(c.ok, expectedCounter, `seed ${seed} (counter): ${JSON.stringify(ops)}`);
      assert.equal(
        checkLinearizable(ops, plainCounter).ok,
        expectedCounter,
        `seed ${seed} (plain counter)`,
      );
      // Register histories with random intervals, values and outcomes.
      const reg: Operation<RegIn, number>[] = [];
      for (let i = 0; i < 2 + rnd.int(5); i++) {
        const call = rnd.int(10);
        const ret = call + rnd.int(6);
        const outcome = rnd.chance(0.15) ? "info" : rnd.chance(0.1) ? "fail" : "ok";
        const input: RegIn = rnd.chance(0.5) ? { w: 1 + rnd.int(3) } : { r: true };
        const op: Operation<RegIn, number> = {
          id: i,
          process: i,
          input,
          call,
          return: outcome === "info" ? null : ret,
          outcome,
        };
        if (outcome === "ok") op.output = rnd.int(4);
        reg.push(op);
      }
      const res = checkLinearizable(reg, register);
      const plain = checkLinearizable(reg, plainRegister);
      const expected = bruteForce(reg, register);
      if (res.ok !== expected || plain.ok !== expected) disagreements++;
      assert.equal(res.ok, expected, `seed ${seed} (register): ${JSON.stringify(reg)}`);
      assert.equal(plain.ok, expected, `seed ${seed} (plain register): ${JSON.stringify(reg)}`);
      verdicts[String(expected) as "true" | "false"]++;
    }
    console.log(
      `exhaustive agreement on ${seeds} seeds, register verdicts ${JSON.stringify(verdicts)}`,
    );
    assert.equal(disagreements, 0);
    assert.ok(verdicts.true > seeds / 10 && verdicts.false > seeds / 10);
  });
});
