/**
 * A generic linearizability checker: the Wing & Gong search with Lowe's memoisation (as in
 * Knossos and Porcupine).
 *
 * The calls and returns of the history form a list in time order. The search repeatedly takes a
 * call at the front of the list (an operation that may be linearized now because every operation
 * that returned before its call is already linearized), applies it to the model, and lifts it out
 * of the list; when it meets a return instead, the operation returning there cannot be placed
 * after what was chosen, so it backtracks. A cache of (set of linearized operations, model state)
 * prunes configurations already explored, which makes the search polynomial on most real
 * histories (it is exponential in the worst case, so it has a budget).
 *
 * Outcomes: `fail` operations are dropped (they did not happen); `info` operations have no return,
 * so they may be linearized at any point after their call, or never (the search succeeds once
 * every `ok` operation is linearized); the model's `step` sees `undefined` as their output.
 *
 * Exact reductions on top of the plain search: known-outcome operations are tried before unknown
 * ones; an unknown-outcome operation that would leave the state unchanged is not linearized
 * there (it would explain nothing); of several called unknown-outcome operations with equal
 * inputs only one is tried (they are interchangeable); and with {@link Model.readOnly}, a read
 * that fits the current state is placed at once without branching. Linearizable histories of
 * thousands of operations check in milliseconds; refuting a large non-linearizable one can need
 * the whole search, hence the budget (the counter has an exact fast checker for that).
 *
 * @module
 */

import type { Operation } from "./history.ts";

/**
 * A sequential specification.
 *
 * @example
 * ```ts
 * import type { Model } from "./linearizability.ts";
 *
 * // A register: input null is a read, a number is a write (output ignored).
 * const register: Model<number, number | null, number> = {
 *   init: () => 0,
 *   step: (s, input, output) =>
 *     input === null ? [output === undefined || output === s, s] : [true, input],
 *   hash: (s) => String(s),
 *   readOnly: (input) => input === null,
 * };
 * ```
 */
export interface Model<S, I, O> {
  /** The initial state. */
  init(): S;
  /**
   * Applies one operation: whether `output` is what the operation returns in `state` (always
   * true when `output` is `undefined`, i.e. unknown), and the state after it. Must not mutate
   * `state`.
   */
  step(state: S, input: I, output: O | undefined): [boolean, S];
  /** A string key of a state; equal states must have equal keys. Default: `JSON.stringify`. */
  hash?(state: S): string;
  /** State equality among states with the same key. Default: equal keys mean equal states. */
  equal?(a: S, b: S): boolean;
  /**
   * True if the operation never changes the state, in any state (a read). Optional; lets the
   * search place such operations without branching, which matters on large histories.
   */
  readOnly?(input: I): boolean;
}

/** Options of {@link checkLinearizable}. */
export interface CheckOptions {
  /**
   * Give up (`ok: "unknown"`) after this many search steps. Default 1,000,000. Each step may
   * cache one configuration of about `operations / 8` bytes, which bounds the memory used.
   */
  maxSteps?: number;
  /** Give up (`ok: "unknown"`) after this many milliseconds. Default 20,000. */
  timeoutMs?: number;
}

/** The verdict of a checker. */
export type CheckResult<I = unknown, O = unknown> =
  | { ok: true }
  | {
    ok: false;
    /** What went wrong, in words. */
    message: string;
    /** The longest sequence of operations the search could linearize, in order. */
    linearized: Operation<I, O>[];
    /** Operations that could not be placed after it (the one whose return was reached first). */
    unplaced: Operation<I, O>[];
  }
  | { ok: "unknown"; message: string };

interface Entry {
  op: number;
  isCall: boolean;
  time: number;
  match: Entry | null;
  prev: Entry | null;
  next: Entry | null;
}

/**
 * Describes an operation in one line, for failure messages.
 *
 * @param op The operation.
 * @returns E.g. `#4 p2 {"f":"get"} -> 3 [10, 12]`.
 */
export function describeOp(op: Operation): string {
  const out = op.outcome === "ok" ? ` -> ${JSON.stringify(op.output)}` : ` (${op.outcome})`;
  return `#${op.id} p${op.process} ${JSON.stringify(op.input)}${out} [${op.call}, ${
    op.return ?? "?"
  }]`;
}

