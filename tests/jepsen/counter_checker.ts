/**
 * An exact, O(n log n) linearizability checker for the counter of the examples:
 * `fetch_add(delta)` returns the value BEFORE the add, `get()` returns the value.
 *
 * ## Why it is exact (every delta a positive integer)
 *
 * Let `init` be the initial value. `fail` operations did not happen and `info` gets do nothing
 * observable, so both are dropped. In any legal sequential order of the remaining operations:
 *
 * 1. The counter only grows, strictly, at every add. So two adds never see the same previous
 *    value, and the `ok` adds, sorted by returned previous value `p`, are in the only order they
 *    can have. Between two consecutive ones, `a` then `b`, the value goes from `p_a + d_a` to
 *    `p_b`; the gap `p_b - (p_a + d_a)` must be exactly covered by adds whose outcome is unknown
 *    (`info`), since no other operation changes the value. Likewise from `init` to the first `p`,
 *    and from the last value up to the largest value a get returned.
 * 2. Covering a gap with `info` adds of arbitrary deltas is subset-sum. The checker is exact
 *    when the `info` adds that are needed all have the same delta `d` (typically every delta is
 *    1): then a gap `g` needs exactly `g / d` of them (none if `g = 0`), at fixed places in the
 *    order, producing fixed values. The resulting chain of adds and the value held after each one
 *    are therefore unique. When no gap needs covering, the `info` adds are irrelevant (placing
 *    one before the last observed value would break the chain; after it, it is unobservable).
 * 3. A get that returned `v` must come after the add producing `v` (or before the first add, if
 *    `v = init`) and before the next add; there is no other place, and a get of a value the
 *    chain never holds is impossible.
 * 4. A fixed sequence is a linearization iff it respects real time, iff for every operation the
 *    largest call time among it and everything before it is at most its return (if so, take each
 *    operation's linearization point to be that running maximum: it lies within the operation's
 *    interval and never decreases; if not, some operation ordered before it was invoked after it
 *    returned, a real-time inversion). `info` adds have no return, so no bound.
 * 5. What is left free: the order of the gets reading the same value (order them by call time,
 *    which minimises every running maximum), and WHICH `info` adds fill the slots of step 2 (take
 *    the ones with the smallest call times, in call order: by an exchange argument this minimises
 *    the running maximum at every position, the only quantity the test of step 4 depends on).
 *    Since both choices minimise the running maximum at every position, if they fail, every
 *    choice fails.
 *
 * Otherwise (a delta that is zero, negative or not an integer, or needed `info` adds with
 * different deltas) it falls back to the generic search of `linearizability.ts` with
 * {@link counterModel}, with its budget: fine for small histories, `ok: "unknown"` for large
 * ones. So fault tests should use one constant delta (e.g. 1) for every add.
 *
 * "Every acknowledged increment is present at the end" needs no separate check: a final get
 * invoked after every other operation returned must, to be linearizable, read at least the sum
 * of the acknowledged deltas (plus those of unknown adds that took effect).
 *
 * @example Recording clients and checking (in a fault test, the handles are completed by the
 * HTTP responses: `ok` with the body, `fail` on a definite refusal, `info` on a timeout)
 * ```ts
 * import assert from "node:assert/strict";
 * import { History } from "./history.ts";
 * import { checkCounter, type CounterInput } from "./counter_checker.ts";
 *
 * const h = new History<CounterInput, number>();
 * const a = h.invoke(1, { f: "add", delta: 1 });
 * const b = h.invoke(2, { f: "add", delta: 1 });
 * a.ok(0);
 * b.info(); // timed out: it took effect (the get below saw it) or not
 * h.invoke(1, { f: "get" }).ok(2);
 * const verdict = checkCounter(h.operations());
 * assert.equal(verdict.ok, true);
 * // On failure: print verdict.message and keep the history with `await h.save(path)`.
 * ```
 *
 * @module
 */

import type { Operation } from "./history.ts";
import {
  checkLinearizable,
  type CheckOptions,
  type CheckResult,
  describeOp,
  type Model,
} from "./linearizability.ts";

