/**
 * Seeded generator of counter histories for the checker tests: a simulated concurrent execution
 * (so the history is linearizable), and mutations of it (which usually are not).
 */

import type { Prng } from "../../src/util/prng.ts";
import type { CounterInput, CounterOp } from "./counter_checker.ts";

/** Options of {@link simulateCounter}. */
export interface SimOptions {
  processes: number;
  ops: number;
  /** Delta of each add. */
  delta: (rnd: Prng) => number;
  /** Probability that an operation is a get. */
  getRatio?: number;
  /** Probability that an operation ends as info (unknown); another as much as fail. */
  faultRatio?: number;
}

/**
 * Runs clients against one counter with random interleaving: every operation takes effect at a
 * random instant inside its interval (or, for info ones, possibly later or never; for failed
 * ones, never).
 */
export function simulateCounter(rnd: Prng, o: SimOptions): CounterOp[] {
  const getRatio = o.getRatio ?? 0.3;
  const faultRatio = o.faultRatio ?? 0.1;
  let value = 0;
  let time = 0;
  let started = 0;
  const ops: CounterOp[] = [];
  type InFlight = { op: CounterOp; applied: boolean; result: number };
  const busy: (InFlight | null)[] = Array.from({ length: o.processes }, () => null);
  const late: CounterOp[] = []; // info adds that may still take effect
  const apply = (input: CounterInput): number => {
    const before = value;
    if (input.f === "add") value += input.delta;
    return before;
  };
  while (started < o.ops || busy.some((b) => b !== null)) {
    time++;
    if (late.length > 0 && rnd.chance(0.1)) {
      const i = rnd.int(late.length);
      const op = late[i]!;
      late.splice(i, 1);
      if (rnd.chance(0.7)) apply(op.input);
    }
    const p = rnd.int(o.processes);
    const b = busy[p];
    if (b === null || b === undefined) {
      if (started >= o.ops) continue;
      const input: CounterInput = rnd.chance(getRatio)
        ? { f: "get" }
        : { f: "add", delta: o.delta(rnd) };
      const op: CounterOp = {
        id: ops.length,
        process: p,
        input,
        call: time,
        return: null,
        outcome: "info",
      };
      ops.push(op);
      started++;
      busy[p] = { op, applied: false, result: 0 };
    } else if (!b.applied && rnd.chance(0.6)) {
      b.applied = true;
      b.result = apply(b.op.input);
    } else {
      const r = rnd.next();
      if (b.applied) {
        if (r < faultRatio) {
          b.op.outcome = "info";
        } else {
          b.op.outcome = "ok";
          b.op.return = time;
          b.op.output = b.result;
        }
      } else {
        if (r < faultRatio) {
          b.op.outcome = "info";
          if (b.op.input.f === "add") late.push(b.op);
        } else if (r < 2 * faultRatio) {
          b.op.outcome = "fail";
          b.op.return = time;
        } else {
          continue; // an ok operation must take effect before it returns
        }
      }
      busy[p] = null;
    }
  }
  return ops;
}

/** A copy of `ops` with one random corruption (output, outcome or timing). */
export function mutate(rnd: Prng, ops: CounterOp[]): CounterOp[] {
  const out = ops.map((op) => ({ ...op }));
  const oks = out.filter((op) => op.outcome === "ok");
  const pick = <T>(a: T[]): T | undefined => a.length === 0 ? undefined : a[rnd.int(a.length)];
  switch (rnd.int(6)) {
    case 0: { // change an output
      const op = pick(oks);
      if (op) op.output = Math.max(0, op.output! + (rnd.chance(0.5) ? 1 : -1) * (1 + rnd.int(2)));
      break;
    }
    case 1: { // swap two outputs
      const a = pick(oks);
      const b = pick(oks);
      if (a && b) [a.output, b.output] = [b.output!, a.output!];
      break;
    }
    case 2: { // an operation that happened is said to have failed
      const op = pick(out.filter((o) => o.outcome !== "fail" && o.input.f === "add"));
      if (op) {
        op.outcome = "fail";
        op.return = op.return ?? op.call + 1;
        delete op.output;
      }
      break;
    }
    case 3: { // shrink an interval to its call
      const op = pick(oks);
      if (op) op.return = op.call;
      break;
    }
    case 4: { // move an operation later: call after some other op's return
      const op = pick(oks);
      const other = pick(oks);
      if (op && other && other.return! >= op.call) {
        const len = op.return! - op.call;
        op.call = other.return! + 1;
        op.return = op.call + len;
      }
      break;
    }
    default: { // forget an unknown outcome: info becomes ok with a guessed output
      const op = pick(out.filter((o) => o.outcome === "info"));
      const ref = pick(oks);
      if (op) {
        op.outcome = "ok";
        op.return = op.call + 1 + rnd.int(5);
        op.output = ref?.output ?? 0;
      }
    }
  }
  return out;
}