/**
 * Checks that a history is linearizable with respect to a model.
 *
 * @param ops The operations (any order).
 * @param model The sequential specification.
 * @param options Search budget.
 * @returns `{ ok: true }`, `{ ok: false, ... }` with an explanation, or `{ ok: "unknown" }` when
 *   the budget ran out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { History } from "./history.ts";
 * import { checkLinearizable, type Model } from "./linearizability.ts";
 *
 * const register: Model<number, number | null, number> = {
 *   init: () => 0,
 *   step: (s, input, output) =>
 *     input === null ? [output === undefined || output === s, s] : [true, input],
 * };
 * const h = new History<number | null, number>();
 * h.invoke(1, 5).ok(0);
 * h.invoke(2, null).ok(0); // stale read: the write of 5 had returned
 * const r = checkLinearizable(h.operations(), register);
 * assert.equal(r.ok, false);
 * ```
 */
export function checkLinearizable<S, I, O>(
  ops: readonly Operation<I, O>[],
  model: Model<S, I, O>,
  options: CheckOptions = {},
): CheckResult<I, O> {
  const maxSteps = options.maxSteps ?? 1_000_000;
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  const hash = model.hash ?? ((s: S) => JSON.stringify(s));
  const live = ops.filter((o) => o.outcome !== "fail");
  const n = live.length;

  // The event list: calls before returns at equal times (such operations overlap).
  const events: Entry[] = [];
  for (let i = 0; i < n; i++) {
    const op = live[i]!;
    const call: Entry = { op: i, isCall: true, time: op.call, match: null, prev: null, next: null };
    events.push(call);
    if (op.outcome === "ok") {
      if (op.return === null || op.return < op.call) {
        throw new Error(`Cannot check history: operation ${op.id} returns before its call`);
      }
      const ret: Entry = {
        op: i,
        isCall: false,
        time: op.return,
        match: null,
        prev: null,
        next: null,
      };
      call.match = ret;
      events.push(ret);
    }
  }
  events.sort((a, b) =>
    a.time - b.time || (a.isCall === b.isCall ? 0 : a.isCall ? -1 : 1) || a.op - b.op
  );
  const head: Entry = {
    op: -1,
    isCall: false,
    time: -Infinity,
    match: null,
    prev: null,
    next: null,
  };
  let last = head;
  for (const e of events) {
    last.next = e;
    e.prev = last;
    last = e;
  }

  const lift = (e: Entry): void => {
    e.prev!.next = e.next;
    if (e.next) e.next.prev = e.prev;
    const m = e.match;
    if (m) {
      m.prev!.next = m.next;
      if (m.next) m.next.prev = m.prev;
    }
  };
  const unlift = (e: Entry): void => {
    const m = e.match;
    if (m) {
      m.prev!.next = m;
      if (m.next) m.next.prev = m;
    }
    e.prev!.next = e;
    if (e.next) e.next.prev = e;
  };

  const bits = new Uint32Array(Math.ceil(n / 32) || 1);
  const cache = new Map<string, S[]>();
  /** The bitset as a compact string: two UTF-16 code units per 32-bit word. */
  const bitsKey = (): string => {
    let out = "";
    for (let i = 0; i < bits.length; i += 4096) {
      const codes: number[] = [];
      for (const w of bits.subarray(i, i + 4096)) codes.push(w & 0xffff, w >>> 16);
      out += String.fromCharCode(...codes);
    }
    return out;
  };
  /** Adds (bits, state) to the cache; false if it was there. */
  const remember = (state: S): boolean => {
    const key = bitsKey() + hash(state);
    const seen = cache.get(key);
    if (seen === undefined) {
      cache.set(key, [state]);
      return true;
    }
    if (!model.equal) return false;
    if (seen.some((s) => model.equal!(s, state))) return false;
    seen.push(state);
    return true;
  };

  const same = (a: S, b: S): boolean =>
    hash(a) === hash(b) && (model.equal === undefined || model.equal(a, b));

  const inputKeys = live.map((o) => o.outcome === "info" ? JSON.stringify(o.input) : "");
  let okLeft = live.filter((o) => o.outcome === "ok").length;
  let state = model.init();
  /**
   * The operations that may come next: the calls before the first return in the list (and that
   * return, which blocks the search if none of them fits). Operations with a known outcome are
   * tried first: an unknown one is only needed when they fail, and trying it first would
   * explore every subset of the unknown ones.
   */
  const frontier = (): { cands: Entry[]; blocker: number } => {
    const oks: Entry[] = [];
    const infos: Entry[] = [];
    const infoInputs = new Set<string>();
    let e = head.next;
    while (e !== null && e.isCall) {
      if (live[e.op]!.outcome === "ok") {
        oks.push(e);
      } else if (!infoInputs.has(inputKeys[e.op]!)) {
        // Two called unknown-outcome operations with equal inputs are interchangeable (neither
        // has a return or an output), so only the first is tried.
        infoInputs.add(inputKeys[e.op]!);
        infos.push(e);
      }
      e = e.next;
    }
    // While an ok operation is unlinearized, its return lies ahead in the list.
    const blocker = e?.op ?? -1;
    // A known-outcome read that fits now can go first in any linearization from here: it is
    // called, every remaining operation returns after its call, and since it never changes the
    // state, the others see the same states. So it is the only choice worth trying.
    if (model.readOnly) {
      for (const c of oks) {
        const op = live[c.op]!;
        if (model.readOnly(op.input) && model.step(state, op.input, op.output)[0]) {
          return { cands: [c], blocker };
        }
      }
    }
    return { cands: oks.concat(infos), blocker };
  };
  const stack: { entry: Entry; state: S; cands: Entry[]; idx: number; blocker: number }[] = [];
  let best: number[] = [];
  let bestBlocker = -1;
  let steps = 0;
  let { cands, blocker } = frontier();
  let idx = 0;

  while (okLeft > 0) {
    if (++steps > maxSteps || ((steps & 1023) === 0 && Date.now() > deadline)) {
      return {
        ok: "unknown",
        message: `Gave up after ${steps - 1} steps (${cache.size} cached configurations, ` +
          `${n} operations)`,
      };
    }
    if (idx < cands.length) {
      const e = cands[idx++]!;
      const op = live[e.op]!;
      const [fits, next] = model.step(
        state,
        op.input,
        op.outcome === "ok" ? op.output : undefined,
      );
      if (!fits) continue;
      // An unknown-outcome operation that leaves the state as it is (a read) is never needed:
      // it has no output to explain and removing it from a linearization keeps it valid.
      if (op.outcome === "info" && same(state, next)) continue;
      bits[e.op >>> 5]! |= 1 << (e.op & 31);
      if (!remember(next)) {
        bits[e.op >>> 5]! &= ~(1 << (e.op & 31));
        continue;
      }
      stack.push({ entry: e, state, cands, idx, blocker });
      state = next;
      lift(e);
      if (op.outcome === "ok") okLeft--;
      if (okLeft === 0) break;
      ({ cands, blocker } = frontier());
      idx = 0;
    } else {
      if (stack.length > best.length || bestBlocker < 0) {
        best = stack.map((s) => s.entry.op);
        bestBlocker = blocker;
      }
      const top = stack.pop();
      if (top === undefined) break;
      state = top.state;
      const i = top.entry.op;
      bits[i >>> 5]! &= ~(1 << (i & 31));
      unlift(top.entry);
      if (live[i]!.outcome === "ok") okLeft++;
      ({ cands, idx, blocker } = top);
    }
  }
  if (okLeft === 0) return { ok: true };

  const linearized = best.map((i) => live[i]!);
  const blocked = live[bestBlocker]!;
  const placed = new Set(best);
  // What was pending at the blocker's return: the operations that could have come next.
  const unplaced = live.filter((o, i) =>
    !placed.has(i) && o.call <= blocked.return! && i !== bestBlocker &&
    (o.outcome === "ok" || o.outcome === "info")
  );
  unplaced.unshift(blocked);
  return {
    ok: false,
    message: `Not linearizable: after the longest linearizable sequence of ${linearized.length} ` +
      `operation(s), ${describeOp(blocked)} cannot be placed (its return is reached and no ` +
      `order of the pending operations gives its output). Last linearized: ${
        linearized.slice(-5).map(describeOp).join("; ") || "none"
      }`,
    linearized,
    unplaced: unplaced.slice(0, 20),
  };
}