/** An operation on the counter: `fetch_add(delta)` or `get()`. */
export type CounterInput = { f: "add"; delta: number } | { f: "get" };

/** A counter operation; `output` is the previous value of an add, or the value of a get. */
export type CounterOp = Operation<CounterInput, number>;

/** Options of {@link checkCounter}. */
export interface CounterCheckOptions {
  /** The counter's value before the history. Default 0. */
  init?: number;
  /** Budget of the generic search when the fast checker does not apply. */
  fallback?: CheckOptions;
}

/** The verdict of {@link checkCounter}, with the method that produced it. */
export type CounterCheckResult = CheckResult<CounterInput, number> & {
  /** `counter`: the exact fast checker; `generic`: the fallback search. */
  method: "counter" | "generic";
};

/**
 * The counter's sequential specification, for {@link checkLinearizable}.
 *
 * @param init The initial value (default 0).
 * @returns The model.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { counterModel } from "./counter_checker.ts";
 *
 * const m = counterModel();
 * assert.deepEqual(m.step(m.init(), { f: "add", delta: 2 }, 0), [true, 2]);
 * assert.deepEqual(m.step(2, { f: "get" }, 1), [false, 2]);
 * ```
 */
export function counterModel(init = 0): Model<number, CounterInput, number> {
  return {
    init: () => init,
    step: (s, input, output) => {
      const fits = output === undefined || output === s;
      return [fits, input.f === "add" ? s + input.delta : s];
    },
    hash: (s) => String(s),
    readOnly: (input) => input.f === "get",
  };
}

interface Slot {
  op: CounterOp;
  /** Value after it. */
  value: number;
}

/**
 * Checks that a counter history is linearizable; exact and O(n log n) for positive integer
 * deltas (see the module comment), else the generic search.
 *
 * @param ops The operations (any order).
 * @param options Initial value and fallback budget.
 * @returns The verdict and the method used.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { History } from "./history.ts";
 * import { checkCounter, type CounterInput } from "./counter_checker.ts";
 *
 * const h = new History<CounterInput, number>();
 * const a = h.invoke(1, { f: "add", delta: 1 });
 * const b = h.invoke(2, { f: "add", delta: 1 });
 * b.ok(0);
 * a.ok(1);
 * h.invoke(3, { f: "get" }).ok(2);
 * assert.deepEqual(checkCounter(h.operations()), { ok: true, method: "counter" });
 *
 * h.invoke(3, { f: "get" }).ok(1); // stale
 * assert.equal(checkCounter(h.operations()).ok, false);
 * ```
 */
export function checkCounter(
  ops: readonly CounterOp[],
  options: CounterCheckOptions = {},
): CounterCheckResult {
  const init = options.init ?? 0;
  const okAdds: CounterOp[] = [];
  const infoAdds: CounterOp[] = [];
  const gets: CounterOp[] = [];
  let positive = true;
  for (const op of ops) {
    if (op.outcome === "fail") continue;
    if (op.outcome === "ok" && !Number.isSafeInteger(op.output)) {
      return {
        ok: false,
        message: `Not linearizable: the counter returned ${
          JSON.stringify(op.output)
        }, not an integer: ${describeOp(op)}`,
        linearized: [],
        unplaced: [op],
        method: "counter",
      };
    }
    if (op.input.f === "add") {
      const d = op.input.delta;
      if (!Number.isSafeInteger(d) || d <= 0) positive = false;
      (op.outcome === "ok" ? okAdds : infoAdds).push(op);
    } else if (op.outcome === "ok") {
      gets.push(op);
    }
  }
  const generic = (): CounterCheckResult => ({
    ...checkLinearizable(ops, counterModel(init), options.fallback),
    method: "generic",
  });
  if (!positive) return generic();
  /** The forced order as far as it was checked, once the chain is built (for explanations). */
  const order: CounterOp[] = [];
  let checking = false;
  const bad = (message: string, culprits: CounterOp[]): CounterCheckResult => ({
    ok: false,
    message: `Not linearizable: ${message}: ${culprits.map(describeOp).join("; ")}`,
    linearized: checking ? order : chain.map((s) => s.op),
    unplaced: culprits,
    method: "counter",
  });

  // Step 1-2: the chain of adds.
  okAdds.sort((a, b) => a.output! - b.output! || a.id - b.id);
  infoAdds.sort((a, b) => a.call - b.call || a.id - b.id);
  let maxGet = -Infinity;
  for (const g of gets) maxGet = Math.max(maxGet, g.output!);
  const d0 = infoAdds[0]?.input.f === "add" ? infoAdds[0].input.delta : 0;
  const sameInfoDelta = infoAdds.every((o) => o.input.f === "add" && o.input.delta === d0);
  const chain: Slot[] = [];
  let nextInfo = 0;
  let value = init;
  /** Fills [value, target) with info adds; false if impossible (or fallback needed). */
  const fill = (target: number, exact: boolean, before: CounterOp | undefined): string | null => {
    if (target <= value) return null;
    if (!sameInfoDelta) return "fallback";
    const gap = target - value;
    if (exact && gap % d0 !== 0) {
      return `the value goes from ${value} to ${target}, which no set of unknown-outcome adds of ` +
        `delta ${d0} can cover`;
    }
    const need = Math.floor(gap / d0);
    if (nextInfo + need > infoAdds.length) {
      return `the value must go from ${value} to ${target}${
        before ? "" : " (read by a get)"
      }, but only ${infoAdds.length - nextInfo} unknown-outcome add(s) are left to do it`;
    }
    for (let k = 0; k < need; k++) {
      value += d0;
      chain.push({ op: infoAdds[nextInfo++]!, value });
    }
    return null;
  };
  for (let i = 0; i < okAdds.length; i++) {
    const a = okAdds[i]!;
    const p = a.output!;
    if (p < value) {
      const prev = chain[chain.length - 1];
      return bad(
        p < init
          ? `fetch_add returned ${p}, below the initial value ${init}`
          : `fetch_add returned ${p}, a value already passed (the counter was ${value} after the ` +
            `previous add)`,
        prev ? [a, prev.op] : [a],
      );
    }
    const err = fill(p, true, a);
    if (err === "fallback") return generic();
    if (err !== null) return bad(err, [a]);
    value = p + (a.input as { delta: number }).delta;
    chain.push({ op: a, value });
  }
  if (maxGet > value) {
    const err = fill(maxGet, false, undefined);
    if (err === "fallback") return generic();
    if (err !== null) return bad(err, gets.filter((g) => g.output! > value));
  }

  // Step 3: gets by the value they read, each group ordered by call time.
  const index = new Map<number, number>([[init, -1]]);
  chain.forEach((s, i) => index.set(s.value, i));
  const groups = new Map<number, CounterOp[]>();
  for (const g of gets) {
    const at = index.get(g.output!);
    if (at === undefined) {
      return bad(`get returned ${g.output}, a value the counter never held`, [g]);
    }
    const list = groups.get(at);
    if (list) list.push(g);
    else groups.set(at, [g]);
  }

  // Step 4-5: running maximum of call times against each return.
  checking = true;
  let t = -Infinity;
  let setter: CounterOp | undefined;
  const visit = (op: CounterOp): CounterCheckResult | null => {
    if (op.call > t) {
      t = op.call;
      setter = op;
    }
    if (op.return !== null && op.return < t) {
      return bad(
        `real-time order violated: the only possible order puts ${describeOp(op)} after ${
          describeOp(setter!)
        }, which was invoked after it returned`,
        [op, setter!],
      );
    }
    order.push(op);
    return null;
  };
  for (let i = -1; i < chain.length; i++) {
    if (i >= 0) {
      const r = visit(chain[i]!.op);
      if (r) return r;
    }
    const group = groups.get(i);
    if (group) {
      group.sort((a, b) => a.call - b.call || a.id - b.id);
      for (const g of group) {
        const r = visit(g);
        if (r) return r;
      }
    }
  }
  return { ok: true, method: "counter" };
}
